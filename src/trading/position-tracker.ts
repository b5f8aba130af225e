import { NotFoundError, StateError, ValidationError } from "../domain/errors.js";
import type { Fill, Signal } from "../domain/signal.js";
import type { Tick } from "../domain/tick.js";
import type { StoredSlUpdate, Trade, TradeSide } from "../domain/trade.js";
import { type IndicatorValues, indicatorName } from "./indicators.js";
import type { PaperBroker } from "./paper-broker.js";
import { closingAction, type StrategyPosition } from "./strategies/strategy.js";
import { needsAtr, type SavedStop, TrailingStop, type TrailingStopConfig } from "./trailing-stop.js";

/**
 * The position tracker: at most one open position per (strategy, symbol). It turns entry signals
 * into paper fills and journaled trades with a trailing stop, marks open positions to each tick
 * (throttled snapshots), trails their stops, closes them when a stop is hit or an exit signal
 * arrives, and reports what it did as events for whoever publishes them.
 *
 * It knows nothing of where ticks come from. All writes go through the DataManager, whose journal
 * write comes first: if it fails, the call throws and the tracker's state is left as before.
 *
 * A position outlives the run that opened it when the run stops without closing it: the next run
 * takes it over with `resume` (same trade id, stop restored from the journal) and manages it from
 * then on like one of its own.
 */

/** How much a strategy buys or sells per entry: a fixed quantity, or a notional at the signal price. */
export type PositionSizing = { quantity: number } | { notional: number };

export interface StrategyTradeSettings {
  sizing: PositionSizing;
  trailingStop: TrailingStopConfig;
}

import type { PositionStore } from "./stores.js";

export type { PositionStore } from "./stores.js";

export interface PositionTrackerOptions {
  store: PositionStore;
  broker: PaperBroker;
  /** Per strategy id. A signal of a strategy without settings is a NotFoundError. */
  settings: ReadonlyMap<string, StrategyTradeSettings> | Record<string, StrategyTradeSettings>;
  /** At most one snapshot per position per this many milliseconds of tick time. Default 1000; 0 = every tick. */
  snapshotIntervalMs?: number;
}

/** An open position as the tracker holds it. */
export interface OpenPosition extends StrategyPosition {
  strategy_id: string;
  symbol: string;
  /** Epoch milliseconds. */
  entry_time: number;
  entry_fees: number;
  /** The last price it was marked to, and when (epoch ms). */
  last_price: number;
  last_timestamp: number;
  /** (last − entry) × quantity, sign-adjusted for a short; before fees (as the DataManager marks it). */
  unrealized_pnl: number;
  stop: number;
  /** Best price since entry: highest for a long, lowest for a short. */
  highest: number;
  max_price: number;
  min_price: number;
  sl_type: TrailingStopConfig["type"];
}

export type IgnoredReason = "position_open" | "no_position" | "side_mismatch" | "stop_not_ready";

export type TrackerEvent =
  | { type: "opened"; fill: Fill; trade: Trade; signal: Signal }
  | { type: "closed"; fill: Fill; trade: Trade; reason: string; signal?: Signal }
  | {
      type: "stop_moved";
      trade_id: string;
      strategy_id: string;
      symbol: string;
      stop: number;
      highest: number;
      /** Epoch milliseconds. */
      timestamp: number;
    }
  | { type: "ignored"; signal: Signal; reason: IgnoredReason };

export const STOP_LOSS_REASON = "stop_loss";

interface Held {
  /** Its key in `held` (keyOf strategy and symbol). */
  readonly key: string;
  position: OpenPosition;
  stop: TrailingStop;
  atrName: string | undefined;
  lastSnapshotMs: number | undefined;
  /** Whether a price of this run marked it (a resumed position starts unmarked). */
  marked: boolean;
}

const SIDE_OF_ENTRY = { BUY: "long", SELL: "short" } as const satisfies Record<string, TradeSide>;

function keyOf(strategyId: string, symbol: string): string {
  return `${strategyId}\u0000${symbol}`;
}

export class PositionTracker {
  private readonly store: PositionStore;
  private readonly broker: PaperBroker;
  private readonly settings: ReadonlyMap<string, StrategyTradeSettings>;
  private readonly snapshotIntervalMs: number;
  private readonly held = new Map<string, Held>();
  /**
   * The same positions by symbol, then strategy id, in opening order: a tick visits only its own
   * symbol's positions, and finds them without a key or a second lookup (at 500 symbols each is
   * cold in the CPU's caches, and every step to it a miss).
   */
  private readonly heldBySymbol = new Map<string, Map<string, Held>>();
  /** Symbols whose positions opened, were marked or closed since the last takeChangedSymbols(). */
  private readonly changed = new Set<string>();
  /** Keys with a journal write in flight, so a second signal cannot open the same position twice. */
  private readonly busy = new Set<string>();
  private realized = 0;
  /** Σ unrealized P&L of the held positions, kept as they are marked (no scan per tick). */
  private unrealized = 0;
  private readonly realizedByStrategy = new Map<string, number>();
  private readonly lettingGo: OpenPosition[] = [];
  private readonly letGoListeners: ((position: OpenPosition, tickTime: number) => void)[] = [];

