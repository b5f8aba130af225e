/**
 * The generated dashboards as data for the tests: every panel, target and variable, and the two
 * transformations a query goes through before it reaches its backend — Grafana's variable
 * interpolation (with the format each query uses) and frser-sqlite-datasource's macro expansion.
 * What Grafana and the plugin do is restated here from their documented behaviour, so a test can
 * run the exact text a backend would receive.
 */
import { DASHBOARDS, type DashboardName, dashboardJson, dashboardsOf } from "../../src/grafana/generate.js";
import type { InfluxLanguage } from "../../src/grafana/queries.js";
import { DATASOURCES } from "../../src/schema/grafana.js";

export interface Target {
  refId?: string;
  datasource?: { type?: string; uid?: string };
  expr?: string;
  query?: string;
  queryText?: string;
  rawQueryText?: string;
  queryType?: string;
  timeColumns?: string[];
  target?: string;
  payload?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Panel {
  id?: number;
  type: string;
  title?: string;
  description?: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  gridPos?: { x: number; y: number; w: number; h: number };
  fieldConfig?: {
    defaults?: { unit?: string; mappings?: unknown[]; links?: { url: string }[] };
    overrides?: { matcher: { id: string; options: string }; properties: { id: string; value: unknown }[] }[];
  };
  panels?: Panel[];
}

export interface Variable {
  type: string;
  name: string;
  query?: string | Record<string, unknown>;
  datasource?: { type?: string; uid?: string };
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string;
  allowCustomValue?: boolean;
  refresh?: number;
  options?: { text: string; value: string }[];
  current?: { text: string | string[]; value: string | string[] };
}

export interface Dashboard {
  uid: string;
  title: string;
  editable?: boolean;
  panels: Panel[];
  templating?: { list?: Variable[] };
  links?: { url?: string }[];
}

export const DASHBOARD_NAMES = Object.keys(DASHBOARDS) as DashboardName[];

/** The two generated sets: InfluxDB panels in Flux (dashboards/) or in InfluxQL (dashboards/influxql/). */
export type DashboardSet = InfluxLanguage;
export const DASHBOARD_SETS: readonly DashboardSet[] = ["flux", "influxql"];

export function dashboard(name: DashboardName, set: DashboardSet = "flux"): Dashboard {
  return dashboardJson(name, { influx: set }) as unknown as Dashboard;
}

/** Every generated dashboard of the given sets, labelled `name` (Flux set) or `influxql/name`. */
export function allDashboards(sets: readonly DashboardSet[] = DASHBOARD_SETS): [string, Dashboard][] {
  return sets.flatMap((set) =>
    dashboardsOf(set).map((name): [string, Dashboard] => [
      set === "flux" ? name : `${set}/${name}`,
      dashboard(name, set),
    ]),
  );
}

/** Every panel that is not a row, rows' nested panels included. */
export function panelsOf(d: Dashboard): Panel[] {
  return d.panels.flatMap((p) => (p.type === "row" ? (p.panels ?? []) : [p]));
}

export function variablesOf(d: Dashboard): Variable[] {
  return d.templating?.list ?? [];
}

export interface PanelTarget {
  /** The dashboard's label (see allDashboards). */
  dashboard: string;
  panel: Panel;
  target: Target;
}

/** Every target on the datasource `uid` of the dashboards of `sets` (both by default). */
export function targetsOn(uid: string, sets: readonly DashboardSet[] = DASHBOARD_SETS): PanelTarget[] {
  return allDashboards(sets).flatMap(([name, d]) =>
    panelsOf(d).flatMap((panel) =>
      (panel.targets ?? [])
        .filter((t) => t.datasource?.uid === uid)
        .map((target) => ({ dashboard: name, panel, target })),
    ),
  );
}

export const PROVISIONED_UIDS = new Set<string>(Object.values(DATASOURCES).map((d) => d.uid));

// --- Grafana's interpolation ---------------------------------------------------------------------

/** The value(s) a variable holds for a test: one string or several (multi-value). */
export type VariableValues = Record<string, string | string[]>;

const VARIABLE = /\$\{([A-Za-z0-9_]+)(?::([A-Za-z]+))?\}|\$([A-Za-z0-9_]+)/g;

/** Grafana's `sqlstring` format: each value in single quotes, `'` doubled, joined by commas. */
export function sqlstring(values: string | string[]): string {
  return (Array.isArray(values) ? values : [values]).map((v) => `'${v.replaceAll("'", "''")}'`).join(",");
}

/**
 * The Prometheus datasource's default for multi-value variables (its prometheusSpecialRegexEscape):
 * each value regex-escaped with a doubled backslash — the query text holds the escape inside a
 * PromQL string literal — and several values joined as `(a|b)`. A single value of a single-value
 * variable is spliced as it is.
 */
export function prometheusRegex(values: string | string[]): string {
  const escapeValue = (v: string) => v.replace(/\\/g, "\\\\\\\\").replace(/[$^*{}[\]'+?.()|]/g, "\\\\$&");
  if (!Array.isArray(values)) return values;
  return values.length === 1 ? escapeValue(values[0] ?? "") : `(${values.map(escapeValue).join("|")})`;
}

export interface InterpolateOptions {
  /**
   * Grafana's built-ins by name without `$`: `__rate_interval`, `__range`, `__from` …, and the
   * InfluxQL datasource's `timeFilter`.
   */
  builtins?: Record<string, string>;
  /**
   * The format used when a reference names none: Prometheus formats multi-value variables as a
   * regex, Flux and SQL splice the raw value.
   */
  defaultFormat?: "regex" | "raw";
}

/**
 * Replaces `$var`, `${var}` and `${var:format}` as Grafana does before a query leaves the
 * browser. An unknown variable or format throws, so a query cannot silently keep a `$name`.
 */
export function interpolate(text: string, values: VariableValues, options: InterpolateOptions = {}): string {
  const builtins = options.builtins ?? {};
  return text.replace(
    VARIABLE,
    (whole, braced: string | undefined, format: string | undefined, bare: string | undefined) => {
      const name = braced ?? bare ?? "";
      if (name in builtins) return builtins[name] ?? "";
      // Other built-ins stay (`$__unixEpochGroupSeconds(...)` is the SQLite plugin's macro, not Grafana's).
      if (name.startsWith("__")) return whole;
      const value = values[name];
      if (value === undefined) throw new Error(`no value for variable $${name} in: ${text}`);
      switch (format ?? (options.defaultFormat === "regex" ? "regex" : "raw")) {
        case "sqlstring":
          return sqlstring(value);
        case "regex":
          return prometheusRegex(value);
        case "json":
          return JSON.stringify(Array.isArray(value) ? value : [value]);
        case "raw":
          return Array.isArray(value) ? value.join(",") : value;
        default:
          throw new Error(`format ${format} of $${name} is not one the dashboards may use`);
      }
    },
  );
}

/** What is left that looks like a Grafana variable or macro after interpolation (should be nothing). */
export function leftoverReferences(text: string): string[] {
  return [...text.matchAll(/\$\{?[A-Za-z_][A-Za-z0-9_]*/g)].map((m) => m[0]);
}

// --- frser-sqlite-datasource ---------------------------------------------------------------------

/**
 * The plugin's macros (pkg/plugin/macros.go): `$__unixEpochGroupSeconds(col, n[, NULL])` becomes
 * `cast((col / n) as int) * n`, n an integer literal. Grafana has already replaced `$__from` and
 * `$__to` (epoch milliseconds) in the text.
 */
export function expandSqliteMacros(sql: string): string {
  return sql.replace(/\$__([_a-zA-Z0-9]+)\(([^)]*)\)/g, (whole, name: string, args: string) => {
    if (name !== "unixEpochGroupSeconds")
      throw new Error(`macro $__${name} is not one frser-sqlite-datasource has`);
    const parts = args.split(",").map((a) => a.trim());
    const seconds = Number(parts[1]);
    if (parts.length < 2 || parts.length > 3 || !Number.isInteger(seconds))
      throw new Error(`bad macro ${whole}`);
    return `cast((${parts[0]} / ${seconds}) as int) * ${seconds}`;
  });
}

/** A SQLite target's text as the plugin would run it, for a time range in epoch ms. */
export function sqliteText(
  target: Target,
  values: VariableValues,
  range: { fromMs: number; toMs: number },
): string {
  const raw = target.rawQueryText ?? target.queryText ?? "";
  return expandSqliteMacros(
    interpolate(raw, values, { builtins: { __from: String(range.fromMs), __to: String(range.toMs) } }),
  );
}

// --- Grafana's PostgreSQL datasource -------------------------------------------------------------

/** `1m`, `30s`, `2h`, `1d` (Grafana's interval text, `$__interval` included) in seconds. */
function intervalSeconds(text: string): number {
  const m = /^'?(\d+)(ms|s|m|h|d)'?$/.exec(text.trim());
  if (!m) throw new Error(`not an interval: ${text}`);
  const n = Number(m[1]);
  return Math.max(1, { ms: n / 1000, s: n, m: n * 60, h: n * 3600, d: n * 86_400 }[m[2] as "s"]);
}

/**
 * The PostgreSQL datasource's macros as Grafana documents and expands them (pkg/tsdb/grafana-
 * postgresql-datasource/macros.go), for a range in epoch ms:
 * - `$__time(col)` → `col AS "time"`; `$__timeEpoch(col)` → `extract(epoch from col) AS "time"`
 * - `$__timeFilter(col)` → `col BETWEEN '<from RFC 3339>' AND '<to RFC 3339>'`
 * - `$__timeFrom()`, `$__timeTo()` → the quoted RFC 3339 bounds
 * - `$__timeGroup(col, '5m')` → `floor(extract(epoch from col)/300)*300`; `…Alias` adds `AS "time"`
 * - `$__unixEpochFilter(col)` → `col >= <from s> AND col <= <to s>`
 * An unknown macro throws.
 */
export function expandPostgresMacros(sql: string, range: { fromMs: number; toMs: number }): string {
  // Go's RFC3339Nano: the fraction only when there is one, without trailing zeros.
  const rfc = (ms: number) => `'${new Date(ms).toISOString().replace(/\.?0+Z$/, "Z")}'`;
  return sql.replace(/\$__([a-zA-Z]+)\(([^()]*)\)/g, (whole, name: string, args: string) => {
    const parts = args.split(",").map((a) => a.trim());
    const col = parts[0] ?? "";
    const group = () => {
      const seconds = intervalSeconds(parts[1] ?? "");
      return `floor(extract(epoch from ${col})/${seconds})*${seconds}`;
    };
    switch (name) {
      case "time":
        return `${col} AS "time"`;
      case "timeEpoch":
        return `extract(epoch from ${col}) AS "time"`;
      case "timeFilter":
        return `${col} BETWEEN ${rfc(range.fromMs)} AND ${rfc(range.toMs)}`;
      case "timeFrom":
        return rfc(range.fromMs);
      case "timeTo":
        return rfc(range.toMs);
      case "timeGroup":
        return group();
      case "timeGroupAlias":
        return `${group()} AS "time"`;
      case "unixEpochFilter":
        return `${col} >= ${Math.floor(range.fromMs / 1000)} AND ${col} <= ${Math.floor(range.toMs / 1000)}`;
      default:
        throw new Error(`macro ${whole} is not one Grafana's PostgreSQL datasource has`);
    }
  });
}

/** A PostgreSQL target's text as Grafana would send it: variables, then `$__interval`, then macros. */
export function postgresText(
  target: Target,
  values: VariableValues,
  range: { fromMs: number; toMs: number },
  interval = "1m",
): string {
  const raw = String(target.rawSql ?? "");
  return expandPostgresMacros(interpolate(raw, values, { builtins: { __interval: interval } }), range);
}
