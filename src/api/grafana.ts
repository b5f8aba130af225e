import type { Request, Response } from "express";
import { z } from "zod";
import { ValidationError } from "../domain/errors.js";
import { idSchema, parseOrThrow, symbolSchema } from "../domain/identifiers.js";
import {
  GRAFANA_API_BASE,
  GRAFANA_API_TARGETS,
  GRAFANA_API_VARIABLES,
  type GrafanaApiTarget,
} from "../schema/grafana.js";
import type { ApiDeps } from "./app.js";

/**
 * The Grafana JSON datasource routes (`simpod-json-datasource`, the maintained successor of
 * SimpleJSON) under GRAFANA_API_BASE: `GET /` for "Save & test", `POST /metrics` listing the
 * targets, `POST /query` answering one table per target and `POST /variable` for template
 * variables. They only read; POST is the plugin's contract, not a write.
 *
 * Every body is parsed with zod; a bad one throws a ValidationError naming the field
 * (`body.targets.0.payload.limit`), which the app answers as a 400. The table builders are
 * exported so a test can run the targets a dashboard uses without going through HTTP.
 */

/** Route patterns, also the `route` label of `observeRequest` (a fixed set). */
export const GRAFANA_ROUTES = {
  root: `${GRAFANA_API_BASE}/`,
  metrics: `${GRAFANA_API_BASE}/metrics`,
  query: `${GRAFANA_API_BASE}/query`,
  variable: `${GRAFANA_API_BASE}/variable`,
} as const;

/** What the routes read: the DataManager and the configured strategies. */
export type GrafanaDeps = Pick<ApiDeps, "data" | "strategies">;

type RouteHandler = (req: Request, res: Response) => Promise<void> | void;

/** How the app registers a route: one method, anything else answered 405 by the app. */
export interface GrafanaRouteRegistrar {
  get(path: string, handler: RouteHandler): void;
  post(path: string, handler: RouteHandler): void;
}

export type GrafanaColumnType = "string" | "number" | "time";

export interface GrafanaColumn {
  readonly text: string;
  readonly type: GrafanaColumnType;
}

/** A table cell; `time` columns hold epoch milliseconds. */
export type GrafanaCell = string | number | null;

export interface GrafanaTable {
  type: "table";
  refId?: string;
  columns: GrafanaColumn[];
  rows: GrafanaCell[][];
}

export interface GrafanaMetric {
  label: string;
  value: GrafanaApiTarget;
  payloads: [];
}

export interface GrafanaVariableValue {
  __text: string;
  __value: string;
}

/** Time range of a query in unix seconds, the journal's unit. */
export interface GrafanaRange {
  from: number;
  to: number;
}

export const MAX_GRAFANA_TARGETS = 20;
export const RECENT_TRADES_DEFAULT_LIMIT = 50;
export const RECENT_TRADES_MAX_LIMIT = 500;
export const CANDIDATES_DEFAULT_LIMIT = 10;

const col = <const T extends string>(text: T, type: GrafanaColumnType) => ({ text, type }) as const;

const OPEN_POSITION_COLUMNS = [
  col("trade_id", "string"),
  col("strategy_id", "string"),
  col("symbol", "string"),
  col("side", "string"),
  col("entry_time", "time"),
  col("entry_price", "number"),
  col("quantity", "number"),
  col("current_price", "number"),
  col("unrealized_pnl", "number"),
  col("unrealized_pnl_pct", "number"),
  col("stop_loss", "number"),
] as const;

const STRATEGY_STATS_COLUMNS = [
  col("strategy_id", "string"),
  col("total_trades", "number"),
  col("winners", "number"),
  col("losers", "number"),
  col("win_rate", "number"),
  col("total_pnl", "number"),
  col("avg_pnl", "number"),
  col("profit_factor", "number"),
  col("expectancy", "number"),
  col("max_drawdown", "number"),
  col("avg_duration_seconds", "number"),
] as const;