  constructor(options: PositionTrackerOptions) {
    this.store = options.store;
    this.broker = options.broker;
    this.settings =
      options.settings instanceof Map
        ? options.settings
        : new Map(Object.entries(options.settings as Record<string, StrategyTradeSettings>));
    const interval = options.snapshotIntervalMs ?? 1000;
    if (!Number.isFinite(interval) || interval < 0) {
      throw new ValidationError("snapshotIntervalMs", "must be a number >= 0");
    }
    this.snapshotIntervalMs = interval;
  }

  /** The open position of (strategy, symbol), if any (a copy). */
  position(strategyId: string, symbol: string): OpenPosition | undefined {
    const held = this.held.get(keyOf(strategyId, symbol));
    return held && { ...held.position };
  }

  /**
   * The same position as `position`, without the copy and without building its key: what the
   * pipeline hands each strategy on every tick. Read it, do not keep it.
   */
  heldPosition(strategyId: string, symbol: string): Readonly<OpenPosition> | undefined {
    return this.heldBySymbol.get(symbol)?.get(strategyId)?.position;
  }

  positions(): OpenPosition[] {
    return [...this.held.values()].map((h) => ({ ...h.position }));
  }

  /** The open positions of `symbol`, in opening order (copies). */
  positionsOf(symbol: string): OpenPosition[] {
    const bySymbol = this.heldBySymbol.get(symbol);
    if (!bySymbol) return [];
    const list: OpenPosition[] = [];
    for (const held of bySymbol.values()) list.push({ ...held.position });
    return list;
  }

  /**
   * The symbols whose positions opened, were marked or closed since the last call (for one
   * consumer: the monitoring documents, rebuilt per cache window for those symbols only).
   */
  takeChangedSymbols(): string[] {
    const symbols = [...this.changed];
    this.changed.clear();
    return symbols;
  }

  /** Realized plus unrealized P&L now: the equity curve the drawdown is measured on. */
  equity(): number {
    return this.realized + this.unrealized;
  }

  /** Realized P&L (net of all fees) of the trades this tracker closed, in total and per strategy. */
  realizedPnl(): { total: number; byStrategy: Record<string, number> } {
    return { total: this.realized, byStrategy: Object.fromEntries(this.realizedByStrategy) };
  }

  /**
   * Marks the tick's symbol's open positions: a stop crossed by the tick's close closes the
   * position at that close (with slippage, reason `stop_loss`); otherwise the stop trails and a
   * move is journaled, and a snapshot is written if the throttle allows.
   */
  onTick(tick: Tick, indicators: IndicatorValues = {}): TrackerEvent[] {
    const events: TrackerEvent[] = [];
    const bySymbol = this.heldBySymbol.get(tick.symbol);
    if (!bySymbol) return events;
    // No copy: a position closed below is deleted from the map it is visited in, which a Map's
    // iteration allows; nothing is added to it meanwhile.
    for (const held of bySymbol.values()) {
      const { key } = held;
      if (this.busy.size > 0 && this.busy.has(key)) continue;
      if (this.letGoIfAhead(key, held, tick.timestamp)) continue;
      const { position, stop } = held;
      const price = tick.close;
      this.mark(position, price, tick.timestamp);
      held.marked = true;

      if (stop.hit(price)) {
        events.push(
          this.close(key, held, {
            price,
            timestamp: tick.timestamp,
            reason: STOP_LOSS_REASON,
            conditions: {
              reason: STOP_LOSS_REASON,
              price,
              stop: stop.stop,
              highest_price: stop.highest,
              sl_type: stop.type,
              indicators: { ...indicators },
            },
          }),
        );
        continue;
      }

      const atr = held.atrName === undefined ? undefined : indicators[held.atrName];
      const update = stop.update(price, atr);
      position.stop = update.stop;
      position.highest = update.highest;
      if (update.moved) {
        this.store.updateTrailingStop({
          trade_id: position.trade_id,
          ts: tick.timestamp / 1000,
          stop: update.stop,
          highest_price: update.highest,
          sl_type: stop.type,
        });
        events.push({
          type: "stop_moved",
          trade_id: position.trade_id,
          strategy_id: position.strategy_id,
          symbol: position.symbol,
          stop: update.stop,
          highest: update.highest,
          timestamp: tick.timestamp,
        });
      }

      if (
        held.lastSnapshotMs === undefined ||
        tick.timestamp - held.lastSnapshotMs >= this.snapshotIntervalMs
      ) {
        held.lastSnapshotMs = tick.timestamp;
        this.store.updatePositionSnapshot(position.trade_id, price, tick.timestamp);
      }
    }
    return events;
  }

