import type { Logger } from "pino";
import { errorMessage, StoreUnavailableError, ValidationError } from "../domain/errors.js";
import { assertId, parseOrThrow } from "../domain/identifiers.js";
import type { Signal } from "../domain/signal.js";
import { type Tick, type TickInput, tickSchema } from "../domain/tick.js";
import { utcDay } from "../domain/time.js";
import {
  pnlPercent,
  type StoredSignalConditions,
  type StoredSlUpdate,
  type Trade,
  type TradeSide,
} from "../domain/trade.js";
import { type MeasurementName, msToNs, type SeriesPoint } from "../schema/influx.js";
import type {
  ClosePositionInput,
  Conditions,
  OpenPositionInput,
  PipelineStore,
  StopUpdateInput,
} from "../trading/stores.js";
import { entryFill, exitFill, type FillRecord } from "./history-rows.js";
import type { AnySeriesPoint } from "./line-protocol.js";
import type {
  CacheWindow,
  Candidate,
  FlatRecord,
  IndicatorWrite,
  JsonObject,
  LatestTick,
  MarketScanWrite,
  Position,
  PositionWrite,
  RedisCache,
  Sentiment,
  StopState,
  TradeResultsWrite,
} from "./redis-cache.js";
import { requireConnectedCache } from "./redis-cache.js";
import type { RecentTradesQuery, TradeJournal, TradePage, TradePageQuery } from "./trade-journal.js";
import type { StrategyStats } from "./trade-stats.js";

/** What the DataManager needs of the time-series writer (InfluxWriter implements it). */
export interface TimeSeriesWriter {
  /** Non-blocking; throws only on a point that breaks the schema. */
  write(point: AnySeriesPoint): void;
  /**
   * One point through the measurement's SeriesSerializer (the hot path; throws as `write` does).
   * It reads `tags` and `fields` during the call and keeps neither, so a caller may refill the
   * same objects for its next point. Absent: `write` is used.
   */
  writeSeries?<M extends MeasurementName>(
    measurement: M,
    tags: SeriesPoint<M>["tags"],
    fields: SeriesPoint<M>["fields"],
    timestampNs: string,
  ): void;
  /**
   * One `indicators` point, `period` included where it has one (the hot path: about nine per
   * tick; throws as `write` does). Absent: `writeSeries` is used.
   */
  writeIndicator?(
    symbol: string,
    indicatorType: string,
    value: number,
    period: number | undefined,
    timestampNs: string,
  ): void;
  close(): Promise<void>;
  /** Points held in memory, not yet sent or spooled (absent: the writer holds none). */
  readonly backlog?: number;
  /** Resolves once what is held in memory is sent or spooled. */
  flush?(): Promise<void>;
}

/** What the DataManager hands the PostgreSQL history store: rows, never awaited per tick. */
export interface HistoryRowWriter {
  writePrice(tick: Tick): void;
  writeFill(fill: FillRecord): void;
  /** Flushes what it holds (to PostgreSQL or its spool), then closes. */
  close(): Promise<void>;
}

/** What the DataManager needs of the time-series queries (position history for trade details). */
export interface PositionHistorySource {
  positionHistory(tradeId: string, start: Date, stop: Date): Promise<Record<string, unknown>[]>;
}

export interface DataManagerOptions {
  journal: TradeJournal;
  /** Absent: no Redis configured. */
  cache?: RedisCache | undefined;
  /** Absent: no InfluxDB configured. */
  series?: TimeSeriesWriter | undefined;
  history?: PositionHistorySource | undefined;
  logger?: Logger | undefined;
  /** Write-behind window for hot-cache writes (latest ticks, indicators, position marks). */
  cacheFlushMs?: number;
  /**
   * A symbol's indicator hash is written at most this often (default 0: with every window), and
   * the symbols due are spread over the windows. They are most of a window's bytes (a dozen
   * fields per symbol) and are read by people, not by the tick path; prices, signals and stops
   * keep the window's own pace.
   */
  cacheIndicatorsMs?: number;
  /** The PostgreSQL history store (price, trade and metrics history); absent: none. */
  historyStore?: HistoryRowWriter | undefined;
  /**
   * Journal group commit: writes are committed together at most this long after the first of a
   * group (default 10 ms), or at once when the group holds `journalGroupRows` writes (default 500).
   * Nothing about a write leaves the process (cache, time series, events) before its commit.
   */
  journalGroupMs?: number;
  journalGroupRows?: number;
  /**
   * Back-pressure: once the time-series writer holds more points than this in memory (default
   * 50,000), {@link DataManager.paced} waits until they are sent or spooled, so a source faster
   * than InfluxDB is slowed down instead of filling memory.
   */
  seriesBacklogLimit?: number;
}

/** What the cache window asks for position monitoring (see DataManager.setMonitoringSource). */
export type MonitoringSource = () => {
  documents: { symbol: string; document: JsonObject }[];
  gone: string[];
};

export interface TradeDetails {
  trade: Trade;
  entry_conditions: StoredSignalConditions[];
  exit_conditions: StoredSignalConditions[];
  sl_timeline: StoredSlUpdate[];
  /** From InfluxDB when configured and reachable; `null` when it could not be asked. */
  position_history: Record<string, unknown>[] | null;
}

export interface OpenPositionView {
  trade_id: string;
  strategy_id: string;
  symbol: string;
  side: TradeSide;
  entry_price: number;
  quantity: number;
  /** Unix seconds. */
  entry_time: number;
  current_price: number | null;
  unrealized_pnl: number | null;
  /** unrealized_pnl as a percentage of the entry notional; null while unmarked. */
  unrealized_pnl_pct: number | null;
  stop_loss: number | null;
}

