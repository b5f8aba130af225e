import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { Tick } from "../domain/tick.js";
import { utcDay } from "../domain/time.js";
import { pnlPercent, type Trade } from "../domain/trade.js";
import type { EventBus } from "../events/event-bus.js";
import { createEventBus } from "../events/factory.js";
import type { VeloxLogger } from "../log.js";
import type { TickValidator } from "../market/tick-validator.js";
import type { EngineSnapshot, MarketFigures, MetricsSource, StrategyFigures } from "../metrics/source.js";
import { TOPICS, toEventMessage, toSignalMessage, toTickMessage, toTradeMessage } from "../schema/events.js";
import type { JsonObject, PositionChange } from "../storage/redis-cache.js";
import type { TradeJournalOptions } from "../storage/trade-journal.js";
import { sectorResolver } from "../trading/market-config.js";
import { MarketPicture, type MarketScan } from "../trading/market-picture.js";
import type { ResumeReport, TickOutcome, TradingPipeline } from "../trading/pipeline.js";
import { pipelineFromConfig } from "../trading/pipeline.js";
import type { TrackerEvent } from "../trading/position-tracker.js";
import type { StrategyConfig } from "../trading/strategy-config.js";
import { SlidingRate } from "./sliding-rate.js";
import { openStores, type Stores } from "./stores.js";

export interface EngineOptions {
  config: Config;
  strategies: StrategyConfig;
  logging: VeloxLogger;
  /** Validates ticks before the pipeline and counts rejections by reason. */
  validator: TickValidator;
  /** Keeps this run's trade ids apart from earlier runs' in the same journal. */
  runId: string;
  /** The symbols the source produces (watchlist). */
  symbols: readonly string[];
  /** Called with each tick's processing time (validation, pipeline and store writes), in seconds. */
  observeTick?: ((seconds: number) => void) | undefined;
  /** Passed to the journal: every write's duration and whether SQLite failed. */
  observeJournalWrite?: TradeJournalOptions["observeWrite"];
  /** Called with each market scan's duration (screener and context), in seconds. */
  observeScan?: ((seconds: number) => void) | undefined;
  /** symbol → sector for the market context (default: the configured map, else unclassified). */
  sectorOf?: ((symbol: string) => string) | undefined;
}

/** A replayed file may name any number of symbols; labels stay bounded. */
export const MAX_SYMBOL_LABELS = 100;
export const OTHER_SYMBOL = "other";
/** How often in-process `updated` position changes go out (the Redis path has its cache window). */
export const MARK_INTERVAL_MS = 1000;

export type { EngineSnapshot, StrategyFigures, TradeResult } from "../metrics/source.js";

/**
 * The engine: stores, event bus and trading pipeline wired together. A tick source drives it
 * through `process`; it knows nothing of where ticks come from. On start it takes over the open
 * trades an earlier run left in the journal (see TradingPipeline.resumeOpenTrades), so a restart
 * keeps managing the book.
 */
export class Engine implements MetricsSource {
  readonly stores: Stores;
  readonly bus: EventBus;
  readonly pipeline: TradingPipeline;
  /** What start-up did with the journal's open trades. */
  readonly resumed: ResumeReport;
  private readonly log: Logger;
  private lastTickTime: number | undefined;
  private readonly positionListeners = new Set<(change: PositionChange) => void>();
  private readonly rate = new SlidingRate(10);
  private readonly figures = new Map<
    string,
    { fills: StrategyFigures["fills"]; closed: StrategyFigures["closed"] }
  >();
  private readonly pnlByDay = new Map<string, number>();
  /** Ticks per symbol, in counters that are bumped in place (one lookup per tick). */
  private readonly ticksBySymbol = new Map<string, { ticks: number }>();
  private equityPeak = 0;
  /** When the last step ended (performance.now()): where the next tick of a batch starts its time. */
  private stepEnded = 0;
  private running = false;
  private markTimer: NodeJS.Timeout | undefined;
  /** Seed 004's market picture: screener, market context, position monitoring. */
  readonly picture: MarketPicture;
  private readonly market: MarketFigures = {
    scans: 0,
    lastScanTime: undefined,
    candidates: 0,
    breadth: undefined,
    sectors: {},
    volatility: null,
  };
  private watchlist: string[] = [];
  /** Per trade id, what the last `updated` said (mark time and stop), so an unmoved mark is not resent. */
  private readonly lastMarks = new Map<string, string>();

