import { describe, expect, it } from "vitest";
import { INFLUX_PANELS } from "../../src/grafana/influx-panels.js";
import { type InfluxPanelQuery, renderFlux, renderInfluxQL } from "../../src/grafana/queries.js";
import { DATASOURCES } from "../../src/schema/grafana.js";
import { DASHBOARD_NAMES, type Dashboard, dashboard, panelsOf, targetsOn } from "../helpers/dashboards.js";

/**
 * The InfluxDB panels have one definition each (src/grafana/influx-panels.ts), rendered to Flux for
 * dashboards/ and to InfluxQL for dashboards/influxql/; the two sets differ in nothing else.
 */

const INFLUX_UIDS = new Set<string>([DATASOURCES.influxdb.uid, DATASOURCES.influxql.uid]);

/** A dashboard with its InfluxDB targets blanked and its set's names made neutral. */
function neutral(d: Dashboard): unknown {
  const copy = JSON.parse(JSON.stringify(d)) as Dashboard;
  for (const p of panelsOf(copy)) {
    p.targets = (p.targets ?? []).map((t) =>
      INFLUX_UIDS.has(t.datasource?.uid ?? "") ? { refId: t.refId } : t,
    );
    if (INFLUX_UIDS.has(p.datasource?.uid ?? "")) p.datasource = { uid: "influx" };
  }
  return JSON.parse(
    JSON.stringify(copy)
      .replaceAll("-influxql", "")
      .replaceAll(" (InfluxQL)", "")
      .replaceAll('"influxql"', '"flux"'),
  );
}

describe("the InfluxDB panels' one definition", () => {
  it.each(DASHBOARD_NAMES)(
    "%s: the InfluxQL set differs from the Flux set only in its InfluxDB targets and names",
    (name) => {
      expect(neutral(dashboard(name, "influxql"))).toEqual(neutral(dashboard(name, "flux")));
    },
  );

  it("every Flux target and its InfluxQL twin are the two renderings of one definition", () => {
    const flux = targetsOn(DATASOURCES.influxdb.uid, ["flux"]);
    const influxql = targetsOn(DATASOURCES.influxql.uid, ["influxql"]);
    expect(flux.length).toBe(4);
    expect(influxql.map((t) => `${t.panel.title}/${t.target.refId}`)).toEqual(
      flux.map((t) => `${t.panel.title}/${t.target.refId}`),
    );
    const definitions = Object.values(INFLUX_PANELS) as unknown as InfluxPanelQuery[];
    flux.forEach((f, i) => {
      const def = definitions.find((d) => renderFlux(d) === f.target.query);
      expect(def, `${f.panel.title}: no definition renders its Flux`).toBeDefined();
      expect(influxql[i]?.target.query).toBe(renderInfluxQL(def as InfluxPanelQuery));
    });
    // Every definition is used.
    expect(new Set(flux.map((f) => f.target.query))).toEqual(new Set(definitions.map((d) => renderFlux(d))));
  });

  it("a field renamed in the definition changes both renderings", () => {
    const original = INFLUX_PANELS.tradePrice;
    const renamed: InfluxPanelQuery<"positions"> = { ...original, fields: ["unrealized_pnl"] };
    for (const render of [renderFlux, renderInfluxQL] as const) {
      expect(render(original)).toContain('"price"');
      expect(render(renamed)).toContain('"unrealized_pnl"');
      expect(render(renamed)).not.toContain('"price"');
    }
  });

  it("a name the schema does not have is refused by both renderers", () => {
    const wrong = { ...INFLUX_PANELS.indicators, groupBy: ["indicator"] } as unknown as InfluxPanelQuery;
    expect(() => renderFlux(wrong)).toThrow(/indicators has no tag or field indicator/);
    expect(() => renderInfluxQL(wrong)).toThrow(/indicators has no tag or field indicator/);
  });
});