/** Counters of degraded operation, for the status line and the exporter. */
export interface DataManagerStats {
  cacheWritesSkipped: number;
  cacheWriteErrors: number;
  cacheRewarms: number;
  cacheReadFallbacks: number;
  seriesPointsRejected: number;
  /** Times a source waited for the time-series writer to catch up (back-pressure). */
  seriesPaced: number;
}

export interface StoreHealth {
  /** From a real query; `error` says why it failed. */
  sqlite: { up: boolean; error?: string };
  redis: { configured: boolean; up: boolean; latencyMs: number | null };
  influx: { configured: boolean };
}

/** Mark-to-market of one open position, kept in process so snapshots need no store read. */
interface OpenState {
  trade: Trade;
  lastPrice: number | null;
  lastUpdateMs: number | null;
  stop: number | null;
}

const EXIT_ACTION: Record<TradeSide, "BUY" | "SELL"> = { long: "SELL", short: "BUY" };

/** Cache windows sent and unanswered at most; then the next waits for a reply (see flushIfDue). */
const MAX_WINDOWS_IN_FLIGHT = 4;

/**
 * One façade over the stores. The journal (SQLite) is the truth and is written first: its failure
 * fails the operation. Redis and InfluxDB are optional and independent: when Redis is absent or
 * down its writes are skipped and counted, reads fall back to the journal, and the cache is
 * re-warmed from the open trades when Redis returns; InfluxDB's writer spools on its own.
 * Hot-cache writes that happen per tick (latest tick, indicators, position marks) are coalesced —
 * last value per key per window — and flushed as one pipeline, so Redis cost does not grow with
 * the tick rate.
 */
export class DataManager implements PipelineStore {
  private readonly journal: TradeJournal;
  private readonly cache: RedisCache | undefined;
  private readonly series: TimeSeriesWriter | undefined;
  private readonly history: PositionHistorySource | undefined;
  private readonly historyStore: HistoryRowWriter | undefined;
  private readonly log: Logger | undefined;
  private readonly open = new Map<string, OpenState>();
  private readonly pendingTicks = new Map<string, LatestTick>();
  /**
   * The tags and fields of the per-tick points, refilled for each: `writeSeries` reads them
   * during the call and keeps neither (it writes the line there and then); `write` gets copies.
   */
  private readonly scratch = {
    tickTags: { symbol: "", source: "" },
    tickFields: { open: 0, high: 0, low: 0, close: 0, volume: 0, bid: 0, ask: 0 },
    indicatorTags: { symbol: "", indicator_type: "" },
    value: { value: 0 },
    withPeriod: { value: 0, period: 0 },
  };
  /** Per symbol, the latest tick indicators and bar indicators (by timeframe name), kept across windows. */
  private readonly tickIndicators = new Map<string, IndicatorWrite>();
  private readonly barIndicators = new Map<string, { values: Record<string, number>; timestamp: number }>();
  /** Symbols whose indicator hash the next window rewrites. */
  private readonly pendingIndicators = new Set<string>();
  private readonly pendingMarks = new Set<string>();
  private readonly pendingSignals = new Map<string, NonNullable<CacheWindow["signals"]>[number]>();
  private readonly pendingSignalCounts = new Map<
    string,
    { strategyId: string; action: string; count: number }
  >();
  /** Daily aggregates of the window, by `day|metric`, summed. */
  private readonly pendingDaily = new Map<string, { date: Date; metric: string; amount: number }>();
  /** Closed-trade counters of the window, per strategy, summed. */
  private readonly pendingTradeResults = new Map<string, TradeResultsWrite>();
  /** Why the journal last failed to commit; once set, every journal write is refused. */
  private journalFailure: string | undefined;
  private readonly pendingStops = new Map<string, StopState>();
  /** The latest market scan not yet written (a newer one replaces it). */
  private pendingScan: MarketScanWrite | undefined;
  /** The latest scan, written or not: sent again when Redis comes back (see rewarmCache). */
  private lastScan: MarketScanWrite | undefined;
  /** Asked once per window for the monitoring documents to write (see setMonitoringSource). */
  private monitoringSource: MonitoringSource | undefined;
  private readonly pendingStopDeletes = new Set<string>();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly counters: DataManagerStats = {
    cacheWritesSkipped: 0,
    cacheWriteErrors: 0,
    cacheRewarms: 0,
    cacheReadFallbacks: 0,
    seriesPointsRejected: 0,
    seriesPaced: 0,
  };
  private readonly groupMs: number;
  private readonly groupRows: number;
  private readonly backlogLimit: number;
  private readonly indicatorsMs: number;
  /** When each symbol's indicator hash last went with a window (performance.now()). */
  private readonly indicatorsSentAt = new Map<string, number>();
  /** The open journal group: its writes so far and what waits for its commit. */
  private group: { rows: number; timer: NodeJS.Timeout; after: (() => void)[] } | undefined;
  /** Opens a group when a stop move held back by the journal falls due and no write came since. */
  private stopsTimer: NodeJS.Timeout | undefined;
  /** Cache writes started behind a commit and not yet answered. */
  private readonly behind = new Set<Promise<void>>();
  private readonly flushMs: number;
  /** When the last cache window was cut (performance.now()). */
  private windowAt = performance.now();
  /** Cache windows sent and not yet answered (one connection: Redis applies them in order). */
  private readonly windows = new Set<Promise<void>>();
  /** The last window's error, until a window is written (logged once, not per window). */
  private windowError: string | undefined;
  private rewarming: Promise<void> | undefined;
  private stopCacheWatch: (() => void) | undefined;
  private closed = false;