  constructor(private readonly options: EngineOptions) {
    const { config, logging } = options;
    this.log = logging.for("strategy");
    this.stores = openStores(config, logging, {
      observeJournalWrite: options.observeJournalWrite,
      strategyIds: options.strategies.strategies.map((s) => s.id),
    });
    for (const spec of options.strategies.strategies) {
      this.figures.set(spec.id, { fills: {}, closed: { win: 0, loss: 0, flat: 0 } });
    }
    this.bus = createEventBus(config, logging.for("events"));
    this.pipeline = pipelineFromConfig(options.strategies, this.stores.data, { runId: options.runId });
    this.resumed = this.pipeline.resumeOpenTrades(this.stores.journal, options.runId);
    this.picture = new MarketPicture(
      options.strategies.market,
      this.pipeline.bars,
      options.sectorOf ?? sectorResolver(options.strategies.market.sectors),
    );
    // Monitoring documents are built once per cache window, for the positions marked since.
    this.stores.data.setMonitoringSource(() => {
      const { tracker } = this.pipeline;
      const { documents, gone } = this.picture.monitoring(tracker.takeChangedSymbols(), (symbol) =>
        tracker.positionsOf(symbol),
      );
      return {
        documents: documents.map((d) => ({
          symbol: d.symbol,
          document: asJson(Object.assign({}, d, { timestamp: Math.round(d.timestamp) })),
        })),
        gone,
      };
    });
    this.logResumed(this.resumed);
    this.pipeline.tracker.onLetGo((p, tickTime) =>
      this.log.warn(
        {
          trade_id: p.trade_id,
          strategy_id: p.strategy_id,
          symbol: p.symbol,
          entry_time: p.entry_time,
          tick_time: tickTime,
        },
        `trade ${p.trade_id} was entered at ${new Date(p.entry_time).toISOString()}, after this run's ${p.symbol} ticks (${new Date(tickTime).toISOString()}): left open in the journal, not managed by this run`,
      ),
    );
  }

  get validator(): TickValidator {
    return this.options.validator;
  }

  /** Validates and runs one raw tick through the pipeline; publishes what happened. */
  async process(
    raw: Tick | Readonly<Record<string, unknown>>,
    line?: number,
  ): Promise<TickOutcome | undefined> {
    const checked = this.options.validator.validate(raw, line === undefined ? {} : { line });
    if (!checked.ok) return undefined;
    return this.run(checked.tick);
  }

  /** Runs a tick that a source has already validated (CSV replay validates as it parses). */
  async run(tick: Tick): Promise<TickOutcome> {
    const outcome = this.step(tick, performance.now());
    this.rate.record();
    await this.paced();
    return outcome;
  }

  /**
   * Validates and runs a batch of raw ticks (a source's ticks due together) with no await between
   * them; invalid ones are rejected and counted by the validator. Resolves once a store that fell
   * behind has caught up (back-pressure, once per batch).
   */
  async processBatch(raws: readonly (Tick | Readonly<Record<string, unknown>>)[]): Promise<void> {
    let ran = 0;
    // One clock read per tick: a tick's time starts where the one before it ended, so it
    // includes its own validation.
    let started = performance.now();
    for (const raw of raws) {
      const checked = this.options.validator.validate(raw);
      if (!checked.ok) continue;
      this.step(checked.tick, started);
      started = this.stepEnded;
      ran++;
    }
    // Once per batch: a batch is the ticks due together (MAX_BATCH at most), well inside a second.
    this.rate.record(ran);
    await this.paced();
  }

  /** As {@link processBatch}, for ticks a source has already validated (CSV replay). */
  async runBatch(ticks: readonly Tick[]): Promise<void> {
    let started = performance.now();
    for (const tick of ticks) {
      this.step(tick, started);
      started = this.stepEnded;
    }
    this.rate.record(ticks.length);
    await this.paced();
  }

  /** Back-pressure: a store that falls behind slows the source down rather than filling memory. */
  private paced(): Promise<void> | undefined {
    return this.stores.data.paced();
  }