  /**
   * Acts on a strategy's signal. An entry with no open position fills, journals the trade (entry
   * conditions = the signal's reason, confidence, indicators and thresholds) and its initial stop;
   * an exit of the open position's side closes it with the signal's reason. Anything else is
   * returned as an `ignored` event. `indicators` are the symbol's current values (for an ATR stop).
   */
  onSignal(signal: Signal, indicators: IndicatorValues = {}): TrackerEvent {
    const key = keyOf(signal.strategy_id, signal.symbol);
    const ahead = this.held.get(key);
    if (ahead && !this.busy.has(key)) this.letGoIfAhead(key, ahead, signal.timestamp);
    if (signal.kind === "entry") return this.enter(key, signal, indicators);

    const held = this.held.get(key);
    if (!held || this.busy.has(key)) return { type: "ignored", signal, reason: "no_position" };
    if (closingAction(held.position.side) !== signal.action) {
      return { type: "ignored", signal, reason: "side_mismatch" };
    }
    this.mark(held.position, signal.price, signal.timestamp);
    return this.close(key, held, {
      price: signal.price,
      timestamp: signal.timestamp,
      reason: signal.reason,
      conditions: conditionsOf(signal),
      signal,
    });
  }

  /**
   * Takes over an open trade of the journal that an earlier run left open: the position is held
   * again with the journal's trade id, side, entry price and time, quantity and entry fees, and
   * its trailing stop resumes from `lastStop` (the trade's last `sl_updates` row: stop level and
   * best price), or, without one, from the trade's initial stop. The stop kind is the strategy's
   * current one; an ATR stop keeps the saved level until a tick brings an ATR value. Nothing is
   * written: the journal already holds the trade.
   *
   * Until a tick of its symbol marks it, the position stands at its entry price (unrealized P&L 0)
   * and `closeAll` leaves it open, having no price of this run to close it at. Its P&L becomes
   * realized P&L of this tracker when this tracker closes it.
   *
   * Throws NotFoundError for a strategy without settings, StateError for a trade that is not open
   * or whose (strategy, symbol) already holds a position, and ValidationError for a stop update of
   * another trade or when no stop can be rebuilt (an ATR stop with neither a saved nor an initial
   * level).
   */
  resume(trade: Trade, lastStop: StoredSlUpdate | undefined): OpenPosition {
    const key = keyOf(trade.strategy_id, trade.symbol);
    if (trade.status !== "open") throw new StateError(`trade ${trade.trade_id} is not open`);
    const held = this.held.get(key);
    if (held || this.busy.has(key)) {
      throw new StateError(
        `cannot resume trade ${trade.trade_id}: ${trade.strategy_id} already holds a position on ` +
          `${trade.symbol}${held ? ` (${held.position.trade_id})` : ""}`,
      );
    }
    const settings = this.settings.get(trade.strategy_id);
    if (!settings) throw new NotFoundError("strategy settings", trade.strategy_id);
    if (lastStop !== undefined && lastStop.trade_id !== trade.trade_id) {
      throw new ValidationError(
        "sl_update.trade_id",
        `stop update of ${lastStop.trade_id} given for trade ${trade.trade_id}`,
      );
    }

    const stopConfig = settings.trailingStop;
    const saved: SavedStop | undefined = lastStop
      ? { stop: lastStop.stop, highest: lastStop.highest_price }
      : trade.stop_loss_initial === null
        ? undefined
        : { stop: trade.stop_loss_initial, highest: trade.entry_price };
    const stop = saved
      ? TrailingStop.restore(stopConfig, trade.side, trade.entry_price, saved)
      : new TrailingStop(stopConfig, trade.side, trade.entry_price);
    const entryTime = Math.round(trade.entry_time * 1000);
    const position: OpenPosition = {
      trade_id: trade.trade_id,
      strategy_id: trade.strategy_id,
      symbol: trade.symbol,
      side: trade.side,
      entry_price: trade.entry_price,
      quantity: trade.quantity,
      entry_time: entryTime,
      entry_fees: trade.fees,
      last_price: trade.entry_price,
      last_timestamp: entryTime,
      unrealized_pnl: 0,
      stop: stop.stop,
      highest: stop.highest,
      max_price: Math.max(trade.entry_price, stop.highest, trade.max_price ?? trade.entry_price),
      min_price: Math.min(trade.entry_price, stop.highest, trade.min_price ?? trade.entry_price),
      sl_type: stop.type,
    };
    this.hold({
      key,
      position,
      stop,
      atrName: needsAtr(stopConfig) ? indicatorName.atr(stopConfig.atr_period) : undefined,
      lastSnapshotMs: undefined,
      marked: false,
    });
    // A resumed trade of the same run id must not see its id handed out again.
    this.broker.follow(trade.trade_id, trade.strategy_id, trade.symbol);
    return { ...position };
  }

