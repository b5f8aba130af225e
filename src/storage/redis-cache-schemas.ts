import type { Logger } from "pino";
import { z } from "zod";
import { idSchema, nonNegative, parseOrThrow, positivePrice, symbolSchema } from "../domain/identifiers.js";
import { utcDay } from "../domain/time.js";

/**
 * What the hot cache holds, as schemas and types: every time is epoch milliseconds, so hashes
 * hold only numbers and strings. The RedisCache validates against these; callers use the types.
 */

export const epochMs = z.number().int().nonnegative();
/** Hash field names chosen by callers (indicator names, metrics, signal actions). */
export const FIELD_NAME = /^[A-Za-z0-9_]{1,64}$/;
export const count = z.number().int().nonnegative();
export const fieldName = z.string().regex(FIELD_NAME, "must match [A-Za-z0-9_]{1,64}");
/** Signal types are part of a key, so they are kept narrow. */
export const signalType = z.string().regex(/^[a-z_]{1,32}$/, "must match [a-z_]{1,32}");

export const tickSchema = z.strictObject({
  symbol: symbolSchema,
  last: positivePrice,
  open: positivePrice,
  high: positivePrice,
  low: positivePrice,
  close: positivePrice,
  volume: nonNegative,
  bid: positivePrice,
  ask: positivePrice,
  timestamp: epochMs,
});
/** The latest tick of a symbol as the hot cache holds it (`last` is the traded price). */
export type LatestTick = z.infer<typeof tickSchema>;

export const indicatorValuesSchema = z.record(
  fieldName.refine((name) => name !== "timestamp", "'timestamp' is reserved"),
  z.number(),
);
export interface IndicatorWrite {
  symbol: string;
  values: Record<string, number>;
  timestamp: number;
}
export interface IndicatorSnapshot {
  values: Record<string, number>;
  timestamp: number;
}

export const sentimentSchema = z.strictObject({
  sentiment_score: z.number(),
  sentiment_label: z.string().min(1),
  news_count: z.number().int().nonnegative(),
  latest_news: z.array(
    z.strictObject({ headline: z.string(), source: z.string(), url: z.string(), timestamp: epochMs }),
  ),
  timestamp: epochMs,
});
export type Sentiment = z.infer<typeof sentimentSchema>;

export const candidateSchema = z.strictObject({
  symbol: symbolSchema,
  score: z.number(),
  price: positivePrice,
  signals: z.array(z.string().min(1)),
  timestamp: epochMs,
});
export type Candidate = z.infer<typeof candidateSchema>;

export const positionSchema = z.strictObject({
  trade_id: idSchema.optional(),
  side: z.enum(["long", "short"]).optional(),
  entry_price: positivePrice,
  quantity: z.number().positive(),
  entry_time: epochMs,
  current_price: positivePrice.optional(),
  unrealized_pnl: z.number().optional(),
  unrealized_pnl_pct: z.number().optional(),
  stop_loss: positivePrice.optional(),
  take_profit: positivePrice.optional(),
  last_update: epochMs.optional(),
});
export type Position = z.infer<typeof positionSchema>;
export type StoredPosition = Position & { strategy_id: string; symbol: string };
export interface PositionWrite {
  strategyId: string;
  symbol: string;
  position: Position;
}
/** A message on `channels.positionChanges`. */
export type PositionChange =
  | ({ type: "opened" | "updated" } & StoredPosition)
  | { type: "closed"; strategy_id: string; symbol: string };

export const signalSchema = z.strictObject({
  reason: z.string().min(1),
  price: positivePrice,
  timestamp: epochMs,
  indicators: z.record(z.string(), z.number()),
  confidence: z.number().min(0).max(1),
});
export type Signal = z.infer<typeof signalSchema>;

/** Closed-trade counters of one strategy to add: trades, wins (pnl > 0), losses (pnl < 0), Σ pnl. */
export interface TradeResultsWrite {
  strategyId: string;
  trades: number;
  wins: number;
  losses: number;
  pnl: number;
}

/**
 * One write-behind window, sent as one pipeline: the latest tick and indicators per symbol, the
 * latest signal per type and symbol, signal counts, closed-trade counters and daily figures summed
 * over the window, stop states (latest per trade) and the stop states of trades that closed.
 */
export interface CacheWindow {
  ticks?: readonly LatestTick[];
  indicators?: readonly IndicatorWrite[];
  signals?: readonly { type: string; symbol: string; signal: Signal }[];
  signalCounts?: readonly { strategyId: string; action: string; count: number }[];
  daily?: readonly { date: Date; metric: string; amount: number }[];
  /** Closed trades per strategy, summed over the window (see recordTradeResult). */
  tradeResults?: readonly TradeResultsWrite[];
  stopStates?: readonly { tradeId: string; state: StopState }[];
  stopDeletes?: readonly string[];
  /** Position monitoring documents (positions:monitoring:{symbol}), and symbols no longer held. */
  monitoring?: readonly { symbol: string; document: JsonObject }[];
  monitoringDeletes?: readonly string[];
  /** Open positions' marks (`positions:active:{symbol}`), each published as a change. */
  positions?: readonly PositionWrite[];
  /** The latest market scan: ranked candidates, the watchlist they make, the market context. */
  scan?: MarketScanWrite | undefined;
}

export interface MarketScanWrite {
  candidates: readonly Candidate[];
  watchlist: readonly string[];
  context: JsonObject;
}

export const stopStateSchema = z.strictObject({
  current_sl: positivePrice,
  highest_price: positivePrice,
  sl_type: z.string().regex(/^[a-z_]{1,32}$/, "must match [a-z_]{1,32}"),
  updated_at: epochMs,
});
export type StopState = z.infer<typeof stopStateSchema>;

export interface StrategyCounters {
  /** Count per signal action (`signals:{action}` fields). */
  signals: Record<string, number>;
  trades: number;
  wins: number;
  losses: number;
  pnl: number;
}

/** Nested JSON documents read whole (monitoring snapshots, market context). */
export const jsonObjectSchema = z.record(z.string(), z.json());
export type JsonObject = z.infer<typeof jsonObjectSchema>;

/** Flat hashes (system state, performance): each field is stored JSON-encoded so its type survives. */
export const flatRecordSchema = z.record(
  z.string().min(1),
  z.union([z.string(), z.number(), z.boolean(), z.null()]),
);
export type FlatRecord = z.infer<typeof flatRecordSchema>;

export interface RedisHealth {
  up: boolean;
  latencyMs: number | null;
  error?: string;
}

export interface RedisCacheOptions {
  logger?: Logger;
  /** How long one command may wait for its reply before it fails. Default 500 ms. */
  commandTimeoutMs?: number;
}

export type StateListener = (connected: boolean) => void;

/** Validates a caller-supplied date before it becomes part of a key. */
export function dayOf(date: Date): string {
  return utcDay(parseOrThrow(z.date(), date, "date"));
}

/** A JSON value as the cache stores it: finite numbers, strings, booleans, null, arrays, plain objects. */
function isJsonValue(value: unknown, depth = 0): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (depth > 32 || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.every((v) => isJsonValue(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) if (!isJsonValue((value as Record<string, unknown>)[key], depth + 1)) return false;
  return true;
}

export function isJsonObject(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value) && isJsonValue(value);
}