  /**
   * One valid tick through the pipeline, and what it caused published; nothing awaited. Its time
   * (`observeTick`) runs from `started` to {@link stepEnded}.
   */
  private step(tick: Tick, started: number): TickOutcome {
    const outcome = this.pipeline.onValidTick(tick);
    this.countSymbol(outcome.tick.symbol);
    this.lastTickTime = outcome.tick.timestamp;
    // Messages are built only if sent (thunks): a bus without a backend sends nothing.
    this.bus.publish(TOPICS.ticks, () => toTickMessage(outcome.tick));
    for (const signal of outcome.signals) {
      this.bus.publish(TOPICS.signals, () => toSignalMessage(signal));
      this.stores.data.recordSignal(signal);
    }
    // Fills and stop moves are announced only once the journal has committed them.
    for (const event of outcome.events) this.stores.data.afterCommit(() => this.publishEvent(event));
    const scan = this.picture.onTick(outcome.tick);
    if (scan) this.storeScan(scan);
    // The peak moves with equity itself, not with how often someone reads the drawdown.
    this.equityPeak = Math.max(this.equityPeak, this.pipeline.tracker.equity());
    this.stepEnded = performance.now();
    this.options.observeTick?.((this.stepEnded - started) / 1000);
    return outcome;
  }

  /** Marks a tick source as running (for the feed-stalled alert) or finished. */
  setFeedRunning(running: boolean): void {
    this.running = running;
  }

  /**
   * In-process position changes, for the WebSocket feed when Redis is absent or down: `opened` and
   * `closed` as they commit, and `updated` (the latest mark, P&L and stop) at most once a second
   * per position whose mark moved, as the cache window does through Redis.
   */
  onPositionChange(listener: (change: PositionChange) => void): () => void {
    this.positionListeners.add(listener);
    if (!this.markTimer) {
      this.markTimer = setInterval(() => this.emitMarks(), MARK_INTERVAL_MS);
      this.markTimer.unref();
    }
    return () => {
      this.positionListeners.delete(listener);
      if (this.positionListeners.size === 0) this.stopMarks();
    };
  }

  snapshot(): EngineSnapshot {
    const pipeline = this.pipeline.counters();
    const positions = this.pipeline.tracker.positions();
    const validator = this.options.validator;
    const unrealizedPnl = positions.reduce((sum, p) => sum + p.unrealized_pnl, 0);
    // The same equity the peak is kept on (see run).
    const equity = this.pipeline.tracker.equity();
    const strategies: Record<string, StrategyFigures> = {};
    for (const [id, f] of this.figures) {
      const own = positions.filter((p) => p.strategy_id === id);
      strategies[id] = {
        fills: { ...f.fills },
        closed: { ...f.closed },
        openPositions: own.length,
        realizedPnl: pipeline.realizedPnlByStrategy[id] ?? 0,
        unrealizedPnl: own.reduce((sum, p) => sum + p.unrealized_pnl, 0),
      };
    }
    return {
      ticks: pipeline.ticks,
      rejected: validator.rejected + pipeline.ticksRejected,
      rejectedByReason: validator.counts(),
      openPositions: positions.length,
      realizedPnl: pipeline.realizedPnl,
      unrealizedPnl,
      pipeline,
      lastTickTime: this.lastTickTime,
      ticksBySymbol: Object.fromEntries([...this.ticksBySymbol].map(([symbol, c]) => [symbol, c.ticks])),
      tickRate: this.rate.perSecond(),
      feedRunning: this.running,
      drawdown: this.equityPeak - equity,
      dailyPnl: this.lastTickTime === undefined ? 0 : (this.pnlByDay.get(utcDay(this.lastTickTime)) ?? 0),
      strategies,
      market: { ...this.market, sectors: { ...this.market.sectors } },
    };
  }