  /**
   * Closes every open position at its last marked price and time, e.g. on shutdown. A resumed
   * position that no tick of this run has marked stays open: there is no price to close it at.
   */
  closeAll(reason: string): TrackerEvent[] {
    const events: TrackerEvent[] = [];
    for (const [key, held] of [...this.held]) {
      if (this.busy.has(key) || !held.marked) continue;
      const { position } = held;
      events.push(
        this.close(key, held, {
          price: position.last_price,
          timestamp: position.last_timestamp,
          reason,
          conditions: { reason, price: position.last_price, stop: position.stop },
        }),
      );
    }
    return events;
  }

  // --- internals ---------------------------------------------------------------------------------

  private enter(key: string, signal: Signal, indicators: IndicatorValues): TrackerEvent {
    if (this.held.has(key) || this.busy.has(key)) return { type: "ignored", signal, reason: "position_open" };
    const settings = this.settings.get(signal.strategy_id);
    if (!settings) throw new NotFoundError("strategy settings", signal.strategy_id);

    const stopConfig = settings.trailingStop;
    const atrName = needsAtr(stopConfig) ? indicatorName.atr(stopConfig.atr_period) : undefined;
    const atr = atrName === undefined ? undefined : (indicators[atrName] ?? signal.indicators[atrName]);
    if (atrName !== undefined && atr === undefined)
      return { type: "ignored", signal, reason: "stop_not_ready" };

    const side = SIDE_OF_ENTRY[signal.action];
    const quantity =
      "quantity" in settings.sizing ? settings.sizing.quantity : settings.sizing.notional / signal.price;
    const fill = this.broker.fill({
      trade_id: this.broker.nextTradeId(signal.strategy_id, signal.symbol),
      strategy_id: signal.strategy_id,
      symbol: signal.symbol,
      action: signal.action,
      price: signal.price,
      quantity,
      timestamp: signal.timestamp,
    });
    const stop = new TrailingStop(stopConfig, side, fill.price, atr);
    const entryTime = fill.timestamp / 1000;

    this.busy.add(key);
    let trade: Trade;
    try {
      trade = this.store.openPosition({
        trade: {
          trade_id: fill.trade_id,
          strategy_id: fill.strategy_id,
          symbol: fill.symbol,
          action: fill.action,
          side,
          entry_time: entryTime,
          entry_price: fill.price,
          quantity: fill.quantity,
          fees: fill.fees,
          stop_loss_initial: stop.stop,
        },
        entryConditions: conditionsOf(signal),
      });
    } finally {
      this.busy.delete(key);
    }

    this.hold({
      key,
      position: {
        trade_id: trade.trade_id,
        strategy_id: trade.strategy_id,
        symbol: trade.symbol,
        side,
        entry_price: fill.price,
        quantity: fill.quantity,
        entry_time: fill.timestamp,
        entry_fees: fill.fees,
        last_price: signal.price,
        last_timestamp: signal.timestamp,
        unrealized_pnl: pnlOf(side, fill.price, signal.price, fill.quantity),
        stop: stop.stop,
        highest: stop.highest,
        max_price: Math.max(signal.price, fill.price),
        min_price: Math.min(signal.price, fill.price),
        sl_type: stop.type,
      },
      stop,
      atrName,
      lastSnapshotMs: undefined,
      marked: true,
    });
    // The initial level starts the stop's timeline, so charts and the journal show where it began.
    this.store.updateTrailingStop({
      trade_id: trade.trade_id,
      ts: entryTime,
      stop: stop.stop,
      highest_price: stop.highest,
      sl_type: stop.type,
    });
    return { type: "opened", fill, trade, signal };
  }

