import { z } from "zod";
import {
  ID_PATTERN,
  idSchema,
  nonNegative,
  positivePrice,
  SYMBOL_PATTERN,
  symbolSchema,
  unixSeconds,
} from "./identifiers.js";

/**
 * Inputs of the trade journal. Every write is parsed with these schemas (via parseOrThrow) before
 * any SQL runs, so a bad value surfaces as a ValidationError naming its field, e.g.
 * `trade.entry_price`, `exit.exit_time` or `sl_update.stop`.
 */

export const tradeActionSchema = z.enum(["BUY", "SELL"]);
export const tradeSideSchema = z.enum(["long", "short"]);
export const tradeStatusSchema = z.enum(["open", "closed"]);
export const signalTypeSchema = z.enum(["entry", "exit"]);

export type TradeAction = z.infer<typeof tradeActionSchema>;
export type TradeSide = z.infer<typeof tradeSideSchema>;
export type TradeStatus = z.infer<typeof tradeStatusSchema>;
export type SignalType = z.infer<typeof signalTypeSchema>;

/** Free-text labels (exit reasons, stop types) end up as Grafana legend entries: keep them short. */
const shortLabel = z.string().trim().min(1, "must not be empty").max(64, "must be at most 64 characters");

/** The entry order's action must open the stated side: BUY opens a long, SELL opens a short. */
const ENTRY_ACTION: Record<TradeSide, TradeAction> = { long: "BUY", short: "SELL" };

export const newTradeSchema = z
  .object({
    trade_id: idSchema,
    strategy_id: idSchema,
    symbol: symbolSchema,
    /** The entry order's action. */
    action: tradeActionSchema,
    side: tradeSideSchema,
    entry_time: unixSeconds,
    entry_price: positivePrice,
    quantity: z.number().finite().positive(),
    /** Fees paid on entry. */
    fees: nonNegative.default(0),
    stop_loss_initial: positivePrice.optional(),
  })
  .refine((t) => ENTRY_ACTION[t.side] === t.action, {
    message: "BUY opens a long trade and SELL opens a short one",
    path: ["action"],
  });

export const tradeExitSchema = z.object({
  exit_time: unixSeconds,
  exit_price: positivePrice,
  /** Fees paid on exit; added to the entry fees. */
  exit_fees: nonNegative.default(0),
  exit_reason: shortLabel,
  /** Highest / lowest price seen while the trade was open, if the caller tracked them. */
  max_price: positivePrice.optional(),
  min_price: positivePrice.optional(),
});

export const signalConditionsSchema = z.object({
  trade_id: idSchema,
  signal_type: signalTypeSchema,
  /** Stored as JSON, so values must survive a JSON round trip (no NaN, undefined or functions). */
  conditions: z.record(z.string(), z.json()),
  timestamp: unixSeconds,
});

export const slUpdateSchema = z.object({
  trade_id: idSchema,
  ts: unixSeconds,
  stop: positivePrice,
  highest_price: positivePrice,
  sl_type: shortLabel,
});

/*
 * Plain checks (see plainOrParse): true only for a value each schema above passes unchanged — every
 * key of the output present, none it would strip, no label it would trim — so the journal's fills
 * and stop moves skip zod, which then runs only to word an error. test/unit/trade-plain.test.ts
 * holds them to the schemas.
 */
const finite = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const positive = (v: unknown) => finite(v) && v > 0;
const notNegative = (v: unknown) => finite(v) && v >= 0;
const plainId = (v: unknown) => typeof v === "string" && ID_PATTERN.test(v);
const plainLabel = (v: unknown) => typeof v === "string" && v.length >= 1 && v.length <= 64 && v.trim() === v;

/** Own keys of `record`, or -1 when one of `optional` is there but not `ok` (undefined, say). */
function keysWith(record: Record<string, unknown>, optional: readonly string[], ok: (v: unknown) => boolean) {
  let count = 0;
  for (const key in record) if (Object.hasOwn(record, key)) count++;
  for (const key of optional) if (Object.hasOwn(record, key) && !ok(record[key])) return -1;
  return count;
}

const NEW_TRADE_KEYS = 9;
const NEW_TRADE_OPTIONAL = ["stop_loss_initial"] as const;

export function plainNewTrade(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const t = value as Record<string, unknown>;
  const optional = Object.hasOwn(t, "stop_loss_initial") ? 1 : 0;
  return (
    keysWith(t, NEW_TRADE_OPTIONAL, positive) === NEW_TRADE_KEYS + optional &&
    plainId(t.trade_id) &&
    plainId(t.strategy_id) &&
    typeof t.symbol === "string" &&
    SYMBOL_PATTERN.test(t.symbol) &&
    ((t.side === "long" && t.action === "BUY") || (t.side === "short" && t.action === "SELL")) &&
    notNegative(t.entry_time) &&
    positive(t.entry_price) &&
    positive(t.quantity) &&
    notNegative(t.fees)
  );
}

const TRADE_EXIT_KEYS = 4;
const TRADE_EXIT_OPTIONAL = ["max_price", "min_price"] as const;