  constructor(options: DataManagerOptions) {
    this.journal = options.journal;
    this.cache = options.cache;
    this.series = options.series;
    this.history = options.history;
    this.historyStore = options.historyStore;
    this.log = options.logger;
    this.groupMs = options.journalGroupMs ?? 10;
    this.groupRows = options.journalGroupRows ?? 500;
    this.backlogLimit = options.seriesBacklogLimit ?? 50_000;
    for (const trade of this.journal.openTrades()) {
      const last = this.journal.getSlUpdates(trade.trade_id).at(-1);
      this.open.set(trade.trade_id, {
        trade,
        lastPrice: null,
        lastUpdateMs: null,
        stop: last?.stop ?? trade.stop_loss_initial,
      });
    }
    this.indicatorsMs = options.cacheIndicatorsMs ?? 0;
    this.flushMs = options.cacheFlushMs ?? 250;
    // Behind a busy source the window goes out between its batches (see paced); the timer is for
    // a source that went quiet (what it left waits at most two windows).
    this.flushTimer = setInterval(() => this.flushIfDue(), this.flushMs);
    this.flushTimer.unref();
    if (this.cache) {
      this.stopCacheWatch = this.cache.onStateChange((connected) => {
        if (connected) void this.rewarmCache();
      });
      if (this.cache.connected) void this.rewarmCache();
    }
  }

  // --- trades ------------------------------------------------------------------------------------

  /**
   * Journals a new trade with its entry conditions (one transaction); once that commits, caches
   * and records it. Resolves with the journal's row at once: the commit follows within the group
   * window, and nothing leaves the process before it.
   */
  openPosition({ trade, entryConditions }: OpenPositionInput): Trade {
    const stored = this.journaled(() => this.journal.insertTrade(trade, entryConditions));
    const state: OpenState = {
      trade: stored,
      lastPrice: null,
      lastUpdateMs: null,
      stop: stored.stop_loss_initial,
    };
    this.open.set(stored.trade_id, state);
    this.log?.debug(
      {
        trade_id: stored.trade_id,
        strategy_id: stored.strategy_id,
        symbol: stored.symbol,
        price: stored.entry_price,
      },
      "position opened",
    );
    this.afterCommit(() => {
      this.writeSeries(
        "trades",
        { strategy_id: stored.strategy_id, symbol: stored.symbol, action: stored.action },
        {
          price: stored.entry_price,
          quantity: stored.quantity,
        },
        stored.entry_time * 1000,
      );
      this.cacheBehind((cache) => cache.setPosition(stored.strategy_id, stored.symbol, positionFor(state)));
      this.historyStore?.writeFill(entryFill(stored));
    });
    return stored;
  }

  /** Marks an open position to `price`: snapshot to InfluxDB now, to Redis in the next flush window. */
  updatePositionSnapshot(tradeId: string, price: number, timestampMs: number): void {
    const state = this.open.get(assertId(tradeId, "trade_id"));
    if (!state) return; // closed meanwhile: a late mark is not an error
    state.lastPrice = price;
    state.lastUpdateMs = timestampMs;
    const { trade } = state;
    const pnl = unrealizedPnl(trade, price);
    this.writeSeries(
      "positions",
      { strategy_id: trade.strategy_id, symbol: trade.symbol, trade_id: trade.trade_id },
      {
        price,
        quantity: trade.quantity,
        unrealized_pnl: pnl,
        unrealized_pnl_pct: pnlPercent(pnl, trade.entry_price, trade.quantity),
      },
      timestampMs,
    );
    if (this.windowed) this.pendingMarks.add(trade.trade_id);
  }

  /** Journals the exit (computing P&L) with its conditions; once committed, clears the cache and records the closing fill. */
  closePosition(tradeId: string, { exit, exitConditions }: ClosePositionInput): Trade {
    const closed = this.journaled(() => this.journal.closeTrade(tradeId, exit, exitConditions));
    this.open.delete(closed.trade_id);
    this.pendingMarks.delete(closed.trade_id);
    this.log?.debug(
      {
        trade_id: closed.trade_id,
        strategy_id: closed.strategy_id,
        pnl: closed.pnl,
        reason: closed.exit_reason,
      },
      "position closed",
    );
    const pnl = closed.pnl ?? 0;
    this.afterCommit(() => {
      this.writeSeries(
        "trades",
        { strategy_id: closed.strategy_id, symbol: closed.symbol, action: EXIT_ACTION[closed.side] },
        {
          price: closed.exit_price ?? exit.exit_price,
          quantity: closed.quantity,
          pnl,
        },
        (closed.exit_time ?? exit.exit_time) * 1000,
      );
      const fill = exitFill(closed);
      if (fill) this.historyStore?.writeFill(fill);
      this.cacheBehind((cache) => cache.deletePosition(closed.strategy_id, closed.symbol));
      if (this.windowed) this.windowTradeClosed(closed, pnl);
    });
    return closed;
  }

  /** A closed trade's part of the next cache window: its stop state's delete, counters, daily P&L. */
  private windowTradeClosed(closed: Trade, pnl: number): void {
    // The stop state goes with the next window, after any stop set still waiting in it.
    this.pendingStops.delete(closed.trade_id);
    this.pendingStopDeletes.add(closed.trade_id);
    // Counters go with the next window, summed (Redis work grows with windows, not fills).
    const results = this.pendingTradeResults.get(closed.strategy_id);
    const win = pnl > 0 ? 1 : 0;
    const loss = pnl < 0 ? 1 : 0;
    if (results) {
      results.trades++;
      results.wins += win;
      results.losses += loss;
      results.pnl += pnl;
    } else {
      this.pendingTradeResults.set(closed.strategy_id, {
        strategyId: closed.strategy_id,
        trades: 1,
        wins: win,
        losses: loss,
        pnl,
      });
    }
    const today = new Date();
    this.addDaily(today, "pnl", pnl);
    this.addDaily(today, "trades_closed", 1);
  }