  private close(
    key: string,
    held: Held,
    exit: {
      price: number;
      timestamp: number;
      reason: string;
      conditions: Record<string, ConditionValue>;
      signal?: Signal;
    },
  ): TrackerEvent {
    const { position } = held;
    const fill = this.broker.fill({
      trade_id: position.trade_id,
      strategy_id: position.strategy_id,
      symbol: position.symbol,
      action: closingAction(position.side),
      price: exit.price,
      quantity: position.quantity,
      timestamp: exit.timestamp,
    });

    this.busy.add(key);
    let trade: Trade;
    try {
      trade = this.store.closePosition(position.trade_id, {
        exit: {
          exit_time: fill.timestamp / 1000,
          exit_price: fill.price,
          exit_fees: fill.fees,
          exit_reason: exit.reason,
          max_price: Math.max(position.max_price, fill.price),
          min_price: Math.min(position.min_price, fill.price),
        },
        exitConditions: exit.conditions,
      });
    } finally {
      this.busy.delete(key);
    }
    this.release(key, position.symbol);

    const pnl = trade.pnl ?? 0;
    this.realized += pnl;
    this.realizedByStrategy.set(
      position.strategy_id,
      (this.realizedByStrategy.get(position.strategy_id) ?? 0) + pnl,
    );
    const event: TrackerEvent = { type: "closed", fill, trade, reason: exit.reason };
    if (exit.signal) event.signal = exit.signal;
    return event;
  }

  private hold(held: Held): void {
    this.held.set(held.key, held);
    this.unrealized += held.position.unrealized_pnl;
    const symbol = held.position.symbol;
    this.changed.add(symbol);
    let bySymbol = this.heldBySymbol.get(symbol);
    if (!bySymbol) {
      bySymbol = new Map();
      this.heldBySymbol.set(symbol, bySymbol);
    }
    bySymbol.set(held.position.strategy_id, held);
  }

  /**
   * A position entered after `at` (a resumed trade of a run whose clock was ahead of this one's
   * ticks) cannot be marked, trailed or closed by them: closing it would end it before it began.
   * It is let go: left open in the journal, untouched, no longer managed here, and reported to
   * `onLetGo`; the (strategy, symbol) is free for this run's own trades. True when let go.
   */
  private letGoIfAhead(key: string, held: Held, at: number): boolean {
    if (at >= held.position.entry_time) return false;
    this.release(key, held.position.symbol);
    const position = { ...held.position };
    this.lettingGo.push(position);
    for (const listener of this.letGoListeners) listener(position, at);
    return true;
  }

  /** Positions let go because this run's ticks are older than their entry (see letGoIfAhead). */
  positionsLetGo(): OpenPosition[] {
    return this.lettingGo.map((p) => ({ ...p }));
  }

  /**
   * Makes new trade ids follow ids already in the journal (trades of an earlier run with the same
   * run id, open or closed), so reusing a run id never hands out an id twice.
   */
  followIds(trades: readonly { trade_id: string; strategy_id: string; symbol: string }[]): void {
    for (const t of trades) this.broker.follow(t.trade_id, t.strategy_id, t.symbol);
  }

  /** Calls `listener(position, tickTime)` for every position let go (see letGoIfAhead). */
  onLetGo(listener: (position: OpenPosition, tickTime: number) => void): void {
    this.letGoListeners.push(listener);
  }

  private release(key: string, symbol: string): void {
    this.changed.add(symbol);
    const held = this.held.get(key);
    if (!held) return;
    this.unrealized -= held.position.unrealized_pnl;
    this.held.delete(key);
    const bySymbol = this.heldBySymbol.get(symbol);
    bySymbol?.delete(held.position.strategy_id);
    if (bySymbol?.size === 0) this.heldBySymbol.delete(symbol);
  }

  private mark(position: OpenPosition, price: number, timestamp: number): void {
    this.changed.add(position.symbol);
    position.last_price = price;
    position.last_timestamp = timestamp;
    position.max_price = Math.max(position.max_price, price);
    position.min_price = Math.min(position.min_price, price);
    const pnl = pnlOf(position.side, position.entry_price, price, position.quantity);
    this.unrealized += pnl - position.unrealized_pnl;
    position.unrealized_pnl = pnl;
  }
}

type ConditionValue = string | number | Record<string, number>;

/** What is journaled as a signal's conditions. */
function conditionsOf(signal: Signal): Record<string, ConditionValue> {
  const conditions: Record<string, ConditionValue> = {
    reason: signal.reason,
    confidence: signal.confidence,
    price: signal.price,
    indicators: { ...signal.indicators },
  };
  if (signal.thresholds) conditions.thresholds = { ...signal.thresholds };
  return conditions;
}

function pnlOf(side: TradeSide, entry: number, price: number, quantity: number): number {
  return (side === "long" ? price - entry : entry - price) * quantity;
}
