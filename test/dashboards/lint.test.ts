import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DASHBOARD_UIDS, DATASOURCES, influxQLUid } from "../../src/schema/grafana.js";
import { skipWithout } from "../helpers/backend.js";
import { lint, RULES } from "../helpers/dashboard-lint.js";
import {
  allDashboards,
  type Dashboard,
  interpolate,
  panelsOf,
  targetsOn,
  variablesOf,
} from "../helpers/dashboards.js";

/** The dashboards as Grafana would load them, linted; and proof that each rule catches its defect. */

const dashboards = allDashboards();
const all = dashboards.map(([, d]) => d);
const copy = (d: Dashboard): Dashboard => JSON.parse(JSON.stringify(d)) as Dashboard;

describe("generated dashboards pass the lint rules", () => {
  it.each(dashboards)("%s", (_name, d) => {
    expect(lint(d, all)).toEqual([]);
  });

  it("have the uids the schema names, one file each, the InfluxQL set (dashboards with InfluxDB panels) under its own uids", () => {
    const uids = Object.values(DASHBOARD_UIDS);
    const withInflux = uids.filter((uid) => uid !== DASHBOARD_UIDS.history);
    expect(all.map((d) => d.uid).sort()).toEqual([...uids, ...withInflux.map(influxQLUid)].sort());
  });

  it("are the classic v1 model file provisioning reads, not a manifest or v2", () => {
    for (const d of all) {
      expect(d).not.toHaveProperty("apiVersion");
      expect(d).not.toHaveProperty("kind");
      expect(d).not.toHaveProperty("spec");
      expect(Array.isArray(d.panels)).toBe(true);
      expect(d).toHaveProperty("schemaVersion");
    }
  });
});

describe("each lint rule catches the defect it is for", () => {
  const [, overview] = dashboards.find(([n]) => n === "system-overview") ?? [];
  const [, analysis] = dashboards.find(([n]) => n === "trade-analysis") ?? [];
  const [, detail] = dashboards.find(([n]) => n === "trade-detail") ?? [];
  if (!overview || !analysis || !detail) throw new Error("a dashboard is missing");

  const breakFirstPanel = (d: Dashboard, mutate: (p: ReturnType<typeof panelsOf>[number]) => void) => {
    const broken = copy(d);
    const first = panelsOf(broken)[0];
    if (!first) throw new Error("no panel");
    mutate(first);
    return broken;
  };
  const firstPromTarget = (d: Dashboard) => {
    const p = panelsOf(d).find((x) => x.targets?.[0]?.datasource?.uid === DATASOURCES.prometheus.uid);
    const t = p?.targets?.[0];
    if (!t) throw new Error("no Prometheus target");
    return t;
  };

  const cases: [string, () => Dashboard][] = [
    ["uneditable-dashboard", () => ({ ...copy(overview), editable: true })],
    ["panel-title-description", () => breakFirstPanel(overview, (p) => delete p.description)],
    ["panel-units", () => breakFirstPanel(overview, (p) => delete p.fieldConfig?.defaults?.unit)],
    ["panel-no-targets", () => breakFirstPanel(overview, (p) => (p.targets = []))],
    ["panel-datasource", () => breakFirstPanel(overview, (p) => (p.datasource = { uid: "some-other" }))],
    [
      "target-rate-interval",
      () => {
        const d = copy(overview);
        const t = firstPromTarget(d);
        t.expr = (t.expr ?? "").replace("$__rate_interval", "5m");
        return d;
      },
    ],
    [
      "target-counter-agg",
      () => {
        const d = copy(overview);
        firstPromTarget(d).expr = 'sum(velox_ticks_processed_total{job=~"$job", instance=~"$instance"})';
        return d;
      },
    ],
    [
      "template-on-time-change-reload",
      () => {
        const d = copy(analysis);
        const v = variablesOf(d)[0];
        if (v) v.refresh = 1;
        return d;
      },
    ],
    [
      "template-custom-values-off",
      () => {
        const d = copy(detail);
        const v = variablesOf(d)[0];
        if (v) v.allowCustomValue = true;
        return d;
      },
    ],
    [
      "template-job-instance",
      () => {
        const d = copy(overview);
        firstPromTarget(d).expr = "sum(rate(velox_ticks_processed_total[$__rate_interval]))";
        return d;
      },
    ],
    [
      "variables-defined",
      () => {
        const d = copy(overview);
        firstPromTarget(d).expr += ' * on() group_left() up{job=~"$job", instance=~"$instance", env="$env"}';
        return d;
      },
    ],
    [
      "injection-safe-variables",
      () => {
        const d = copy(analysis);
        const t = panelsOf(d)[0]?.targets?.[0];
        if (t) t.rawQueryText = `${t.rawQueryText} AND symbol = '$symbol'`;
        return d;
      },
    ],
    [
      "unique-ids",
      () => {
        const d = copy(overview);
        const [a, b] = panelsOf(d);
        if (a && b) b.id = a.id;
        return d;
      },
    ],
    [
      "links-resolve",
      () => JSON.parse(JSON.stringify(analysis).replaceAll(DASHBOARD_UIDS.tradeDetail, "velox-nowhere")),
    ],
    [
      "grid-fits",
      () => breakFirstPanel(overview, (p) => (p.gridPos = { x: 20, y: p.gridPos?.y ?? 0, w: 8, h: 8 })),
    ],
  ];

  it("has a case for every rule but the cross-dashboard uid rule", () => {
    expect(
      cases
        .map(([name]) => name)
        .concat("unique-uids")
        .sort(),
    ).toEqual(Object.keys(RULES).sort());
  });

  it.each(cases)("%s", (name, broken) => {
    const problems = lint(broken(), all).filter((p) => p.startsWith(`${name}:`));
    expect(problems.length, `rule ${name} found nothing`).toBeGreaterThan(0);
  });

  it("unique-uids", () => {
    const twin = { ...copy(detail), uid: analysis.uid };
    expect(RULES["unique-uids"]?.(twin, [...all, twin]).length).toBeGreaterThan(0);
  });
});