  /**
   * Journals a trailing-stop move (the history survives without InfluxDB); once committed, caches
   * and records it.
   */
  updateTrailingStop(input: StopUpdateInput): void {
    const update = this.journaled(() => this.journal.trailStop(input));
    const state = this.open.get(update.trade_id);
    if (state) state.stop = update.stop;
    const trade = state?.trade ?? this.journal.getTrade(update.trade_id);
    // A stop moves on one tick in five: with neither store to tell, nothing waits for the commit.
    if (!trade || (!this.series && !this.windowed)) return;
    this.afterCommit(() => {
      this.writeSeries(
        "trailing_sl",
        {
          strategy_id: trade.strategy_id,
          symbol: trade.symbol,
          trade_id: trade.trade_id,
          sl_type: update.sl_type,
        },
        { current_sl: update.stop, highest_price: update.highest_price },
        update.ts * 1000,
      );
      // The latest stop per trade goes out with the next cache window.
      if (this.windowed)
        this.pendingStops.set(update.trade_id, {
          current_sl: update.stop,
          highest_price: update.highest_price,
          sl_type: update.sl_type,
          updated_at: Math.round(update.ts * 1000),
        });
    });
  }

  /**
   * Runs `publish` once everything journaled so far is committed: at once when no group is open,
   * else right after the group's commit. What a write announces (events, WebSocket, API counters)
   * goes through here, so "reported" always means "on disk".
   */
  afterCommit(publish: () => void): void {
    if (this.group) this.group.after.push(publish);
    else publish();
  }

  /**
   * Called by sources between two batches of ticks. Sends the cache window if it is due, then
   * returns undefined (nothing to wait for) unless the time-series writer is behind, holding more
   * than `seriesBacklogLimit` points in memory; then a promise that settles once it has sent or
   * spooled them.
   */
  paced(): Promise<void> | undefined {
    this.flushIfDue();
    const series = this.series;
    if (!series?.flush || (series.backlog ?? 0) <= this.backlogLimit) return undefined;
    this.counters.seriesPaced++;
    return series.flush();
  }

  /** Commits the open journal group and waits until what it announced to Redis is answered. */
  async settle(): Promise<void> {
    this.commitJournal();
    await Promise.all([...this.behind]);
  }

  /** Commits the open journal group now (and runs what waited for it). */
  commitJournal(): void {
    const group = this.group;
    if (!group) return;
    this.group = undefined;
    clearTimeout(group.timer);
    try {
      this.journal.commitGroup();
    } catch (err) {
      // Nothing of the group was announced, and none of it will be: it is not on disk. The
      // journal is the truth: once it cannot commit, nothing more may be recorded as done.
      this.journalFailure = errorMessage(err);
      this.log?.error(
        { err: this.journalFailure, writes: group.rows },
        "journal commit failed; the group is lost and no further write is accepted",
      );
      this.journal.rollbackGroup();
      return;
    }
    this.scheduleDueStops();
    for (const publish of group.after) {
      try {
        publish();
      } catch (err) {
        this.log?.warn({ err: errorMessage(err) }, "publishing a committed write failed");
      }
    }
  }

  storeSignalConditions(
    tradeId: string,
    signalType: "entry" | "exit",
    conditions: Conditions,
    timestamp: number,
  ): StoredSignalConditions {
    return this.journaled(() =>
      this.journal.insertSignalConditions({
        trade_id: tradeId,
        signal_type: signalType,
        conditions,
        timestamp,
      }),
    );
  }

  // --- market data -------------------------------------------------------------------------------

  /** Validates a raw tick, then stores it as {@link storeValidTick} does. */
  storeTick(input: TickInput): Tick {
    const tick = parseOrThrow(tickSchema, input, "tick");
    this.storeValidTick(tick);
    return tick;
  }

  /**
   * Records a tick that its source already validated (the `Tick` type) in InfluxDB and queues it
   * as the symbol's latest for Redis. Not parsed again: a tick is validated once, at its source.
   */
  storeValidTick(tick: Tick): void {
    if (this.series) {
      const { tickTags: tags, tickFields: fields } = this.scratch;
      tags.symbol = tick.symbol;
      tags.source = tick.source;
      fields.open = tick.open;
      fields.high = tick.high;
      fields.low = tick.low;
      fields.close = tick.close;
      fields.volume = tick.volume;
      // A tick without a quote is quoted at its close.
      fields.bid = tick.bid ?? tick.close;
      fields.ask = tick.ask ?? tick.close;
      this.writeSeriesNs("ticks", tags, fields, msToNs(tick.timestamp));
    }
    this.historyStore?.writePrice(tick);
    // Without a cache there is no window to hold the latest tick for.
    if (this.windowed)
      this.pendingTicks.set(tick.symbol, {
        symbol: tick.symbol,
        last: tick.close,
        open: tick.open,
        high: tick.high,
        low: tick.low,
        close: tick.close,
        volume: tick.volume,
        bid: tick.bid ?? tick.close,
        ask: tick.ask ?? tick.close,
        timestamp: Math.round(tick.timestamp),
      });
  }

  /** Records indicator values (name → value, with optional periods) for a symbol at the tick's time. */
  storeIndicators(
    symbol: string,
    values: Record<string, number>,
    timestampMs: number,
    periods: Record<string, number> = {},
  ): void {
    assertFiniteValues(values);
    this.writeIndicatorPoints(symbol, values, timestampMs, periods);
    if (!this.windowed) return;
    // Refilled in place, not an entry per tick (a window takes a copy: indicatorHash).
    const held = this.tickIndicators.get(symbol);
    const timestamp = Math.round(timestampMs);
    if (held) {
      held.values = values;
      held.timestamp = timestamp;
    } else this.tickIndicators.set(symbol, { symbol, values, timestamp });
    this.pendingIndicators.add(symbol);
  }

