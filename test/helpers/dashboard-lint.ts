/**
 * Lint rules for the generated dashboards, ported from grafana/dashboard-linter (panel-datasource,
 * panel-title-description, panel-units, panel-no-targets, target-rate-interval, target-counter-agg,
 * template-on-time-change-reload, template-job/instance, uneditable-dashboard) plus the project's
 * own (unique ids and uids, links to existing dashboards, variables defined, injection-safe
 * variable use, a sane grid). Each rule returns the problems it found, one line each, so a test can
 * show both that the dashboards pass and that a broken one is caught.
 */
import { DATASOURCES } from "../../src/schema/grafana.js";
import {
  type Dashboard,
  type Panel,
  PROVISIONED_UIDS,
  panelsOf,
  type Target,
  variablesOf,
} from "./dashboards.js";

export type Rule = (d: Dashboard, all: Dashboard[]) => string[];

const MIXED = "-- Mixed --";
const COUNTER = /\b([a-z_:][a-z0-9_:]*_(?:total|bucket|sum|count))\b/g;
const BUILTIN_PREFIX = "__";
/** Grafana's InfluxQL datasource macros that do not start with `__`. */
const INFLUXQL_MACROS = new Set(["timeFilter"]);

/** Every text of a target that Grafana interpolates. */
export function targetTexts(t: Target): string[] {
  return [t.expr, t.query, t.rawQueryText, t.queryText, t.target].filter(
    (x): x is string => typeof x === "string",
  );
}

function allTexts(d: Dashboard): { where: string; text: string; uid: string | undefined }[] {
  return [
    ...panelsOf(d).flatMap((p) =>
      (p.targets ?? []).flatMap((t) =>
        targetTexts(t).map((text) => ({ where: `panel ${p.id} "${p.title}"`, text, uid: t.datasource?.uid })),
      ),
    ),
    ...variablesOf(d).flatMap((v) =>
      typeof v.query === "string"
        ? [{ where: `variable ${v.name}`, text: v.query, uid: v.datasource?.uid }]
        : [],
    ),
  ];
}

