import {
  chunksToLinesIterable,
  FLUX_VALUE,
  fluxFloat,
  fluxInteger,
  fluxString,
  HttpError,
  type InfluxDB,
  linesToRowsIterable,
  type QueryApi,
} from "@influxdata/influxdb-client";
import { z } from "zod";
import { ConfigError, StoreUnavailableError, ValidationError } from "../domain/errors.js";
import { idSchema, parseOrThrow, symbolSchema } from "../domain/identifiers.js";
import {
  type FieldName,
  INFLUX_SCHEMA,
  type MeasurementName,
  schemaHasColumn,
  type TagName,
} from "../schema/influx.js";

/**
 * The Flux queries VELOX runs, as a typed catalogue. Every query text is a constant: caller input
 * reaches Flux only through the `params` record, never by splicing text into the query.
 *
 * How `params` is bound depends on the server:
 * - `api`: POST /api/v2/query with `{query, params}`. InfluxDB Cloud injects the JSON object as the
 *   Flux record `params`. InfluxDB OSS 2.x does not support this and reports `params` as an
 *   undefined identifier.
 * - `prelude` (default, for OSS): one line `params = {...}` is put in front of the constant text,
 *   each value written by the client library's literal functions (`fluxString`, `fluxInteger`, …),
 *   which escape quotes, backslashes and `${`.
 *
 * Both modes bind the same types (strings and numbers, the only ones the `params` field carries),
 * so one Flux text serves both: times are RFC3339 strings turned into times by `time(v: …)`.
 * Every input is validated against strict patterns before anything is built.
 */

export const PARAMS_MODES = ["api", "prelude"] as const;
export type ParamsMode = (typeof PARAMS_MODES)[number];

export type QueryParamValue = string | number;
export type QueryParams = Record<string, QueryParamValue>;

/** What to send: the query text, and for `api` mode the `params` object of the request body. */
export interface BuiltQuery {
  query: string;
  params?: QueryParams;
}

// ---------------------------------------------------------------------------------------------
// Names from the schema. Checked once at module load, so a renamed measurement, tag or field fails
// here (and in the type checker) instead of producing a query that silently matches nothing.

const FLUX_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function measurement<M extends MeasurementName>(name: M): M {
  if (!Object.hasOwn(INFLUX_SCHEMA, name)) throw new Error(`measurement ${name} is not in INFLUX_SCHEMA`);
  return name;
}

/** `r.<name>` for a tag or field of `m` (dot access: schema names are asserted to be identifiers). */
function col<M extends MeasurementName>(m: M, name: TagName<M> | FieldName<M>): string {
  if (!schemaHasColumn(m, name)) throw new Error(`${m} has no tag or field ${name} in INFLUX_SCHEMA`);
  if (!FLUX_IDENTIFIER.test(name)) throw new Error(`${m}.${name} is not a Flux identifier`);
  return `r.${name}`;
}

// ---------------------------------------------------------------------------------------------
// Inputs.