  /**
   * Records a closed bar's indicators (named with the timeframe, `rsi_14_1m`) at the bar's end.
   * The cache's indicator hash of the symbol holds them next to the tick indicators until the
   * timeframe's next bar replaces them.
   */
  storeBarIndicators(
    symbol: string,
    values: Record<string, number>,
    timestampMs: number,
    periods: Record<string, number> = {},
  ): void {
    assertFiniteValues(values);
    this.writeIndicatorPoints(symbol, values, timestampMs, periods);
    if (!this.windowed) return;
    const held = this.barIndicators.get(symbol);
    if (held) {
      Object.assign(held.values, values);
      held.timestamp = Math.max(held.timestamp, Math.round(timestampMs));
    } else this.barIndicators.set(symbol, { values: { ...values }, timestamp: Math.round(timestampMs) });
    this.pendingIndicators.add(symbol);
  }

  /** One `indicators` point per value, with its period where it has one. */
  private writeIndicatorPoints(
    symbol: string,
    values: Record<string, number>,
    timestampMs: number,
    periods: Record<string, number>,
  ): void {
    const series = this.series;
    if (!series) return;
    const ns = msToNs(timestampMs);
    if (series.writeIndicator) {
      for (const name in values) {
        try {
          series.writeIndicator(symbol, name, values[name] as number, periods[name], ns);
        } catch (err) {
          this.seriesPointRejected("indicators", err);
        }
      }
      return;
    }
    const { indicatorTags: tags, value: valueOnly, withPeriod } = this.scratch;
    tags.symbol = symbol;
    for (const name in values) {
      const value = values[name] as number;
      const period = periods[name];
      tags.indicator_type = name;
      if (period === undefined) {
        valueOnly.value = value;
        this.writeSeriesNs("indicators", tags, valueOnly, ns);
      } else {
        withPeriod.value = value;
        withPeriod.period = period;
        this.writeSeriesNs("indicators", tags, withPeriod, ns);
      }
    }
  }

  /**
   * Caches a strategy's signal as the latest of its kind for the symbol and counts it, in the next
   * cache window: the tick path never waits for Redis.
   */
  recordSignal(signal: Signal): void {
    if (!this.windowed) return;
    // Coalesced into the next cache window: the latest signal per type and symbol, counts summed.
    this.pendingSignals.set(`${signal.kind}|${signal.symbol}`, {
      type: signal.kind,
      symbol: signal.symbol,
      signal: {
        reason: signal.reason,
        price: signal.price,
        timestamp: Math.round(signal.timestamp),
        indicators: signal.indicators,
        confidence: signal.confidence,
      },
    });
    const countKey = `${signal.strategy_id}|${signal.action}`;
    const count = this.pendingSignalCounts.get(countKey);
    if (count) count.count++;
    else
      this.pendingSignalCounts.set(countKey, {
        strategyId: signal.strategy_id,
        action: signal.action,
        count: 1,
      });
    this.addDaily(new Date(signal.timestamp), "signals", 1);
  }

  /** Adds to a daily aggregate of the next cache window. */
  private addDaily(date: Date, metric: string, amount: number): void {
    const key = `${utcDay(date.getTime())}|${metric}`;
    const daily = this.pendingDaily.get(key);
    if (daily) daily.amount += amount;
    else this.pendingDaily.set(key, { date, metric, amount });
  }

  /**
   * Publishes the engine's state and performance summary to the cache (seed 004 keys); the
   * watchlist comes with the market scan (storeMarketScan).
   */
  async publishEngineState(state: FlatRecord, performance: FlatRecord): Promise<void> {
    await this.cacheWrite(async (cache) => {
      await cache.setSystemState(state);
      await cache.setPerformance(performance);
    });
  }

  /** Periodic per-strategy figures (open positions, signals, P&L, win rate) for the time series. */
  recordStrategyMetrics(
    strategyId: string,
    metrics: { positions_count: number; signals_count: number; pnl: number; win_rate: number },
    timestampMs: number,
  ): void {
    this.writeSeries("strategy_metrics", { strategy_id: strategyId }, metrics, timestampMs);
  }

  /**
   * Stores a symbol's sentiment (seed 004's stocks:sentiment:{symbol}). Sentiment lives only in
   * Redis: without it the write fails with StoreUnavailableError (the API answers 503).
   */
  async storeSentiment(symbol: string, sentiment: Sentiment): Promise<void> {
    await requireConnectedCache(this.cache, "sentiment is kept in Redis").setSentiment(symbol, sentiment);
  }

  /** The last scan's ranked candidates, best first; empty when Redis cannot answer (they live only there). */
  async getRankedCandidates(limit?: number): Promise<Candidate[]> {
    if (!this.cache?.connected) return [];
    try {
      return await this.cache.getRankedCandidates(limit);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      this.counters.cacheReadFallbacks++;
      return [];
    }
  }

  /** The market scan (candidates, watchlist, context) goes to the cache with the next window. */
  storeMarketScan(scan: MarketScanWrite): void {
    this.pendingScan = scan;
    this.lastScan = scan;
  }

  /**
   * Position monitoring is refreshed with the cache window, not per tick: `source` is asked once
   * per window (when Redis is up) for the documents that changed and the symbols no longer held.
   */
  setMonitoringSource(source: MonitoringSource | undefined): void {
    this.monitoringSource = source;
  }

  // --- reads -------------------------------------------------------------------------------------

  /** Everything known about one trade: the journal's record, its conditions, stop history and, when InfluxDB answers, its position history. */
  async getTradeDetails(tradeId: string): Promise<TradeDetails | undefined> {
    const trade = this.journal.getTrade(tradeId);
    if (!trade) return undefined;
    const conditions = this.journal.getSignalConditions(trade.trade_id);
    let positionHistory: Record<string, unknown>[] | null = null;
    if (this.history) {
      const start = new Date(trade.entry_time * 1000);
      const stop = new Date(((trade.exit_time ?? Date.now() / 1000) + 1) * 1000);
      try {
        positionHistory = await this.history.positionHistory(trade.trade_id, start, stop);
      } catch (err) {
        this.log?.warn({ trade_id: trade.trade_id, err: errorMessage(err) }, "position history unavailable");
      }
    }
    return {
      trade,
      entry_conditions: conditions.filter((c) => c.signal_type === "entry"),
      exit_conditions: conditions.filter((c) => c.signal_type === "exit"),
      sl_timeline: this.journal.getSlUpdates(trade.trade_id),
      position_history: positionHistory,
    };
  }

