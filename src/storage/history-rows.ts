import type { Trade } from "../domain/trade.js";

/**
 * The rows of the PostgreSQL history store, as the DataManager and the archiver hand them over.
 * A trade has two fills, its entry and its exit, each one row of `trade_data`; the live path and
 * the archiver build them here alike, so a fill written by both is the same row twice (and ON
 * CONFLICT DO NOTHING keeps one).
 */

/** One fill of a trade, a row of `trade_data`. */
export interface FillRecord {
  /** `<trade_id>:entry` or `<trade_id>:exit`. */
  order_id: string;
  /** Epoch ms. */
  timestamp: number;
  trade_id: string;
  strategy_id: string;
  symbol: string;
  side: "buy" | "sell";
  price: number;
  quantity: number;
  /**
   * The trade's fees up to this fill: the entry fees on the entry, the total on the exit (the
   * journal keeps the total, not the split).
   */
  fees: number;
  /** The trade's result, on its exit; null on an entry. */
  pnl: number | null;
}

/** One sample of a figure, a row of `metrics_data`. */
export interface MetricRecord {
  metric_name: string;
  /** Epoch ms. */
  timestamp: number;
  value: number;
  labels: Record<string, string>;
}

const ENTRY_SIDE = { long: "buy", short: "sell" } as const;
const EXIT_SIDE = { long: "sell", short: "buy" } as const;

/** The entry fill of a trade (open or closed; on a closed one `fees` is the trade's total). */
export function entryFill(trade: Trade): FillRecord {
  return fill(trade, "entry", ENTRY_SIDE[trade.side], trade.entry_time, trade.entry_price, null);
}

/** The exit fill of a closed trade; undefined while it is open. */
export function exitFill(trade: Trade): FillRecord | undefined {
  if (trade.status !== "closed" || trade.exit_time === null || trade.exit_price === null) return undefined;
  return fill(trade, "exit", EXIT_SIDE[trade.side], trade.exit_time, trade.exit_price, trade.pnl);
}

function fill(
  trade: Trade,
  leg: "entry" | "exit",
  side: FillRecord["side"],
  timeSeconds: number,
  price: number,
  pnl: number | null,
): FillRecord {
  return {
    order_id: `${trade.trade_id}:${leg}`,
    timestamp: timeSeconds * 1000,
    trade_id: trade.trade_id,
    strategy_id: trade.strategy_id,
    symbol: trade.symbol,
    side,
    price,
    quantity: trade.quantity,
    fees: trade.fees,
    pnl,
  };
}
