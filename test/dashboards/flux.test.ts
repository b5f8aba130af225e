import { InfluxDB, Point } from "@influxdata/influxdb-client";
import { describe, expect, it } from "vitest";
import { assertId, assertSymbol } from "../../src/domain/identifiers.js";
import { renderFlux } from "../../src/grafana/queries.js";
import { DATASOURCES } from "../../src/schema/grafana.js";
import { INFLUX_SAFE_VARIABLES } from "../helpers/dashboard-lint.js";
import { interpolate, targetsOn, type VariableValues } from "../helpers/dashboards.js";
import { fluxCalls, fluxDiagnostics } from "../helpers/flux.js";
import { checkSchemaNames } from "../helpers/flux-schema.js";

/**
 * The InfluxDB panels' Flux: parsed by InfluxData's own language server with no diagnostics, every
 * name checked against INFLUX_SCHEMA, Grafana's time range and window used. Run for real only where
 * VELOX_INFLUX_URL names an InfluxDB 2 (no InfluxDB 2 query engine runs on this project's machines);
 * skipped loudly otherwise, like test/integration/influx-queries.test.ts.
 */

const TRADE_ID = "g-20261102T090000-rsi_mean_reversion-AAPL-17";
const SYMBOL = "AAPL";
/** Grafana fills these in; ids as VELOX writes them. */
const VALUES: VariableValues = { trade_id: TRADE_ID, symbol: SYMBOL };

const fluxTargets = targetsOn(DATASOURCES.influxdb.uid, ["flux"]);

describe("dashboard Flux", () => {
  it("the dashboards have InfluxDB panels: P&L by strategy, price and stop, indicators", () => {
    expect(fluxTargets.map((t) => t.panel.title).sort()).toEqual(
      ["Indicators", "P&L by strategy", "Price and trailing stop", "Price and trailing stop"].sort(),
    );
  });

  it.each(fluxTargets.map((t) => [`${t.panel.title} (${t.target.refId})`, t.target.query ?? ""] as const))(
    "%s parses with no diagnostics and names only the schema's measurements, tags and fields",
    async (_where, query) => {
      const flux = interpolate(query, VALUES);
      // Grafana's `v` record is injected at query time; the helper accepts exactly that free name.
      expect(await fluxDiagnostics(flux)).toEqual([]);
      const report = await checkSchemaNames(flux);
      expect(report.problems).toEqual([]);
      expect(report.measurements.length).toBe(1);
      expect(query).toContain("range(start: v.timeRangeStart, stop: v.timeRangeStop)");
      expect(query).toContain("from(bucket: v.defaultBucket)");
      if (query.includes("aggregateWindow")) expect(query).toContain("every: v.windowPeriod");
    },
  );

  it("the schema check and the parser catch a wrong name and a broken query", async () => {
    const wrong = renderFlux({ measurement: "positions", fields: ["price"], aggregate: "last" }).replace(
      '"price"',
      '"prise"',
    );
    expect((await checkSchemaNames(wrong)).problems).toContain("positions has no field prise");
    expect(() =>
      renderFlux({ measurement: "positions", fields: ["prise" as "price"], aggregate: "last" }),
    ).toThrow(/no tag or field prise/);
    expect((await fluxDiagnostics(wrong.replace("|> range(", "|> range(("))).length).toBeGreaterThan(0);
  });

  it("only pattern-checked ids reach Flux: a hostile value would change the query, and the id patterns refuse it", async () => {
    const priceQuery =
      fluxTargets.find((t) => t.panel.title === "Price and trailing stop")?.target.query ?? "";
    const variables = [...priceQuery.matchAll(/\$\{(\w+)\}/g)].map((m) => m[1]);
    expect(variables.length).toBeGreaterThan(0);
    for (const v of variables) expect(INFLUX_SAFE_VARIABLES.has(v ?? "")).toBe(true);

    const safe = await fluxCalls(interpolate(priceQuery, VALUES));
    const hostile = '") |> drop(columns: ["_value"]) |> yield(name: "x") //';
    const injected = await fluxCalls(interpolate(priceQuery, { ...VALUES, trade_id: hostile }));
    expect(injected).not.toEqual(safe);
    // Which is why the values come only from VELOX's ids, whose patterns refuse such text.
    expect(() => assertId(hostile, "trade_id")).toThrow();
    expect(() => assertSymbol('AAPL" or true or "', "symbol")).toThrow();
    expect(assertId(TRADE_ID, "trade_id")).toBe(TRADE_ID);
  });
});

const url = process.env.VELOX_INFLUX_URL;
const token = process.env.VELOX_INFLUX_TOKEN;
const org = process.env.VELOX_INFLUX_ORG || "velox";
const bucket = process.env.VELOX_INFLUX_BUCKET || "trading";
if (!url || !token) {
  console.warn(
    "\n*** SKIPPING dashboard Flux execution: no InfluxDB 2 configured (set VELOX_INFLUX_URL and VELOX_INFLUX_TOKEN; see README). ***\n",
  );
}

describe.skipIf(!url || !token)("dashboard Flux on a real InfluxDB 2", () => {
  it("every panel query returns rows for points written as VELOX writes them", async () => {
    const client = new InfluxDB({ url: url ?? "", token: token ?? "" });
    const now = Date.now();
    const write = client.getWriteApi(org, bucket, "ms");
    for (let i = 0; i < 5; i++) {
      const t = now - 60_000 + i * 10_000;
      write.writePoint(
        new Point("positions")
          .tag("strategy_id", "rsi_mean_reversion")
          .tag("symbol", SYMBOL)
          .tag("trade_id", TRADE_ID)
          .floatField("price", 100 + i)
          .timestamp(t),
      );
      write.writePoint(
        new Point("trailing_sl")
          .tag("strategy_id", "rsi_mean_reversion")
          .tag("symbol", SYMBOL)
          .tag("trade_id", TRADE_ID)
          .tag("sl_type", "percent")
          .floatField("current_sl", 95 + i)
          .timestamp(t),
      );
      write.writePoint(
        new Point("indicators")
          .tag("symbol", SYMBOL)
          .tag("indicator_type", "rsi_14")
          .floatField("value", 40 + i)
          .timestamp(t),
      );
      write.writePoint(
        new Point("strategy_metrics")
          .tag("strategy_id", "rsi_mean_reversion")
          .floatField("pnl", i)
          .timestamp(t),
      );
    }
    await write.close();
    const query = client.getQueryApi(org);
    for (const { panel, target } of fluxTargets) {
      // Grafana replaces its `v` record's fields in the text before sending the query.
      const flux = interpolate(target.query ?? "", VALUES)
        .replaceAll("v.defaultBucket", JSON.stringify(bucket))
        .replaceAll("v.timeRangeStart", new Date(now - 3_600_000).toISOString())
        .replaceAll("v.timeRangeStop", new Date(now + 60_000).toISOString())
        .replaceAll("v.windowPeriod", "10s");
      const rows = await query.collectRows(flux);
      expect(rows.length, panel.title).toBeGreaterThan(0);
    }
  }, 60_000);
});
