import type * as cog from "@grafana/grafana-foundation-sdk/cog";
import type { DataSourceRef } from "@grafana/grafana-foundation-sdk/common";
import { DataqueryBuilder as PrometheusQueryBuilder } from "@grafana/grafana-foundation-sdk/prometheus";
import { DATASOURCES, type DatasourceKey, type GrafanaApiTarget } from "../schema/grafana.js";
import {
  type FieldName,
  INFLUX_SCHEMA,
  type MeasurementName,
  schemaHasColumn,
  type TagName,
} from "../schema/influx.js";

/**
 * Query builders for the four provisioned datasources. The SDK ships a Prometheus builder; the
 * InfluxDB (Flux), frser-sqlite-datasource and simpod-json-datasource queries are small
 * `cog.Builder<cog.Dataquery>` classes of our own, shaped as each plugin stores its query model.
 */

/** The `{type, uid}` reference of a provisioned datasource. */
export function datasourceRef(key: DatasourceKey): DataSourceRef {
  const { type, uid } = DATASOURCES[key];
  return { type, uid };
}

/** Grafana's built-in "Mixed" datasource: each target names its own. */
export const MIXED_DATASOURCE: DataSourceRef = { type: "datasource", uid: "-- Mixed --" };

/** A Prometheus target; `legend` is Grafana's legendFormat (`{{label}}` templates). */
export function promQuery(expr: string, legend?: string, options: { instant?: boolean } = {}) {
  const query = new PrometheusQueryBuilder().expr(expr).datasource(datasourceRef("prometheus"));
  if (legend !== undefined) query.legendFormat(legend);
  if (options.instant) query.instant();
  else query.range();
  return query;
}

interface BaseQuery {
  refId?: string;
  hide?: boolean;
  datasource: DataSourceRef;
  /** Tells cog this object is a Dataquery variant. */
  _implementsDataqueryVariant(): void;
}

abstract class CustomQueryBuilder<Q extends BaseQuery> implements cog.Builder<cog.Dataquery> {
  protected constructor(protected readonly internal: Q) {}

  build(): Q {
    return this.internal;
  }

  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }

  hide(hide: boolean): this {
    this.internal.hide = hide;
    return this;
  }
}

// --- InfluxDB (Flux) -----------------------------------------------------------------------------

export interface FluxQuery extends BaseQuery {
  query: string;
}

export class FluxQueryBuilder extends CustomQueryBuilder<FluxQuery> {
  constructor(query: string) {
    super({ datasource: datasourceRef("influxdb"), query, _implementsDataqueryVariant() {} });
  }
}

/**
 * One InfluxDB panel query, typed against the schema: which measurement and fields, which tags
 * must equal which dashboard variable, which tags split the series, and how points are thinned
 * to the panel's resolution. Rendered to Flux by {@link renderFlux}.
 */
