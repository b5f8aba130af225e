import { ValidationError } from "../domain/errors.js";
import type { Tick } from "../domain/tick.js";

/**
 * OHLCV bars per symbol and timeframe, aggregated from ticks on event time: a bar covers
 * [start, start + length) of tick timestamps, buckets aligned to the epoch (a 5 m bar starts at
 * :00, :05, …). A bar closes when the first tick of a later bucket of its symbol arrives, so a
 * replay and a live run close the same bars; the bar still open at the end of a run is not
 * reported (it is not complete).
 *
 * Each tick is one print: its close is the bar's price path, its volume adds to the bar's. The
 * bar's high and low come from the ticks' own high and low (a tick may itself be a small bar).
 */

/** A timeframe as written in the configuration and in indicator names: `30s`, `1m`, `5m`, `1h`. */
export type Timeframe = string;
export const TIMEFRAME_PATTERN = /^([1-9]\d{0,3})(s|m|h)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Milliseconds of a timeframe; throws ValidationError for anything not matching TIMEFRAME_PATTERN. */
export function timeframeMs(timeframe: Timeframe): number {
  const m = TIMEFRAME_PATTERN.exec(timeframe);
  if (!m)
    throw new ValidationError(
      "timeframe",
      `must look like 30s, 1m, 5m or 1h, got ${JSON.stringify(timeframe)}`,
    );
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

export interface Bar {
  symbol: string;
  timeframe: Timeframe;
  /** Epoch ms of the bucket's start (inclusive). */
  start: number;
  /** Epoch ms of the bucket's end (exclusive): the bar's timestamp in the stores. */
  end: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** Ticks aggregated into the bar. */
  ticks: number;
}

/** The bars of one timeframe, for every symbol. */
export class BarAggregator {
  readonly lengthMs: number;
  private readonly open = new Map<string, Bar>();

  constructor(readonly timeframe: Timeframe) {
    this.lengthMs = timeframeMs(timeframe);
  }

  /**
   * Adds a tick to its symbol's bar. Returns the bar this tick closed (the symbol's previous
   * bucket), or undefined. A tick older than the open bar's bucket (out of order) is folded into
   * the open bar: bars never reopen.
   */
  update(
    tick: Pick<Tick, "symbol" | "timestamp" | "open" | "high" | "low" | "close" | "volume">,
  ): Bar | undefined {
    const start = tick.timestamp - (tick.timestamp % this.lengthMs);
    const bar = this.open.get(tick.symbol);
    if (bar && start <= bar.start) {
      if (tick.high > bar.high) bar.high = tick.high;
      if (tick.low < bar.low) bar.low = tick.low;
      bar.close = tick.close;
      bar.volume += tick.volume;
      bar.ticks++;
      return undefined;
    }
    this.open.set(tick.symbol, {
      symbol: tick.symbol,
      timeframe: this.timeframe,
      start,
      end: start + this.lengthMs,
      open: tick.open,
      high: tick.high,
      low: tick.low,
      close: tick.close,
      volume: tick.volume,
      ticks: 1,
    });
    return bar;
  }

  /** The bar still open for a symbol (a copy), if any. */
  current(symbol: string): Bar | undefined {
    const bar = this.open.get(symbol);
    return bar ? { ...bar } : undefined;
  }
}
