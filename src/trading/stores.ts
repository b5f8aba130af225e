import type { Tick } from "../domain/tick.js";
import type { NewTrade, SignalConditions, StoredSlUpdate, Trade, TradeExit } from "../domain/trade.js";

/**
 * What the trading layer needs of the stores, declared here so trading imports no storage types:
 * the DataManager implements these, the journal provides the open trades to resume.
 */

export type Conditions = SignalConditions["conditions"];

export interface OpenPositionInput {
  trade: NewTrade;
  /** Why the entry happened (indicator values, thresholds); journaled with the trade. */
  entryConditions?: Conditions | undefined;
}

export interface ClosePositionInput {
  exit: TradeExit;
  exitConditions?: Conditions | undefined;
}

export interface StopUpdateInput {
  trade_id: string;
  /** Unix seconds, the journal's unit. */
  ts: number;
  stop: number;
  highest_price: number;
  sl_type: string;
}

/**
 * What the position tracker writes to. Synchronous: the journal write happens in the call (its
 * durability follows with the group commit), so the tick path has no await.
 */
export interface PositionStore {
  openPosition(input: OpenPositionInput): Trade;
  updatePositionSnapshot(tradeId: string, price: number, timestampMs: number): void;
  closePosition(tradeId: string, input: ClosePositionInput): Trade;
  updateTrailingStop(input: StopUpdateInput): void;
}

/** What the pipeline writes to: the tracker's store plus ticks and indicators. */
export interface PipelineStore extends PositionStore {
  /** A tick its source validated: not parsed again. */
  storeValidTick(tick: Tick): void;
  storeIndicators(
    symbol: string,
    values: Record<string, number>,
    timestampMs: number,
    periods?: Record<string, number>,
  ): void;
  /** Indicators of a closed bar, named with its timeframe (`rsi_14_1m`), at the bar's end. */
  storeBarIndicators(
    symbol: string,
    values: Record<string, number>,
    timestampMs: number,
    periods?: Record<string, number>,
  ): void;
}

/** Where the open trades of earlier runs are read from, to resume them. */
export interface OpenTradeSource {
  openTrades(): Trade[];
  getSlUpdates(tradeId: string): StoredSlUpdate[];
  /** Every trade whose id starts with `prefix` (open or closed): ids a new run must not reuse. */
  tradeIdsStartingWith(prefix: string): { trade_id: string; strategy_id: string; symbol: string }[];
}