const RECENT_TRADE_COLUMNS = [
  col("trade_id", "string"),
  col("strategy_id", "string"),
  col("symbol", "string"),
  col("side", "string"),
  col("status", "string"),
  col("entry_time", "time"),
  col("exit_time", "time"),
  col("entry_price", "number"),
  col("exit_price", "number"),
  col("pnl", "number"),
  col("pnl_pct", "number"),
  col("exit_reason", "string"),
] as const;

const CANDIDATE_COLUMNS = [
  col("rank", "number"),
  col("symbol", "string"),
  col("score", "number"),
  col("price", "number"),
  col("signals", "string"),
  col("timestamp", "time"),
] as const;

/** The columns of each target's table, in order. */
export const GRAFANA_TABLE_COLUMNS = {
  [GRAFANA_API_TARGETS.openPositions]: OPEN_POSITION_COLUMNS,
  [GRAFANA_API_TARGETS.strategyStats]: STRATEGY_STATS_COLUMNS,
  [GRAFANA_API_TARGETS.recentTrades]: RECENT_TRADE_COLUMNS,
  [GRAFANA_API_TARGETS.candidates]: CANDIDATE_COLUMNS,
} as const satisfies Record<GrafanaApiTarget, readonly GrafanaColumn[]>;

const TARGET_LABELS: Record<GrafanaApiTarget, string> = {
  [GRAFANA_API_TARGETS.openPositions]: "Open positions (live mark, unrealized P&L)",
  [GRAFANA_API_TARGETS.strategyStats]: "Strategy stats (trades closed in the time range)",
  [GRAFANA_API_TARGETS.recentTrades]: "Recent trades (newest first)",
  [GRAFANA_API_TARGETS.candidates]: "Screener candidates (best first)",
};

/** One row as an object keyed by column name. */
type ColumnRecord<C extends readonly GrafanaColumn[]> = { [K in C[number]["text"]]: GrafanaCell };

function table<C extends readonly GrafanaColumn[]>(
  columns: C,
  records: readonly ColumnRecord<C>[],
  refId: string | undefined,
): GrafanaTable {
  const result: GrafanaTable = {
    type: "table",
    columns: columns.map(({ text, type }) => ({ text, type })),
    rows: records.map((record) =>
      columns.map(({ text }) => (record as Record<string, GrafanaCell>)[text] ?? null),
    ),
  };
  if (refId !== undefined) result.refId = refId;
  return result;
}

/** Unix seconds → epoch milliseconds, the unit of `time` columns. */
function ms(seconds: number): number;
function ms(seconds: number | null): number | null;
function ms(seconds: number | null): number | null {
  return seconds === null ? null : Math.round(seconds * 1000);
}

// --- request schemas ----------------------------------------------------------------------------

const targetValues = Object.values(GRAFANA_API_TARGETS) as [GrafanaApiTarget, ...GrafanaApiTarget[]];
const variableValues = Object.values(GRAFANA_API_VARIABLES) as [string, ...string[]];

/** An empty string (a blank text variable) means "no filter". */
const optionalIdFilter = z.union([z.literal(""), idSchema]).optional();
const optionalSymbolFilter = z.union([z.literal(""), symbolSchema]).optional();

/** The query builder's inputs send strings, code mode numbers: both are accepted. */
const limitSchema = z.preprocess(
  (value) => (typeof value === "string" && /^\d{1,4}$/.test(value) ? Number(value) : value),
  z
    .number()
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .max(RECENT_TRADES_MAX_LIMIT, `must be at most ${RECENT_TRADES_MAX_LIMIT}`),
);

const PAYLOAD_SCHEMAS = {
  [GRAFANA_API_TARGETS.openPositions]: z.strictObject({}),
  [GRAFANA_API_TARGETS.strategyStats]: z.strictObject({}),
  [GRAFANA_API_TARGETS.recentTrades]: z.strictObject({
    limit: limitSchema.optional(),
    strategy: optionalIdFilter,
    symbol: optionalSymbolFilter,
  }),
  [GRAFANA_API_TARGETS.candidates]: z.strictObject({ limit: limitSchema.optional() }),
} as const satisfies Record<GrafanaApiTarget, z.ZodType>;