  /** Writes per-strategy figures to the time series and the engine state to the cache. */
  async publishState(state: "running" | "stopping" | "stopped"): Promise<void> {
    const snap = this.snapshot();
    const at = this.lastTickTime ?? Date.now();
    const positions = this.pipeline.tracker.positions();
    for (const spec of this.options.strategies.strategies) {
      const stats = this.stores.journal.strategyStats(spec.id, 3650, at / 1000 + 1);
      const signals = Object.values(snap.pipeline.signals[spec.id] ?? {}).reduce((a, b) => a + (b ?? 0), 0);
      this.stores.data.recordStrategyMetrics(
        spec.id,
        {
          positions_count: positions.filter((p) => p.strategy_id === spec.id).length,
          signals_count: signals,
          pnl: snap.pipeline.realizedPnlByStrategy[spec.id] ?? 0,
          win_rate: stats.win_rate,
        },
        at,
      );
    }
    await this.stores.data.publishEngineState(
      {
        state,
        active_positions_count: snap.openPositions,
        // The watchlist is the screener's ranked candidates; the universe is every symbol traded.
        watchlist_count: this.watchlist.length,
        // Every symbol that has ticked (a replay names its symbols only as they come).
        universe_count: Math.max(this.options.symbols.length, this.pipeline.indicators.symbols().length),
        last_scan_time:
          this.market.lastScanTime === undefined ? null : new Date(this.market.lastScanTime).toISOString(),
        ticks_processed: snap.ticks,
        timestamp: new Date().toISOString(),
      },
      {
        realized_pnl: snap.realizedPnl,
        unrealized_pnl: snap.unrealizedPnl,
        timestamp: new Date().toISOString(),
      },
    );
  }

  /** Closes open positions at their last price (only when asked: a paper book may be kept open). */
  async closeAll(reason: string): Promise<void> {
    for (const event of this.pipeline.closeAll(reason)) {
      this.stores.data.afterCommit(() => this.publishEvent(event));
    }
    this.stores.data.commitJournal();
    const left = this.pipeline.tracker.positions();
    if (left.length > 0) {
      this.log.warn(
        { trade_ids: left.map((p) => p.trade_id) },
        `${left.length} resumed positions left open: no tick of their symbol this run to close them at`,
      );
    }
  }

  /** Flushes and closes everything: event bus, then the stores (cache window, spool, journal). */
  async close(): Promise<void> {
    this.stopMarks();
    await this.bus.close();
    await this.stores.postgres?.archiver.close();
    await this.stores.data.close();
  }

  private logResumed(report: ResumeReport): void {
    const ids = (trades: readonly Trade[]) => trades.map((t) => t.trade_id);
    if (report.unmanaged.length > 0) {
      this.log.warn(
        {
          trades: report.unmanaged.map((t) => ({
            trade_id: t.trade_id,
            strategy_id: t.strategy_id,
            symbol: t.symbol,
          })),
        },
        `${report.unmanaged.length} open trades of strategies or symbols this run does not trade stay open, unmanaged: ${ids(report.unmanaged).join(", ")}`,
      );
    }
    if (report.duplicates.length > 0) {
      this.log.warn(
        { trade_ids: ids(report.duplicates) },
        `${report.duplicates.length} older open trades stay open, unmanaged (a newer one of the same strategy and symbol was resumed): ${ids(report.duplicates).join(", ")}`,
      );
    }
    if (report.failed.length > 0) {
      this.log.warn(
        { trades: report.failed.map((f) => ({ trade_id: f.trade.trade_id, error: f.error })) },
        `${report.failed.length} open trades could not be resumed and stay open, unmanaged: ${report.failed.map((f) => f.trade.trade_id).join(", ")}`,
      );
    }
    this.log.info(
      { trade_ids: report.resumed.map((p) => p.trade_id) },
      `resumed ${report.resumed.length} open positions from the journal`,
    );
  }

  /** A scan's candidates, watchlist and context go to the cache with the next window. */
  private storeScan(scan: MarketScan): void {
    this.options.observeScan?.(scan.seconds);
    this.watchlist = scan.candidates.map((c) => c.symbol);
    const { context } = scan;
    Object.assign(this.market, {
      scans: this.market.scans + 1,
      lastScanTime: context.timestamp,
      candidates: scan.candidates.length,
      breadth: context.market_breadth,
      sectors: context.sector_performance,
      volatility: context.vix,
    });
    // The cache keeps whole epoch ms; a tick's time may carry a fraction.
    this.stores.data.storeMarketScan({
      candidates: scan.candidates.map((c) => ({
        ...c,
        signals: [...c.signals],
        timestamp: Math.round(c.timestamp),
      })),
      watchlist: this.watchlist,
      context: asJson({ ...context, timestamp: Math.round(context.timestamp) }),
    });
  }

