import type { Tick } from "../domain/tick.js";
import type { BarBook } from "./bar-book.js";
import type { MarketConfig } from "./market-config.js";
import { MarketContext, type MarketContextFigures } from "./market-context.js";
import { type MonitoringDocument, PositionMonitor } from "./position-monitoring.js";
import type { OpenPosition } from "./position-tracker.js";
import { type ScreenedCandidate, Screener } from "./screener.js";

/**
 * Seed 004's market picture, on event time: every `screener.interval_seconds` of tick time the
 * screener ranks the universe and the market context is computed; position monitoring documents
 * are built on request (the cache window asks once per window, not per tick).
 */

/** A held symbol's monitoring document is rebuilt at most this often (ms of tick time). */
export const MONITORING_INTERVAL_MS = 1000;

export interface MarketScan {
  candidates: ScreenedCandidate[];
  context: MarketContextFigures;
  /** Wall-clock seconds the scan took. */
  seconds: number;
}

export class MarketPicture {
  private readonly context: MarketContext;
  private readonly screener: Screener;
  private readonly monitor: PositionMonitor;
  private readonly intervalMs: number;
  private nextScan: number | undefined;
  /** Per symbol, what its last monitoring document was built from (unchanged: not rebuilt). */
  private readonly monitored = new Map<string, string>();

  constructor(config: MarketConfig, bars: BarBook, sectorOf: (symbol: string) => string) {
    this.intervalMs = config.screener.interval_seconds * 1000;
    this.context = new MarketContext(config.context, config.screener.interval_seconds, sectorOf);
    this.screener = new Screener(config.screener, bars);
    this.monitor = new PositionMonitor(config.monitoring, bars, config.timeframes);
  }

  /** Takes a tick; returns a scan when the tick's time reaches the next one. */
  onTick(tick: Pick<Tick, "symbol" | "close" | "timestamp">): MarketScan | undefined {
    this.context.observe(tick.symbol, tick.close, tick.timestamp);
    if (this.nextScan === undefined)
      this.nextScan = tick.timestamp - (tick.timestamp % this.intervalMs) + this.intervalMs;
    if (tick.timestamp < this.nextScan) return undefined;
    this.nextScan = tick.timestamp - (tick.timestamp % this.intervalMs) + this.intervalMs;
    return this.scan(tick.timestamp);
  }

  /** Ranks the universe and computes the context at `now` (epoch ms). */
  scan(now: number): MarketScan {
    const started = performance.now();
    const candidates = this.screener.run(this.context.symbols(), (s) => this.context.price(s), now);
    const context = this.context.run(now);
    return { candidates, context, seconds: (performance.now() - started) / 1000 };
  }

  /**
   * Monitoring documents of the `changed` symbols (opened, marked or closed since the last call)
   * that are still held, and those of them no longer held (their documents go). `positionsOf`
   * gives a symbol's open positions. Work grows with the symbols that ticked, not with every
   * position held.
   */
  monitoring(
    changed: Iterable<string>,
    positionsOf: (symbol: string) => readonly OpenPosition[],
  ): { documents: MonitoringDocument[]; gone: string[] } {
    const documents: MonitoringDocument[] = [];
    const gone: string[] = [];
    for (const symbol of changed) {
      const held = positionsOf(symbol);
      if (held.length === 0) {
        if (this.monitored.delete(symbol)) gone.push(symbol);
        continue;
      }
      // Rebuilt when a position opens or closes, else at most once per MONITORING_INTERVAL_MS of
      // tick time: a window every few ms must not rebuild hundreds of documents each time.
      let latest = Number.NEGATIVE_INFINITY;
      let ids = "";
      for (const p of held) {
        latest = Math.max(latest, p.last_timestamp);
        ids += `${p.trade_id};`;
      }
      const key = `${ids}@${Math.floor(latest / MONITORING_INTERVAL_MS)}`;
      if (this.monitored.get(symbol) === key) continue;
      this.monitored.set(symbol, key);
      const document = this.monitor.document(symbol, held, latest);
      if (document) documents.push(document);
    }
    return { documents, gone };
  }
}