export type GrafanaPayload<T extends GrafanaApiTarget> = z.output<(typeof PAYLOAD_SCHEMAS)[T]>;

/** One target of a query, its payload parsed for its target. */
export type GrafanaTargetQuery = {
  [T in GrafanaApiTarget]: { refId?: string | undefined; target: T; payload: GrafanaPayload<T> };
}[GrafanaApiTarget];

const isoTime = z.iso.datetime({ offset: true, error: "must be an ISO 8601 date-time" });

const rangeSchema = z
  .object({ from: isoTime, to: isoTime })
  .transform(({ from, to }) => ({ from: Date.parse(from) / 1000, to: Date.parse(to) / 1000 }))
  .refine(({ from, to }) => from <= to, "from must not be after to")
  .refine(({ from }) => from >= 0, "must not start before 1970");

/** Grafana sends many more fields (panelId, scopedVars, datasource, ...): they are ignored. */
const targetSchema = z.object({
  refId: z.string().max(64).optional(),
  target: z.enum(targetValues),
  payload: z.unknown().optional(),
});

const querySchema = z.object({
  range: rangeSchema,
  intervalMs: z.number().finite().nonnegative().optional(),
  maxDataPoints: z.number().int().nonnegative().optional(),
  targets: z.array(targetSchema).max(MAX_GRAFANA_TARGETS, `at most ${MAX_GRAFANA_TARGETS} targets`),
});

const metricsSchema = z.object({
  metric: z.string().max(256).optional(),
  payload: z.record(z.string(), z.unknown()).optional(),
});

const variableSchema = z.object({
  payload: z.strictObject({
    target: z.enum(variableValues),
    strategy: optionalIdFilter,
  }),
});

/** A target's payload: absent, null or "" is no payload; otherwise an object for its target. */
function parsePayload<T extends GrafanaApiTarget>(
  target: T,
  payload: unknown,
  field: string,
): GrafanaPayload<T> {
  const value = payload === undefined || payload === null || payload === "" ? {} : payload;
  return parseOrThrow(PAYLOAD_SCHEMAS[target] as unknown as z.ZodType<GrafanaPayload<T>>, value, field);
}

export interface ParsedGrafanaQuery {
  range: GrafanaRange;
  targets: GrafanaTargetQuery[];
}

/** Validates a `/query` body; a bad one throws a ValidationError naming the field. */
export function parseGrafanaQuery(body: unknown): ParsedGrafanaQuery {
  const { range, targets } = parseOrThrow(querySchema, body, "body");
  return {
    range,
    targets: targets.map(
      ({ refId, target, payload }, i) =>
        ({
          refId,
          target,
          payload: parsePayload(target, payload, `body.targets.${i}.payload`),
        }) as GrafanaTargetQuery,
    ),
  };
}

// --- answers ------------------------------------------------------------------------------------

/** What `/metrics` lists: the three targets, each with a human label and no payload options. */
export function grafanaMetrics(): GrafanaMetric[] {
  return targetValues.map((value) => ({ label: TARGET_LABELS[value], value, payloads: [] }));
}

/** Configured strategies in configuration order, then those only the journal knows, sorted. */
export function knownStrategyIds(deps: GrafanaDeps): string[] {
  const ids = deps.strategies().map((s) => s.id);
  const configured = new Set(ids);
  for (const id of deps.data.getJournalStrategyIds()) if (!configured.has(id)) ids.push(id);
  return [...new Set(ids)];
}

/** Symbols of the configured strategies and of the journal, sorted; only one strategy's when named. */
export function knownSymbols(deps: GrafanaDeps, strategyId?: string): string[] {
  const symbols = new Set(deps.data.getJournalSymbols(strategyId));
  for (const s of deps.strategies()) {
    if (strategyId === undefined || s.id === strategyId) for (const symbol of s.symbols) symbols.add(symbol);
  }
  return [...symbols].sort();
}