  /** Per-symbol tick counts for a metric label: the first MAX_SYMBOL_LABELS symbols, the rest as "other". */
  private countSymbol(symbol: string): void {
    const counter = this.ticksBySymbol.get(symbol);
    if (counter) {
      counter.ticks++;
      return;
    }
    const key = this.ticksBySymbol.size < MAX_SYMBOL_LABELS ? symbol : OTHER_SYMBOL;
    const other = this.ticksBySymbol.get(key);
    if (other) other.ticks++;
    else this.ticksBySymbol.set(key, { ticks: 1 });
  }

  private countFill(strategyId: string, action: "BUY" | "SELL"): void {
    const f = this.figures.get(strategyId);
    if (f) f.fills[action] = (f.fills[action] ?? 0) + 1;
  }

  /** `updated` for each held position marked since the last call (see onPositionChange). */
  private emitMarks(): void {
    for (const p of this.pipeline.tracker.positions()) {
      const key = `${p.trade_id}|${p.last_timestamp}|${p.stop}`;
      if (this.lastMarks.get(p.trade_id) === key) continue;
      this.lastMarks.set(p.trade_id, key);
      this.emitChange({
        type: "updated",
        strategy_id: p.strategy_id,
        symbol: p.symbol,
        trade_id: p.trade_id,
        side: p.side,
        entry_price: p.entry_price,
        quantity: p.quantity,
        entry_time: Math.round(p.entry_time),
        current_price: p.last_price,
        unrealized_pnl: p.unrealized_pnl,
        unrealized_pnl_pct: pnlPercent(p.unrealized_pnl, p.entry_price, p.quantity),
        stop_loss: p.stop,
        last_update: Math.round(p.last_timestamp),
      });
    }
  }

  private stopMarks(): void {
    clearInterval(this.markTimer);
    this.markTimer = undefined;
    this.lastMarks.clear();
  }

  private emitChange(change: PositionChange): void {
    for (const listener of this.positionListeners) listener(change);
  }

  private publishEvent(event: TrackerEvent): void {
    switch (event.type) {
      case "opened":
        this.countFill(event.fill.strategy_id, event.fill.action);
        this.bus.publish(TOPICS.trades, () => toTradeMessage(event.fill));
        this.emitChange({
          type: "opened",
          strategy_id: event.trade.strategy_id,
          symbol: event.trade.symbol,
          trade_id: event.trade.trade_id,
          side: event.trade.side,
          entry_price: event.trade.entry_price,
          quantity: event.trade.quantity,
          entry_time: Math.round(event.trade.entry_time * 1000),
        });
        break;
      case "closed": {
        this.countFill(event.fill.strategy_id, event.fill.action);
        const pnl = event.trade.pnl ?? 0;
        const f = this.figures.get(event.trade.strategy_id);
        if (f) f.closed[pnl > 0 ? "win" : pnl < 0 ? "loss" : "flat"]++;
        const day = utcDay(event.fill.timestamp);
        this.pnlByDay.set(day, (this.pnlByDay.get(day) ?? 0) + pnl);
        this.lastMarks.delete(event.trade.trade_id);
        this.emitChange({ type: "closed", strategy_id: event.trade.strategy_id, symbol: event.trade.symbol });
        this.bus.publish(TOPICS.trades, () => toTradeMessage(event.fill, { pnl: event.trade.pnl ?? 0 }));
        this.log.debug(
          { trade_id: event.trade.trade_id, pnl: event.trade.pnl, reason: event.reason },
          "trade closed",
        );
        break;
      }
      case "stop_moved":
        this.bus.publish(TOPICS.events, () =>
          toEventMessage({
            level: "info",
            name: "stop_moved",
            message: `stop of ${event.trade_id} moved to ${event.stop}`,
            fields: {
              trade_id: event.trade_id,
              strategy_id: event.strategy_id,
              symbol: event.symbol,
              stop: event.stop,
            },
            timestamp: event.timestamp,
          }),
        );
        break;
      case "ignored":
        break;
    }
  }
}

/** A plain document of numbers, strings and nested objects, as the cache's JSON type (checked on write). */
function asJson(doc: object): JsonObject {
  return doc as JsonObject;
}