export interface InfluxPanelQuery<M extends MeasurementName = MeasurementName> {
  measurement: M;
  fields: readonly FieldName<M>[];
  /**
   * Tag → dashboard variable name. Grafana splices variables into Flux unescaped, so only
   * variables whose values are VELOX's own pattern-checked ids (trade ids, symbols, strategy ids),
   * with custom values disabled, may appear here.
   */
  where?: Partial<Record<TagName<M>, string>>;
  groupBy?: readonly TagName<M>[];
  /** aggregateWindow's function over `v.windowPeriod`. */
  aggregate: "last" | "mean" | "max" | "min";
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The query's tag filters as [tag, variable] pairs, every name checked against the schema. */
function checked<M extends MeasurementName>(q: InfluxPanelQuery<M>): [string, string][] {
  const tags: readonly string[] = INFLUX_SCHEMA[q.measurement].tags;
  for (const name of [...q.fields, ...(q.groupBy ?? [])]) {
    if (!schemaHasColumn(q.measurement, name))
      throw new Error(`${q.measurement} has no tag or field ${name}`);
  }
  const where = Object.entries(q.where ?? {}) as [string, string][];
  for (const [tag, variable] of where) {
    if (!tags.includes(tag)) throw new Error(`${q.measurement}: ${tag} is not a tag`);
    if (!IDENTIFIER.test(variable)) throw new Error(`bad variable name ${variable}`);
  }
  return where;
}

/** Flux over Grafana's `v` record: bucket, time range and window come from the panel. */
export function renderFlux<M extends MeasurementName>(q: InfluxPanelQuery<M>): string {
  const where = checked(q);
  const fieldTest = q.fields.map((f) => `r._field == "${f}"`).join(" or ");
  const lines = [
    "from(bucket: v.defaultBucket)",
    "  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)",
    `  |> filter(fn: (r) => r._measurement == "${q.measurement}")`,
    `  |> filter(fn: (r) => ${fieldTest})`,
    ...where.map(([tag, variable]) => `  |> filter(fn: (r) => r.${tag} == "\${${variable}}")`),
  ];
  const groupColumns = ["_field", ...(q.groupBy ?? [])].map((c) => `"${c}"`).join(", ");
  lines.push(`  |> group(columns: [${groupColumns}])`);
  lines.push(`  |> aggregateWindow(every: v.windowPeriod, fn: ${q.aggregate}, createEmpty: false)`);
  return lines.join("\n");
}

/**
 * InfluxQL with Grafana's InfluxQL macros: `$timeFilter` (the panel's range) and `$__interval` (its
 * resolution). The same definition as {@link renderFlux}; what InfluxDB 1.x, 3 and 2.x's v1 API read.
 */
export function renderInfluxQL<M extends MeasurementName>(q: InfluxPanelQuery<M>): string {
  const where = checked(q);
  const select = q.fields.map((f) => `${q.aggregate}("${f}") AS "${f}"`).join(", ");
  const conditions = [...where.map(([tag, variable]) => `"${tag}" = '\${${variable}}'`), "$timeFilter"];
  const groupBy = ["time($__interval)", ...(q.groupBy ?? []).map((t) => `"${t}"`)].join(", ");
  return `SELECT ${select} FROM "${q.measurement}" WHERE ${conditions.join(" AND ")} GROUP BY ${groupBy} fill(none)`;
}

export function fluxQuery<M extends MeasurementName>(q: InfluxPanelQuery<M>): FluxQueryBuilder {
  return new FluxQueryBuilder(renderFlux(q));
}

// --- InfluxDB (InfluxQL) -------------------------------------------------------------------------

export interface InfluxQLQuery extends BaseQuery {
  query: string;
  /** The text is the query itself, not the visual editor's model. */
  rawQuery: true;
  resultFormat: "time_series";
  /** Series name: the first group-by tag's value (`$tag_name`), else the field. */
  alias: string;
}

export class InfluxQLQueryBuilder extends CustomQueryBuilder<InfluxQLQuery> {
  constructor(query: string, alias: string) {
    super({
      datasource: datasourceRef("influxql"),
      query,
      rawQuery: true,
      resultFormat: "time_series",
      alias,
      _implementsDataqueryVariant() {},
    });
  }
}

export function influxQLQuery<M extends MeasurementName>(q: InfluxPanelQuery<M>): InfluxQLQueryBuilder {
  const [firstTag] = q.groupBy ?? [];
  return new InfluxQLQueryBuilder(renderInfluxQL(q), firstTag ? `$tag_${firstTag}` : "$col");
}

/** Which query language the InfluxDB panels speak: Flux (InfluxDB 2) or InfluxQL (1.x, 3, 2.x v1 API). */
export type InfluxLanguage = "flux" | "influxql";

/** An InfluxDB panel target in the chosen language, from its one definition. */
export function influxQuery<M extends MeasurementName>(
  q: InfluxPanelQuery<M>,
  language: InfluxLanguage,
): cog.Builder<cog.Dataquery> {
  return language === "flux" ? fluxQuery(q) : influxQLQuery(q);
}

// --- frser-sqlite-datasource ---------------------------------------------------------------------

export type SqliteQueryType = "table" | "time series";

export interface SqliteQuery extends BaseQuery {
  queryText: string;
  /** The plugin keeps the text as typed next to the text it runs; both are the same here. */
  rawQueryText: string;
  queryType: SqliteQueryType;
  /** Columns read as time: numbers are unix seconds, strings RFC 3339. */
  timeColumns: string[];
}

export class SqliteQueryBuilder extends CustomQueryBuilder<SqliteQuery> {
  constructor(sql: string, queryType: SqliteQueryType = "table", timeColumns: string[] = []) {
    const text = sql.trim();
    super({
      datasource: datasourceRef("sqlite"),
      queryText: text,
      rawQueryText: text,
      queryType,
      timeColumns,
      _implementsDataqueryVariant() {},
    });
  }
}

export function sqlTable(sql: string, timeColumns: string[] = []): SqliteQueryBuilder {
  return new SqliteQueryBuilder(sql, "table", timeColumns);
}

/** A time series query: the SQL must return a `time` column (unix seconds), ascending. */
export function sqlSeries(sql: string): SqliteQueryBuilder {
  return new SqliteQueryBuilder(sql, "time series", ["time"]);
}

// --- Grafana's PostgreSQL datasource (the history store) ----------------------------------------

export type PostgresFormat = "table" | "time_series";

export interface PostgresQuery extends BaseQuery {
  rawSql: string;
  format: PostgresFormat;
  /** Code, not the visual builder: the SQL is kept exactly as written. */
  rawQuery: true;
  editorMode: "code";
}

export class PostgresQueryBuilder extends CustomQueryBuilder<PostgresQuery> {
  constructor(sql: string, format: PostgresFormat) {
    super({
      datasource: datasourceRef("postgres"),
      rawSql: sql.trim(),
      format,
      rawQuery: true,
      editorMode: "code",
      _implementsDataqueryVariant() {},
    });
  }
}

/** A table from the history store. */
export function pgTable(sql: string): PostgresQueryBuilder {
  return new PostgresQueryBuilder(sql, "table");
}

/**
 * A time series from the history store: a `time` column (timestamptz or epoch), ascending, value
 * columns, and an optional `metric` column that names each series.
 */
export function pgSeries(sql: string): PostgresQueryBuilder {
  return new PostgresQueryBuilder(sql, "time_series");
}

// --- simpod-json-datasource (the VELOX API) ------------------------------------------------------

export interface JsonApiQuery extends BaseQuery {
  target: GrafanaApiTarget;
  payload?: Record<string, unknown>;
  editorMode: "code";
}

export class JsonApiQueryBuilder extends CustomQueryBuilder<JsonApiQuery> {
  constructor(target: GrafanaApiTarget, payload?: Record<string, unknown>) {
    super({
      datasource: datasourceRef("api"),
      target,
      ...(payload === undefined ? {} : { payload }),
      editorMode: "code",
      _implementsDataqueryVariant() {},
    });
  }
}

export function apiQuery(target: GrafanaApiTarget, payload?: Record<string, unknown>): JsonApiQueryBuilder {
  return new JsonApiQueryBuilder(target, payload);
}