  /** Open positions: from Redis when it answers (it holds the latest marks), else from the journal. */
  async getOpenPositions(): Promise<OpenPositionView[]> {
    if (this.cache?.connected) {
      try {
        const cached = await this.cache.getAllPositions();
        // The journal decides what is open; the cache only adds marks.
        const marks = new Map(cached.map((p) => [p.trade_id, p]));
        return this.journal.openTrades().map((trade) => viewOf(trade, marks.get(trade.trade_id)));
      } catch (err) {
        this.log?.debug({ err: errorMessage(err) }, "cache read failed; using the journal");
      }
    }
    this.counters.cacheReadFallbacks++;
    return this.journal.openTrades().map((trade) => {
      const state = this.open.get(trade.trade_id);
      return viewOf(trade, state && positionFor(state));
    });
  }

  async getStrategyPerformance(
    strategyId: string,
    days = 30,
  ): Promise<{
    stats: StrategyStats;
    counters: Awaited<ReturnType<RedisCache["getStrategyCounters"]>> | null;
  }> {
    const stats = this.journal.strategyStats(strategyId, days);
    let counters = null;
    if (this.cache?.connected) {
      try {
        counters = await this.cache.getStrategyCounters(strategyId);
      } catch {
        this.counters.cacheReadFallbacks++;
      }
    }
    return { stats, counters };
  }

  /** Stats over the strategy's trades closed between `fromSeconds` and `toSeconds` (both included). */
  getStrategyStatsBetween(strategyId: string, fromSeconds: number, toSeconds: number): StrategyStats {
    return this.journal.strategyStatsBetween(strategyId, fromSeconds, toSeconds);
  }

  /** The latest trades from the journal, newest entry first (see TradeJournal.recentTrades). */
  getRecentTrades(query: RecentTradesQuery = {}): Trade[] {
    return this.journal.recentTrades(query);
  }

  /** One page of trades, newest entry first (see TradeJournal.listTrades). */
  getTradePage(query: TradePageQuery = {}): TradePage {
    return this.journal.listTrades(query);
  }

  /** Every strategy id with a trade in the journal, sorted. */
  getJournalStrategyIds(): string[] {
    return this.journal.strategyIds();
  }

  /** Every symbol traded according to the journal, sorted; only the strategy's when one is named. */
  getJournalSymbols(strategyId?: string): string[] {
    return this.journal.symbols(strategyId);
  }

  async health(): Promise<StoreHealth> {
    const redis = this.cache ? await this.cache.health() : undefined;
    const sqlite = this.closed ? { ok: false as const, error: "closed" } : this.journal.ping();
    return {
      sqlite: sqlite.ok ? { up: true } : { up: false, error: sqlite.error },
      redis: { configured: Boolean(this.cache), up: redis?.up ?? false, latencyMs: redis?.latencyMs ?? null },
      influx: { configured: Boolean(this.series) },
    };
  }

  stats(): DataManagerStats {
    return { ...this.counters };
  }

  /** Writes out the pending cache window, closes the time-series writer (which spools what it cannot send), then the cache and the journal. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.settle();
    clearInterval(this.flushTimer);
    clearTimeout(this.stopsTimer);
    this.stopCacheWatch?.();
    await this.rewarming;
    await this.flushCache(true);
    await this.series?.close();
    await this.historyStore?.close();
    await this.cache?.close();
    this.journal.close();
  }

  // --- internals ---------------------------------------------------------------------------------

  /**
   * Whether there is a cache window to keep things for (the latest ticks, indicators, signals,
   * counters, marks, stop states): only with a cache configured. Without one they would go nowhere.
   */
  private get windowed(): boolean {
    return this.cache !== undefined;
  }

  private writeSeries<M extends MeasurementName>(
    measurement: M,
    tags: SeriesPoint<M>["tags"],
    fields: SeriesPoint<M>["fields"],
    timestampMs: number,
  ): void {
    if (this.series) this.writeSeriesNs(measurement, tags, fields, msToNs(timestampMs));
  }

  /** As writeSeries, with the timestamp already in ns (a tick's points share one conversion). */
  private writeSeriesNs<M extends MeasurementName>(
    measurement: M,
    tags: SeriesPoint<M>["tags"],
    fields: SeriesPoint<M>["fields"],
    timestampNs: string,
  ): void {
    const series = this.series;
    if (!series) return;
    try {
      if (series.writeSeries) series.writeSeries(measurement, tags, fields, timestampNs);
      // `write` may keep its point; the hot path's tags and fields are refilled for the next one.
      else
        series.write({
          measurement,
          tags: { ...tags },
          fields: { ...fields },
          timestampNs,
        } as AnySeriesPoint);
    } catch (err) {
      this.seriesPointRejected(measurement, err);
    }
  }

  /** The writer counts its own rejections; this keeps a bad point from failing a fill. */
  private seriesPointRejected(measurement: MeasurementName, err: unknown): void {
    this.counters.seriesPointsRejected++;
    this.log?.warn({ measurement, err: errorMessage(err) }, "time-series point rejected");
  }