/** The table for one parsed target. */
export async function buildGrafanaTable(
  deps: GrafanaDeps,
  query: GrafanaTargetQuery,
  range: GrafanaRange,
): Promise<GrafanaTable> {
  const { data } = deps;
  switch (query.target) {
    case GRAFANA_API_TARGETS.openPositions: {
      const positions = await data.getOpenPositions();
      return table(
        OPEN_POSITION_COLUMNS,
        positions.map((p) => ({ ...p, entry_time: ms(p.entry_time) })),
        query.refId,
      );
    }
    case GRAFANA_API_TARGETS.strategyStats: {
      // The dashboard's time range is the window: trades closed between from and to.
      const rows = knownStrategyIds(deps).map((strategy_id) => ({
        strategy_id,
        ...data.getStrategyStatsBetween(strategy_id, range.from, range.to),
      }));
      return table(STRATEGY_STATS_COLUMNS, rows, query.refId);
    }
    case GRAFANA_API_TARGETS.recentTrades: {
      // Not limited to the time range: the latest trades are shown whenever they happened.
      const { limit, strategy, symbol } = query.payload;
      const trades = data.getRecentTrades({
        limit: limit ?? RECENT_TRADES_DEFAULT_LIMIT,
        strategyId: strategy || undefined,
        symbol: symbol || undefined,
      });
      const rows = trades.map((t) => ({ ...t, entry_time: ms(t.entry_time), exit_time: ms(t.exit_time) }));
      return table(RECENT_TRADE_COLUMNS, rows, query.refId);
    }
    case GRAFANA_API_TARGETS.candidates: {
      // The latest scan, whatever the time range (the cache keeps only the latest).
      const candidates = await data.getRankedCandidates(query.payload.limit ?? CANDIDATES_DEFAULT_LIMIT);
      const rows = candidates.map((c, i) => ({ rank: i + 1, ...c, signals: c.signals.join(", ") }));
      return table(CANDIDATE_COLUMNS, rows, query.refId);
    }
  }
}

/** Answers a `/query` body: validates it, then one table per target, in order. */
export async function answerGrafanaQuery(deps: GrafanaDeps, body: unknown): Promise<GrafanaTable[]> {
  const { range, targets } = parseGrafanaQuery(body);
  const tables: GrafanaTable[] = [];
  for (const target of targets) tables.push(await buildGrafanaTable(deps, target, range));
  return tables;
}

/** Answers a `/variable` body: strategy ids, or symbols (of one strategy when `strategy` is set). */
export function answerGrafanaVariable(deps: GrafanaDeps, body: unknown): GrafanaVariableValue[] {
  const { payload } = parseOrThrow(variableSchema, body, "body");
  const values =
    payload.target === GRAFANA_API_VARIABLES.strategies
      ? knownStrategyIds(deps)
      : knownSymbols(deps, payload.strategy || undefined);
  return values.map((value) => ({ __text: value, __value: value }));
}

/**
 * The parsed JSON body, undefined when there is none. A body the JSON parser did not take (another
 * Content-Type) reaches here as raw bytes and is refused.
 */
function jsonBody(req: Request): unknown {
  if (!Buffer.isBuffer(req.body)) return req.body;
  if (req.body.length === 0) return undefined;
  throw new ValidationError("body", "must be JSON sent as application/json");
}

/** Registers the Grafana routes on the app. */
export function mountGrafanaRoutes(routes: GrafanaRouteRegistrar, deps: GrafanaDeps): void {
  routes.get(GRAFANA_ROUTES.root, (_req, res) => {
    res.json({ status: "ok" });
  });

  routes.post(GRAFANA_ROUTES.metrics, (req, res) => {
    // The plugin posts {metric, payload}; a bodiless call is accepted too.
    parseOrThrow(metricsSchema, jsonBody(req) ?? {}, "body");
    res.json(grafanaMetrics());
  });

  routes.post(GRAFANA_ROUTES.query, async (req, res) => {
    res.json(await answerGrafanaQuery(deps, jsonBody(req)));
  });

  routes.post(GRAFANA_ROUTES.variable, (req, res) => {
    res.json(answerGrafanaVariable(deps, jsonBody(req)));
  });
}
