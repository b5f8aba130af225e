import type { Signal } from "../../domain/signal.js";
import type { Tick } from "../../domain/tick.js";
import type { TradeAction, TradeSide } from "../../domain/trade.js";
import type { IndicatorRequest, IndicatorValues } from "../indicators.js";

/**
 * A strategy turns ticks and indicator values into entry and exit signals. It decides; it never
 * fills, journals or caches anything: the position tracker acts on its signals.
 */

/** What a strategy sees of its open position on the tick's symbol. */
export interface StrategyPosition {
  trade_id: string;
  side: TradeSide;
  entry_price: number;
  quantity: number;
}

/** The symbols a strategy trades: a list, or "*" for every symbol that ticks. */
export type SymbolSelection = "*" | readonly string[];

export interface Strategy {
  readonly id: string;
  /** The configured kind, e.g. `rsi_mean_reversion`. */
  readonly type: string;
  readonly symbols: SymbolSelection;
  /** Indicator periods the strategy reads, beyond the defaults. */
  readonly requires?: IndicatorRequest;
  /**
   * Called once per tick of a traded symbol, after the indicators have taken the tick.
   * `position` is the strategy's open position on that symbol, if any.
   */
  onTick(
    tick: Tick,
    indicators: IndicatorValues,
    position: Readonly<StrategyPosition> | undefined,
  ): Signal | undefined;
}

export function tradesSymbol(strategy: Pick<Strategy, "symbols">, symbol: string): boolean {
  return strategy.symbols === "*" || strategy.symbols.includes(symbol);
}

export function clamp01(value: number): number {
  if (!Number.isFinite(value)) return 0;
  return Math.min(1, Math.max(0, value));
}

/** The action that closes a position of `side`. */
export function closingAction(side: TradeSide): TradeAction {
  return side === "long" ? "SELL" : "BUY";
}

export interface SignalParts {
  kind: Signal["kind"];
  action: TradeAction;
  reason: string;
  indicators: Record<string, number>;
  confidence: number;
  thresholds?: Record<string, number>;
}

/** A signal of `strategy` for `tick`, in the seed's shape. */
export function signalFor(strategy: Pick<Strategy, "id">, tick: Tick, parts: SignalParts): Signal {
  const signal: Signal = {
    strategy_id: strategy.id,
    symbol: tick.symbol,
    kind: parts.kind,
    action: parts.action,
    price: tick.close,
    timestamp: tick.timestamp,
    reason: parts.reason,
    indicators: parts.indicators,
    confidence: clamp01(parts.confidence),
  };
  if (parts.thresholds) signal.thresholds = parts.thresholds;
  return signal;
}