/** InfluxDB 2 bucket names: two or more characters, no leading underscore, no double quote. */
export const BUCKET_PATTERN = /^(?!_)[^"\p{Cc}]{2,}$/u;
const bucketSchema = z
  .string()
  .regex(
    BUCKET_PATTERN,
    "must be 2+ characters, not start with _, contain no double quote or control character",
  );

/** Flux times are int64 nanoseconds since the epoch: about 1677-09-21 to 2262-04-11. */
const MAX_EPOCH_MS = 9_223_372_036_854;

/** A JS Date or epoch milliseconds, checked to fit Flux's time range. */
const timeInput = z
  .union([z.date(), z.number()], { error: "must be a Date or epoch milliseconds" })
  .transform((value, ctx) => {
    const ms = value instanceof Date ? value.getTime() : value;
    if (!Number.isFinite(ms) || Math.abs(ms) > MAX_EPOCH_MS) {
      ctx.addIssue({
        code: "custom",
        message: "must be a valid Date or epoch milliseconds within 1677..2262",
      });
      return z.NEVER;
    }
    return ms;
  });

const rfc3339 = (ms: number): string => new Date(ms).toISOString();

/** Inputs every query takes: the bucket and a [start, stop) window. */
const WINDOW = { bucket: bucketSchema, start: timeInput, stop: timeInput };

interface Window {
  start: number;
  stop: number;
}

function checkWindow(value: Window, ctx: z.RefinementCtx): void {
  if (value.stop <= value.start)
    ctx.addIssue({ code: "custom", path: ["stop"], message: "must be after start" });
}

/** The `params` record: the validated inputs, with the window as RFC3339 strings. */
function toParams<T extends Window>(value: T): Omit<T, keyof Window> & { start: string; stop: string } {
  return { ...value, start: rfc3339(value.start), stop: rfc3339(value.stop) };
}

// ---------------------------------------------------------------------------------------------
// The catalogue.

export interface QueryDefinition<Name extends string = string, Params extends z.ZodType = z.ZodType> {
  readonly name: Name;
  /** The one measurement the query reads. */
  readonly measurement: MeasurementName;
  readonly description: string;
  /** Constant Flux text; reads caller input only through `params.<name>`. */
  readonly flux: string;
  /** Validates the inputs and maps them to the `params` record. */
  readonly params: Params;
}

function define<Name extends string, Params extends z.ZodType<QueryParams>>(
  definition: QueryDefinition<Name, Params>,
): QueryDefinition<Name, Params> {
  return Object.freeze(definition);
}

const RANGE = "range(start: time(v: params.start), stop: time(v: params.stop))";
const PIVOT = `pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`;

const TICKS = measurement("ticks");
const INDICATORS = measurement("indicators");
const POSITIONS = measurement("positions");
const TRAILING_SL = measurement("trailing_sl");
const STRATEGY_METRICS = measurement("strategy_metrics");

export const QUERIES = {
  tickRange: define({
    name: "tickRange",
    measurement: TICKS,
    description: "One symbol's ticks in a time window, one row per tick (fields pivoted to columns).",
    flux: `from(bucket: params.bucket)
  |> ${RANGE}
  |> filter(fn: (r) => r._measurement == "${TICKS}" and ${col(TICKS, "symbol")} == params.symbol)
  |> ${PIVOT}`,
    params: z
      .strictObject({ symbol: symbolSchema, ...WINDOW })
      .superRefine(checkWindow)
      .transform(toParams),
  }),

  indicators: define({
    name: "indicators",
    measurement: INDICATORS,
    description: "One indicator of one symbol in a time window, one row per field value.",
    flux: `from(bucket: params.bucket)
  |> ${RANGE}
  |> filter(fn: (r) =>
    r._measurement == "${INDICATORS}"
      and ${col(INDICATORS, "symbol")} == params.symbol
      and ${col(INDICATORS, "indicator_type")} == params.indicatorType)`,
    params: z
      .strictObject({ symbol: symbolSchema, indicatorType: idSchema, ...WINDOW })
      .superRefine(checkWindow)
      .transform(toParams),
  }),

  positionHistory: define({
    name: "positionHistory",
    measurement: POSITIONS,
    description: "One trade's position snapshots in a time window, one row per snapshot.",
    flux: `from(bucket: params.bucket)
  |> ${RANGE}
  |> filter(fn: (r) => r._measurement == "${POSITIONS}" and ${col(POSITIONS, "trade_id")} == params.tradeId)
  |> ${PIVOT}`,
    params: z
      .strictObject({ tradeId: idSchema, ...WINDOW })
      .superRefine(checkWindow)
      .transform(toParams),
  }),

  slTimeline: define({
    name: "slTimeline",
    measurement: TRAILING_SL,
    description: "One trade's trailing stop-loss updates in a time window, one row per update.",
    flux: `from(bucket: params.bucket)
  |> ${RANGE}
  |> filter(fn: (r) => r._measurement == "${TRAILING_SL}" and ${col(TRAILING_SL, "trade_id")} == params.tradeId)
  |> ${PIVOT}`,
    params: z
      .strictObject({ tradeId: idSchema, ...WINDOW })
      .superRefine(checkWindow)
      .transform(toParams),
  }),

  strategyPerformance: define({
    name: "strategyPerformance",
    measurement: STRATEGY_METRICS,
    description: "One strategy's metrics in a time window, one row per sample.",
    flux: `from(bucket: params.bucket)
  |> ${RANGE}
  |> filter(fn: (r) =>
    r._measurement == "${STRATEGY_METRICS}" and ${col(STRATEGY_METRICS, "strategy_id")} == params.strategyId)
  |> ${PIVOT}`,
    params: z
      .strictObject({ strategyId: idSchema, ...WINDOW })
      .superRefine(checkWindow)
      .transform(toParams),
  }),
} as const;

export type Queries = typeof QUERIES;
export type QueryName = keyof Queries;
/** What a caller passes for query N (times as Date or epoch ms). */
export type QueryInput<N extends QueryName> = z.input<Queries[N]["params"]>;

/** Every query definition, for tests and dashboards to iterate. */
export const QUERY_DEFINITIONS: readonly Queries[QueryName][] = Object.freeze(Object.values(QUERIES));

// ---------------------------------------------------------------------------------------------
// Building.

/** A Flux literal for one parameter value, written by the client library's sanitising functions. */
function fluxLiteral(value: QueryParamValue): string {
  const literal =
    typeof value === "string"
      ? fluxString(value)
      : Number.isSafeInteger(value)
        ? fluxInteger(value)
        : fluxFloat(value);
  return literal[FLUX_VALUE]();
}

/** The `params = {...}` line that binds `params` on servers without query parameters (OSS). */
export function paramsPrelude(params: QueryParams): string {
  const entries = Object.entries(params).map(([key, value]) => {
    // Keys are the catalogue's own input names, never caller text; checked all the same.
    if (!FLUX_IDENTIFIER.test(key)) throw new Error(`parameter name ${key} is not a Flux identifier`);
    return `${key}: ${fluxLiteral(value)}`;
  });
  return `params = {${entries.join(", ")}}`;
}

/**
 * Validates `input` for query `name` and returns what to send. Throws ValidationError naming the
 * field (`<query>.<field>`) before anything is built.
 */
export function buildQuery<N extends QueryName>(
  name: N,
  input: QueryInput<N>,
  mode: ParamsMode = "prelude",
): BuiltQuery {
  if (!Object.hasOwn(QUERIES, name)) throw new ValidationError("query", `unknown query ${String(name)}`);
  if (!PARAMS_MODES.includes(mode))
    throw new ValidationError("mode", `must be one of ${PARAMS_MODES.join(", ")}`);
  const definition: QueryDefinition = QUERIES[name];
  const params = parseOrThrow(definition.params as z.ZodType<QueryParams>, input, name);
  if (mode === "api") return { query: definition.flux, params };
  return { query: `${paramsPrelude(params)}\n${definition.flux}` };
}

// ---------------------------------------------------------------------------------------------
// Running.

/** One result row: column name to value, as the client library parses annotated CSV. */
export type QueryRow = Record<string, unknown>;

export interface InfluxQueryClientOptions {
  influx: InfluxDB;
  org: string;
  bucket: string;
  /** How `params` reaches the server; `prelude` (default) for InfluxDB OSS, `api` for Cloud. */
  mode?: ParamsMode;
}

/** The client library's default CSV dialect (what QueryApi sends). */
const DIALECT = {
  header: true,
  delimiter: ",",
  quoteChar: '"',
  commentPrefix: "#",
  annotations: ["datatype", "group", "default"],
};

/** Runs catalogue queries against one bucket. */
export class InfluxQueryClient {
  readonly mode: ParamsMode;
  private readonly queryApi: QueryApi;

  constructor(private readonly options: InfluxQueryClientOptions) {
    this.mode = options.mode ?? "prelude";
    if (!PARAMS_MODES.includes(this.mode)) {
      throw new ConfigError("mode", `must be one of ${PARAMS_MODES.join(", ")}`);
    }
    this.queryApi = options.influx.getQueryApi(options.org);
  }

  /**
   * Runs query `name` on the client's bucket. ValidationError for bad input (nothing is sent);
   * ConfigError when `api` mode meets a server without query parameters; StoreUnavailableError
   * for any other failure.
   */
  async query<N extends QueryName>(name: N, input: Omit<QueryInput<N>, "bucket">): Promise<QueryRow[]> {
    const built = buildQuery(name, { ...input, bucket: this.options.bucket } as QueryInput<N>, this.mode);
    try {
      return built.params === undefined
        ? await this.queryApi.collectRows<QueryRow>(built.query)
        : await this.postWithParams(built.query, built.params);
    } catch (error) {
      throw this.translate(error);
    }
  }

  /** POST /api/v2/query with a `params` object, through the client's transport (auth, timeouts). */
  private async postWithParams(query: string, params: QueryParams): Promise<QueryRow[]> {
    const { transport } = this.options.influx;
    const chunks = transport.iterate(
      `/api/v2/query?org=${encodeURIComponent(this.options.org)}`,
      JSON.stringify({ query, params, type: "flux", dialect: DIALECT }),
      {
        method: "POST",
        headers: { "content-type": "application/json; encoding=utf-8", "accept-encoding": "identity" },
      },
    );
    const rows: QueryRow[] = [];
    for await (const { values, tableMeta } of linesToRowsIterable(
      chunksToLinesIterable(chunks, transport.chunkCombiner),
    )) {
      rows.push(tableMeta.toObject(values));
    }
    return rows;
  }

  private translate(error: unknown): Error {
    const message = error instanceof Error ? error.message : String(error);
    if (
      this.mode === "api" &&
      error instanceof HttpError &&
      error.statusCode === 400 &&
      `${message} ${error.body ?? ""}`.includes("undefined identifier params")
    ) {
      return new ConfigError(
        "mode",
        "this InfluxDB does not support query parameters (InfluxDB OSS); use mode 'prelude'",
      );
    }
    return new StoreUnavailableError("influxdb", message, { cause: error });
  }
}
