import type { TradeAction } from "./trade.js";

/**
 * A strategy's decision, in the seed's signal shape: why (reason), on what evidence (indicators)
 * and how sure (confidence, 0–1). `kind` says whether it opens or closes a position.
 */
export interface Signal {
  strategy_id: string;
  symbol: string;
  kind: "entry" | "exit";
  action: TradeAction;
  /** The price the strategy saw (the tick's close). */
  price: number;
  /** Epoch milliseconds of the tick that produced it. */
  timestamp: number;
  reason: string;
  indicators: Record<string, number>;
  confidence: number;
  /** The strategy settings the indicators were measured against (thresholds, multipliers). */
  thresholds?: Record<string, number>;
}

/** A paper fill: what the broker simulation executed for a signal. */
export interface Fill {
  trade_id: string;
  strategy_id: string;
  symbol: string;
  action: TradeAction;
  /** Executed price, after slippage. */
  price: number;
  quantity: number;
  fees: number;
  /** Epoch milliseconds. */
  timestamp: number;
}