/** Variable references in a text: name and format (`${a:sqlstring}` → a, sqlstring). */
export function variableReferences(text: string): { name: string; format: string | undefined }[] {
  return [...text.matchAll(/\$\{([A-Za-z0-9_]+)(?::([A-Za-z]+))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g)]
    .map((m) => ({ name: m[1] ?? m[3] ?? "", format: m[2] }))
    .filter((r) => !r.name.startsWith(BUILTIN_PREFIX) && !INFLUXQL_MACROS.has(r.name));
}

/** The name of the innermost function call enclosing position `at` of `expr`, if any. */
function enclosingCall(expr: string, at: number): string | undefined {
  let depth = 0;
  for (let i = at - 1; i >= 0; i--) {
    const c = expr[i];
    if (c === ")") depth++;
    else if (c === "(") {
      if (depth === 0) return /([a-z_]+)\s*$/.exec(expr.slice(0, i))?.[1];
      depth--;
    }
  }
  return undefined;
}

const isRow = (p: Panel) => p.type === "row";

export const RULES: Record<string, Rule> = {
  "uneditable-dashboard": (d) => (d.editable === false ? [] : ["dashboard is editable"]),

  "panel-title-description": (d) =>
    panelsOf(d).flatMap((p) => [
      ...(p.title ? [] : [`panel ${p.id} has no title`]),
      ...(p.description ? [] : [`panel ${p.id} "${p.title}" has no description`]),
    ]),

  "panel-units": (d) =>
    panelsOf(d)
      .filter((p) => !p.fieldConfig?.defaults?.unit && !(p.fieldConfig?.defaults?.mappings?.length ?? 0))
      .map((p) => `panel ${p.id} "${p.title}" has no unit and no value mappings`),

  "panel-no-targets": (d) =>
    panelsOf(d)
      .filter((p) => (p.targets ?? []).length === 0)
      .map((p) => `panel ${p.id} "${p.title}" has no target`),

  "panel-datasource": (d) =>
    panelsOf(d).flatMap((p) => {
      const problems: string[] = [];
      const uid = p.datasource?.uid;
      if (!uid || (uid !== MIXED && !PROVISIONED_UIDS.has(uid)))
        problems.push(`panel ${p.id} "${p.title}" datasource ${uid} is not provisioned`);
      for (const t of p.targets ?? []) {
        const tuid = t.datasource?.uid;
        if (!tuid || !PROVISIONED_UIDS.has(tuid))
          problems.push(`panel ${p.id} target ${t.refId} datasource ${tuid} is not provisioned`);
        if (uid !== MIXED && tuid !== uid)
          problems.push(`panel ${p.id} target ${t.refId} differs from its panel`);
      }
      return problems;
    }),

  "target-rate-interval": (d) =>
    allTexts(d)
      .filter((x) => x.uid === DATASOURCES.prometheus.uid)
      .flatMap(({ where, text }) =>
        [...text.matchAll(/\b(rate|irate)\s*\(/g)]
          .filter((m) => {
            // The range of this rate(...) call: the first [...] after it at the same nesting.
            const window = /\[([^\]]+)\]/.exec(text.slice(m.index ?? 0))?.[1];
            return window !== "$__rate_interval";
          })
          .map(() => `${where}: rate() must use [$__rate_interval]: ${text}`),
      ),

  "target-counter-agg": (d) =>
    allTexts(d)
      .filter((x) => x.uid === DATASOURCES.prometheus.uid && !x.text.startsWith("label_values("))
      .flatMap(({ where, text }) =>
        [...text.matchAll(COUNTER)]
          .filter((m) => !["rate", "increase", "irate"].includes(enclosingCall(text, m.index ?? 0) ?? ""))
          .map((m) => `${where}: counter ${m[1]} outside rate()/increase(): ${text}`),
      ),

  "template-on-time-change-reload": (d) =>
    variablesOf(d)
      .filter((v) => v.type === "query" && v.refresh !== 2)
      .map((v) => `variable ${v.name} does not refresh on time-range change`),

  "template-custom-values-off": (d) =>
    variablesOf(d)
      .filter((v) => v.allowCustomValue !== false)
      .map((v) => `variable ${v.name} accepts custom values`),

  "template-job-instance": (d) => {
    const prometheusTexts = allTexts(d).filter(
      (x) => x.uid === DATASOURCES.prometheus.uid && !x.where.startsWith("variable"),
    );
    if (prometheusTexts.length === 0) return [];
    const names = new Set(variablesOf(d).map((v) => v.name));
    const problems = ["job", "instance"].filter((n) => !names.has(n)).map((n) => `no ${n} variable`);
    for (const { where, text } of prometheusTexts) {
      // Every selector of a metric carries both matchers.
      for (const m of text.matchAll(/\b([a-z_:][a-z0-9_:]*)\{([^}]*)\}/g)) {
        if (!m[2]?.includes('job=~"$job"') || !m[2]?.includes('instance=~"$instance"'))
          problems.push(`${where}: ${m[1]} is not selected by job and instance`);
      }
      for (const m of text.matchAll(/\b([a-z_:][a-z0-9_:]*)\b(?![{(])/g)) {
        const name = m[1] ?? "";
        if (/_(total|bucket|sum|count|bytes|seconds|up|pnl|positions|ratio|points)$/.test(name))
          problems.push(`${where}: ${name} without a selector`);
      }
    }
    return problems;
  },

  "variables-defined": (d) => {
    const names = new Set(variablesOf(d).map((v) => v.name));
    return allTexts(d).flatMap(({ where, text }) =>
      variableReferences(text)
        .filter((r) => !names.has(r.name))
        .map((r) => `${where}: $${r.name} is not a variable of the dashboard`),
    );
  },

  /** SQL sees variables only quoted by Grafana; Flux and InfluxQL only ids VELOX pattern-checks. */
  "injection-safe-variables": (d) =>
    allTexts(d).flatMap(({ where, text, uid }) => {
      const refs = variableReferences(text);
      if (uid === DATASOURCES.sqlite.uid)
        return refs
          .filter((r) => r.format !== "sqlstring")
          .map((r) => `${where}: $${r.name} in SQL without :sqlstring`);
      if (uid === DATASOURCES.influxdb.uid || uid === DATASOURCES.influxql.uid)
        return refs
          .filter(
            (r) => !INFLUX_SAFE_VARIABLES.has(r.name) || (r.format !== undefined && r.format !== "json"),
          )
          .map((r) => `${where}: $${r.name} may not reach an InfluxDB query`);
      return [];
    }),

  "unique-ids": (d) => {
    const seen = new Map<number, number>();
    for (const p of d.panels.flatMap((p) => [p, ...(p.panels ?? [])])) {
      if (typeof p.id !== "number" || p.id <= 0) return [`panel "${p.title}" has no explicit id`];
      seen.set(p.id, (seen.get(p.id) ?? 0) + 1);
    }
    return [...seen].filter(([, n]) => n > 1).map(([id]) => `panel id ${id} is used more than once`);
  },

  "unique-uids": (_d, all) => {
    const uids = all.map((x) => x.uid);
    return uids.filter((u, i) => uids.indexOf(u) !== i).map((u) => `dashboard uid ${u} is used twice`);
  },

  "links-resolve": (d, all) => {
    const uids = new Set(all.map((x) => x.uid));
    return [...JSON.stringify(d).matchAll(/\/d\/([A-Za-z0-9_-]+)/g)]
      .filter((m) => !uids.has(m[1] ?? ""))
      .map((m) => `link to unknown dashboard ${m[1]}`);
  },

  "grid-fits": (d) => {
    const problems: string[] = [];
    const boxes = d.panels.filter((p) => p.gridPos);
    for (const p of boxes) {
      const g = p.gridPos;
      if (!g) continue;
      if (g.x < 0 || g.w <= 0 || g.x + g.w > 24) problems.push(`panel ${p.id} leaves the 24-column grid`);
      if (!isRow(p) && g.h < 3) problems.push(`panel ${p.id} is too short to read`);
    }
    for (const [i, a] of boxes.entries()) {
      for (const b of boxes.slice(i + 1)) {
        const [ga, gb] = [a.gridPos, b.gridPos];
        if (!ga || !gb) continue;
        const overlap = ga.x < gb.x + gb.w && gb.x < ga.x + ga.w && ga.y < gb.y + gb.h && gb.y < ga.y + ga.h;
        if (overlap) problems.push(`panels ${a.id} and ${b.id} overlap`);
      }
    }
    return problems;
  },
};

/**
 * Variables whose values are VELOX's pattern-checked ids, read from the journal: the only ones
 * Flux and InfluxQL text may hold (Grafana escapes neither inside a string literal).
 */
export const INFLUX_SAFE_VARIABLES = new Set(["trade_id", "symbol", "strategy"]);

export function lint(d: Dashboard, all: Dashboard[]): string[] {
  return Object.entries(RULES).flatMap(([name, rule]) => rule(d, all).map((p) => `${name}: ${p}`));
}