/** Grafana's built-ins and this dashboard's variables, as a user's browser would fill them in. */
const PROM_VALUES = { job: "velox", instance: ["127.0.0.1:9464", "velox:9464"] };
const PROM_BUILTINS = { __rate_interval: "1m", __range: "1h", __interval: "15s" };

describe.skipIf(skipWithout("promtool", "PromQL parsing of the dashboards"))(
  "every PromQL expression parses",
  () => {
    it("promtool accepts every target and variable query once Grafana's variables are filled in", () => {
      const exprs = targetsOn(DATASOURCES.prometheus.uid).map(({ panel, target }) => ({
        where: `${panel.title} ${target.refId}`,
        expr: interpolate(target.expr ?? "", PROM_VALUES, {
          builtins: PROM_BUILTINS,
          defaultFormat: "regex",
        }),
      }));
      expect(exprs.length).toBeGreaterThan(15);
      // Recording rules are PromQL parsed by Prometheus' own parser: one rule per expression.
      const rules = {
        groups: [
          {
            name: "dashboards",
            rules: exprs.map((e, i) => ({ record: `dashboard:expr_${i}`, expr: e.expr })),
          },
        ],
      };
      const file = join(mkdtempSync(join(tmpdir(), "velox-promql-")), "exprs.yml");
      writeFileSync(file, stringify(rules));
      const out = execFileSync("promtool", ["check", "rules", file], { encoding: "utf8" });
      expect(out).toMatch(new RegExp(`SUCCESS: ${exprs.length} rules found`));
    });

    it("promtool rejects a broken expression (the check can fail)", () => {
      const file = join(mkdtempSync(join(tmpdir(), "velox-promql-")), "bad.yml");
      writeFileSync(
        file,
        stringify({ groups: [{ name: "x", rules: [{ record: "x:y", expr: "sum(rate(x[1m])" }] }] }),
      );
      expect(() => execFileSync("promtool", ["check", "rules", file], { stdio: "pipe" })).toThrow();
    });
  },
);