export function plainTradeExit(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const e = value as Record<string, unknown>;
  const optional = (Object.hasOwn(e, "max_price") ? 1 : 0) + (Object.hasOwn(e, "min_price") ? 1 : 0);
  return (
    keysWith(e, TRADE_EXIT_OPTIONAL, positive) === TRADE_EXIT_KEYS + optional &&
    notNegative(e.exit_time) &&
    positive(e.exit_price) &&
    notNegative(e.exit_fees) &&
    plainLabel(e.exit_reason)
  );
}

const SL_UPDATE_KEYS = 5;

export function plainSlUpdate(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const u = value as Record<string, unknown>;
  return (
    keysWith(u, [], positive) === SL_UPDATE_KEYS &&
    plainId(u.trade_id) &&
    notNegative(u.ts) &&
    positive(u.stop) &&
    positive(u.highest_price) &&
    plainLabel(u.sl_type)
  );
}

/** What callers pass (defaults still optional). */
export type NewTrade = z.input<typeof newTradeSchema>;
export type TradeExit = z.input<typeof tradeExitSchema>;
export type SignalConditions = z.input<typeof signalConditionsSchema>;
export type SlUpdate = z.input<typeof slUpdateSchema>;

/** What the journal works with after parsing (defaults filled in). */
export type ParsedNewTrade = z.output<typeof newTradeSchema>;
export type ParsedTradeExit = z.output<typeof tradeExitSchema>;
export type ParsedSignalConditions = z.output<typeof signalConditionsSchema>;
export type ParsedSlUpdate = z.output<typeof slUpdateSchema>;

/** P&L as a percentage of the entry notional (entry_price × quantity): the journal's `pnl_pct`. */
export function pnlPercent(pnl: number, entryPrice: number, quantity: number): number {
  return (pnl / (entryPrice * quantity)) * 100;
}

/** A row of the `trades` table. Exit columns are null while the trade is open. */
export interface Trade {
  trade_id: string;
  strategy_id: string;
  symbol: string;
  action: TradeAction;
  side: TradeSide;
  entry_time: number;
  entry_price: number;
  quantity: number;
  exit_time: number | null;
  exit_price: number | null;
  /** Net of all fees. */
  pnl: number | null;
  /** pnl as a percentage of the entry notional (entry_price × quantity). */
  pnl_pct: number | null;
  /** Total fees: entry fees while open, entry + exit fees once closed. */
  fees: number;
  stop_loss_initial: number | null;
  max_price: number | null;
  min_price: number | null;
  exit_reason: string | null;
  duration_seconds: number | null;
  status: TradeStatus;
  created_at: number;
  updated_at: number;
}

/** What an exit sets on a trade's row. */
export type ExitColumns = Pick<
  Trade,
  | "exit_time"
  | "exit_price"
  | "pnl"
  | "pnl_pct"
  | "fees"
  | "max_price"
  | "min_price"
  | "exit_reason"
  | "duration_seconds"
>;

/** What a trade's row takes from its entry. */
export type EntryColumns = Pick<
  Trade,
  "trade_id" | "strategy_id" | "symbol" | "action" | "side" | "entry_time" | "entry_price" | "quantity"
> & { fees?: number; stop_loss_initial?: number | null };

/**
 * A `trades` row with every column named, in the table's order: open without `exit`, closed with
 * it. Not a spread of the entry with keys after it: on Node 20 that costs about 1.4 µs per key
 * (docs/performance.md), and rows are built on every fill.
 */
export function tradeRow(
  entry: EntryColumns,
  exit: ExitColumns | undefined,
  createdAt: number,
  updatedAt: number,
): Trade {
  return {
    trade_id: entry.trade_id,
    strategy_id: entry.strategy_id,
    symbol: entry.symbol,
    action: entry.action,
    side: entry.side,
    entry_time: entry.entry_time,
    entry_price: entry.entry_price,
    quantity: entry.quantity,
    exit_time: exit ? exit.exit_time : null,
    exit_price: exit ? exit.exit_price : null,
    pnl: exit ? exit.pnl : null,
    pnl_pct: exit ? exit.pnl_pct : null,
    fees: exit ? exit.fees : (entry.fees ?? 0),
    stop_loss_initial: entry.stop_loss_initial ?? null,
    max_price: exit ? exit.max_price : null,
    min_price: exit ? exit.min_price : null,
    exit_reason: exit ? exit.exit_reason : null,
    duration_seconds: exit ? exit.duration_seconds : null,
    status: exit ? "closed" : "open",
    created_at: createdAt,
    updated_at: updatedAt,
  };
}

/** A stored signal-conditions record, JSON already parsed. */
export interface StoredSignalConditions {
  id: number;
  trade_id: string;
  signal_type: SignalType;
  conditions: Record<string, unknown>;
  timestamp: number;
}

/** A stored trailing-stop update. */
export interface StoredSlUpdate {
  id: number;
  trade_id: string;
  ts: number;
  stop: number;
  highest_price: number;
  sl_type: string;
}