  /**
   * Runs `write` inside the open journal group (opening one, with its commit timer, if needed).
   * A write of several rows (a trade and its conditions) leaves none of them if it fails half-way.
   */
  private journaled<T>(write: () => T): T {
    if (this.journalFailure !== undefined) {
      throw new StoreUnavailableError(
        "journal",
        `a commit failed (${this.journalFailure}); no trade can be recorded any more`,
      );
    }
    const group = this.openGroup();
    const result = write();
    group.rows++;
    if (group.rows >= this.groupRows) this.commitJournal();
    return result;
  }

  private openGroup(): NonNullable<DataManager["group"]> {
    if (!this.group) {
      this.journal.beginGroup();
      const timer = setTimeout(() => this.commitJournal(), this.groupMs);
      this.group = { rows: 0, timer, after: [] };
    }
    return this.group;
  }

  /**
   * The journal holds a trade's stop moves back for a while (`stopIntervalMs`); when the ticks
   * stop, no write would open the group that journals the last of them, so a timer does.
   */
  private scheduleDueStops(): void {
    if (this.stopsTimer !== undefined || this.closed) return;
    const dueIn = this.journal.stopsDueIn();
    if (dueIn === undefined) return;
    this.stopsTimer = setTimeout(() => {
      this.stopsTimer = undefined;
      if (this.journalFailure === undefined && !this.closed) this.openGroup();
    }, dueIn);
    this.stopsTimer.unref();
  }

  /** A cache write behind the caller: errors are counted and logged, never thrown. */
  private cacheBehind(op: (cache: RedisCache) => Promise<unknown>): void {
    const write = this.cacheWrite(op)
      .catch((err) => {
        this.counters.cacheWriteErrors++;
        this.log?.warn({ err: errorMessage(err) }, "cache write failed");
      })
      .finally(() => this.behind.delete(write));
    this.behind.add(write);
  }

  /** Runs a cache write when Redis is up; otherwise counts it as skipped. Never throws. */
  private async cacheWrite(op: (cache: RedisCache) => Promise<unknown>): Promise<void> {
    const cache = this.cache;
    if (!cache) return;
    if (!cache.connected) {
      this.counters.cacheWritesSkipped++;
      return;
    }
    try {
      await op(cache);
    } catch (err) {
      if (!(err instanceof StoreUnavailableError)) throw err;
      this.counters.cacheWriteErrors++;
      this.log?.debug({ err: err.message }, "cache write failed");
    }
  }

  /**
   * Cuts a cache window once `cacheFlushMs` has passed since the last, unless
   * MAX_WINDOWS_IN_FLIGHT are still unanswered: a frozen Redis holds a few windows, never a queue
   * (what waits meanwhile is coalesced in the pending maps).
   */
  private flushIfDue(): void {
    if (this.windows.size >= MAX_WINDOWS_IN_FLIGHT || performance.now() - this.windowAt < this.flushMs)
      return;
    void this.flushCache();
  }

  /**
   * Sends the coalesced window — latest ticks, indicators, signals and stop states, summed
   * counters, position marks — as one transaction: Redis work grows with symbols and windows, not
   * with ticks or signals. A window does not wait for the one before it to be answered: behind a
   * busy event loop the reply is read late, and a tick would wait for it. The final window goes
   * after every other is answered.
   */
  private async flushCache(final = false): Promise<void> {
    if (final) await Promise.all(this.windows);
    const sent = this.sendWindow(final);
    this.windows.add(sent);
    try {
      await sent;
    } finally {
      this.windows.delete(sent);
    }
  }

  /** Cuts the window now (synchronously, so windows leave in order) and resolves once it is answered. */
  private async sendWindow(final: boolean): Promise<void> {
    const now = performance.now();
    const sinceLast = now - this.windowAt;
    this.windowAt = now;
    const indicatorSymbols = this.dueIndicators(now, sinceLast, final);
    const waiting =
      this.pendingTicks.size +
      indicatorSymbols.length +
      this.pendingMarks.size +
      this.pendingSignals.size +
      this.pendingSignalCounts.size +
      this.pendingTradeResults.size +
      this.pendingDaily.size +
      this.pendingStops.size +
      this.pendingStopDeletes.size +
      (this.pendingScan ? 1 : 0);
    // Documents are built only when they can be written: a down cache would drop them.
    const monitoring = this.cache?.connected ? this.monitoringSource?.() : undefined;
    if (waiting === 0 && !monitoring?.documents.length && !monitoring?.gone.length) return;
    // Marks go with the window: one round trip per window, not two.
    const marks: PositionWrite[] = [];
    for (const id of this.pendingMarks) {
      const state = this.open.get(id);
      if (state)
        marks.push({
          strategyId: state.trade.strategy_id,
          symbol: state.trade.symbol,
          position: positionFor(state),
        });
    }
    const window: CacheWindow = {
      ticks: [...this.pendingTicks.values()],
      indicators: indicatorSymbols.map((symbol) => this.indicatorHash(symbol)),
      signals: [...this.pendingSignals.values()],
      signalCounts: [...this.pendingSignalCounts.values()],
      daily: [...this.pendingDaily.values()],
      tradeResults: [...this.pendingTradeResults.values()],
      stopStates: [...this.pendingStops].map(([tradeId, state]) => ({ tradeId, state })),
      stopDeletes: [...this.pendingStopDeletes],
      monitoring: monitoring?.documents ?? [],
      monitoringDeletes: monitoring?.gone ?? [],
      positions: marks,
      scan: this.pendingScan,
    };
    this.pendingScan = undefined;
    this.pendingTicks.clear();
    this.pendingMarks.clear();
    this.pendingSignals.clear();
    this.pendingSignalCounts.clear();
    this.pendingDaily.clear();
    this.pendingTradeResults.clear();
    this.pendingStops.clear();
    this.pendingStopDeletes.clear();
    try {
      await this.cacheWrite((cache) => cache.writeLatest(window));
      this.windowError = undefined;
    } catch (err) {
      // A window refused whole (an entry that fails its check) is counted and named, loudly
      // once per fault; the windows after it must still go out, or the cache would never be
      // written again.
      this.counters.cacheWriteErrors++;
      const message = errorMessage(err);
      if (message !== this.windowError) this.log?.warn({ err: message }, "cache window not written");
      this.windowError = message;
    }
  }

