import { type Bar, BarAggregator, type Timeframe } from "./bars.js";
import {
  DEFAULT_INDICATOR_CONFIG,
  IndicatorBook,
  type IndicatorConfig,
  type IndicatorValues,
} from "./indicators.js";

/**
 * Bars and indicators per timeframe: each configured timeframe aggregates the ticks into bars
 * (BarAggregator) and feeds every closed bar to its own IndicatorBook, with the same indicator
 * settings as the tick book. Values are reported under the timeframe's name too (`rsi_14_1m`,
 * `macd_5m`): that is how they are cached and written to InfluxDB, next to the tick indicators.
 * The last few closed bars per symbol are kept for the screener and the monitoring figures.
 */

/** `rsi_14` on 1 m bars is `rsi_14_1m`. */
export function timeframeIndicatorName(name: string, timeframe: Timeframe): string {
  return `${name}_${timeframe}`;
}

export interface ClosedBar {
  bar: Bar;
  /** The bar's indicators under their plain names (what a bar strategy reads). */
  values: IndicatorValues;
  /** The same values named with the timeframe (`rsi_14_1m`), for the stores. */
  named: IndicatorValues;
}

interface SymbolFrame {
  /** Closed bars, oldest first, at most `keep`. */
  bars: Bar[];
  values: IndicatorValues;
  previous: IndicatorValues;
}

class TimeframeBook {
  readonly aggregator: BarAggregator;
  readonly indicators: IndicatorBook;
  readonly frames = new Map<string, SymbolFrame>();

  constructor(
    readonly timeframe: Timeframe,
    config: IndicatorConfig,
    private readonly keep: number,
  ) {
    this.aggregator = new BarAggregator(timeframe);
    this.indicators = new IndicatorBook(config);
  }

  update(tick: Parameters<BarAggregator["update"]>[0]): ClosedBar | undefined {
    const bar = this.aggregator.update(tick);
    if (!bar) return undefined;
    const values = this.indicators.update(bar);
    let frame = this.frames.get(bar.symbol);
    if (!frame) {
      frame = { bars: [], values: {}, previous: {} };
      this.frames.set(bar.symbol, frame);
    }
    frame.bars.push(bar);
    if (frame.bars.length > this.keep) frame.bars.shift();
    frame.previous = frame.values;
    frame.values = values;
    const named: IndicatorValues = {};
    for (const name in values) named[timeframeIndicatorName(name, this.timeframe)] = values[name] as number;
    return { bar, values, named };
  }
}

export class BarBook {
  private readonly books: TimeframeBook[];
  private readonly periodMap: Record<string, number>;

  /** `keep`: closed bars remembered per symbol and timeframe (the screener's look-back). */
  constructor(
    readonly timeframes: readonly Timeframe[],
    config: IndicatorConfig = DEFAULT_INDICATOR_CONFIG,
    keep = 50,
  ) {
    this.books = timeframes.map((tf) => new TimeframeBook(tf, config, Math.max(2, keep)));
    const plain = new IndicatorBook(config).periods();
    this.periodMap = {};
    for (const tf of timeframes) {
      for (const [name, period] of Object.entries(plain)) {
        this.periodMap[timeframeIndicatorName(name, tf)] = period;
      }
    }
  }

  /** Feeds a tick to every timeframe; returns the bars it closed (at most one per timeframe). */
  update(tick: Parameters<BarAggregator["update"]>[0]): readonly ClosedBar[] {
    let closed: ClosedBar[] | undefined;
    for (const book of this.books) {
      const c = book.update(tick);
      if (!c) continue;
      if (closed) closed.push(c);
      else closed = [c];
    }
    return closed ?? NONE;
  }

  /** Closed bars of a symbol on a timeframe, oldest first (empty before the first close). */
  bars(symbol: string, timeframe: Timeframe): readonly Bar[] {
    return this.frame(timeframe, symbol)?.bars ?? [];
  }

  /** The indicators of a symbol's last closed bar, and of the one before, on a timeframe. */
  values(symbol: string, timeframe: Timeframe): { latest: IndicatorValues; previous: IndicatorValues } {
    const frame = this.frame(timeframe, symbol);
    return { latest: frame?.values ?? {}, previous: frame?.previous ?? {} };
  }

  /** Every timeframe's latest values of a symbol, named with the timeframe. */
  named(symbol: string): IndicatorValues {
    const out: IndicatorValues = {};
    for (const book of this.books) {
      const values = book.frames.get(symbol)?.values;
      if (!values) continue;
      for (const name in values) out[timeframeIndicatorName(name, book.timeframe)] = values[name] as number;
    }
    return out;
  }

  /** Periods of the named values, for InfluxDB's `period` field. */
  periods(): Record<string, number> {
    return this.periodMap;
  }

  private frame(timeframe: Timeframe, symbol: string): SymbolFrame | undefined {
    return this.books.find((b) => b.timeframe === timeframe)?.frames.get(symbol);
  }
}

const NONE: ClosedBar[] = [];