  /**
   * The symbols whose indicator hashes go with this window, taken out of the pending ones: each
   * symbol at most once per `indicatorsMs`, oldest pending first, and no more per window than
   * the share of the window's time (all symbols over `indicatorsMs`). Why a share: all symbols
   * at once made every 250 ms a transaction Redis took 10–25 ms to run (500 hashes), and every
   * read and window behind it waited; spread, each window carries a few. The last window takes
   * every pending one.
   */
  private dueIndicators(now: number, sinceLast: number, final: boolean): string[] {
    const pending = this.pendingIndicators;
    if (final || this.indicatorsMs === 0) {
      const all = [...pending];
      pending.clear();
      return all;
    }
    const symbols = Math.max(this.tickIndicators.size, this.barIndicators.size, pending.size);
    let budget = Math.max(
      1,
      Math.ceil((symbols * Math.min(sinceLast, this.indicatorsMs)) / this.indicatorsMs),
    );
    const due: string[] = [];
    // Pending order is about the order of the last sends (a symbol is pending again from its next
    // tick), so the first one not yet due ends the search.
    for (const symbol of pending) {
      if (budget === 0) break;
      const sentAt = this.indicatorsSentAt.get(symbol);
      if (sentAt !== undefined && now - sentAt < this.indicatorsMs) break;
      due.push(symbol);
      this.indicatorsSentAt.set(symbol, now);
      budget--;
    }
    for (const symbol of due) pending.delete(symbol);
    return due;
  }

  /** A symbol's indicator hash: its bar indicators, then its tick indicators (the hash's timestamp). */
  private indicatorHash(symbol: string): IndicatorWrite {
    const tick = this.tickIndicators.get(symbol);
    const bars = this.barIndicators.get(symbol);
    // A copy: the held entry is refilled by the next tick (storeIndicators).
    if (!bars) return { ...(tick as IndicatorWrite) };
    return {
      symbol,
      values: Object.assign({}, bars.values, tick?.values),
      timestamp: Math.max(tick?.timestamp ?? 0, bars.timestamp),
    };
  }

  /** Rebuilds the cache's open positions and stop states from the journal after Redis (re)appears. */
  private rewarmCache(): Promise<void> {
    this.rewarming ??= (async () => {
      try {
        const positions: PositionWrite[] = [...this.open.values()].map((state) => ({
          strategyId: state.trade.strategy_id,
          symbol: state.trade.symbol,
          position: positionFor(state),
        }));
        await this.cacheWrite(async (cache) => {
          await cache.setPositions(positions);
          for (const state of this.open.values()) {
            const last = this.journal.getSlUpdates(state.trade.trade_id).at(-1);
            if (last) {
              await cache.setStopState(state.trade.trade_id, {
                current_sl: last.stop,
                highest_price: last.highest_price,
                sl_type: last.sl_type,
                updated_at: Math.round(last.ts * 1000),
              });
            }
          }
        });
        // What windows skipped while Redis was away goes again with the next one: every symbol's
        // indicator hash, and the last market scan if no newer one is waiting.
        for (const symbol of this.tickIndicators.keys()) this.pendingIndicators.add(symbol);
        for (const symbol of this.barIndicators.keys()) this.pendingIndicators.add(symbol);
        this.indicatorsSentAt.clear();
        this.pendingScan ??= this.lastScan;
        this.counters.cacheRewarms++;
        this.log?.info({ positions: positions.length }, "cache re-warmed from the journal");
      } finally {
        this.rewarming = undefined;
      }
    })();
    return this.rewarming;
  }
}

function unrealizedPnl(trade: Trade, price: number): number {
  const direction = trade.side === "long" ? 1 : -1;
  return (price - trade.entry_price) * trade.quantity * direction;
}

/** The cache's view of an open position. */
function positionFor({ trade, lastPrice, lastUpdateMs, stop }: OpenState): Position {
  const position: Position = {
    trade_id: trade.trade_id,
    side: trade.side,
    entry_price: trade.entry_price,
    quantity: trade.quantity,
    entry_time: Math.round(trade.entry_time * 1000),
  };
  if (lastPrice !== null) {
    const pnl = unrealizedPnl(trade, lastPrice);
    position.current_price = lastPrice;
    position.unrealized_pnl = pnl;
    position.unrealized_pnl_pct = pnlPercent(pnl, trade.entry_price, trade.quantity);
  }
  if (lastUpdateMs !== null) position.last_update = Math.round(lastUpdateMs);
  if (stop !== null) position.stop_loss = stop;
  return position;
}

function viewOf(trade: Trade, cached: Position | undefined): OpenPositionView {
  const pnl = cached?.unrealized_pnl ?? null;
  return {
    trade_id: trade.trade_id,
    strategy_id: trade.strategy_id,
    symbol: trade.symbol,
    side: trade.side,
    entry_price: trade.entry_price,
    quantity: trade.quantity,
    entry_time: trade.entry_time,
    current_price: cached?.current_price ?? null,
    unrealized_pnl: pnl,
    unrealized_pnl_pct: pnl === null ? null : pnlPercent(pnl, trade.entry_price, trade.quantity),
    stop_loss: cached?.stop_loss ?? trade.stop_loss_initial,
  };
}

/** Indicator values the cache and the time series can hold: finite numbers only. */
function assertFiniteValues(values: Record<string, number>): void {
  for (const name in values) {
    if (!Number.isFinite(values[name])) {
      throw new ValidationError(`indicators.${name}`, `must be a finite number, got ${String(values[name])}`);
    }
  }
}
