/**
 * The arithmetic of the indicators VELOX computes per tick, as plain numbers in fixed-size state.
 *
 * Each kernel does what trading-signals 8 does, operation for operation, so the results are the
 * same doubles (test/unit/indicator-kernels.test.ts feeds both the same series and compares every
 * value with `Object.is`). The library stays the reference for the conventions; this file exists
 * because the tick path calls it ten times per tick and symbol: the library's objects allocate
 * per update (a result object, two arrays per Bollinger update, a signal state) and spread one
 * symbol's state over dozens of objects, which is what the profile and the 500-symbol run showed.
 */

/** An EMA seeded with the first value: `x·k + previous·(1 − k)`, `k = 2 / (period + 1)`. */
export class EmaKernel {
  private readonly k: number;
  private last = 0;
  private seen = 0;

  constructor(readonly period: number) {
    this.k = 2 / (period + 1);
  }

  /** Feeds one value and returns the average (even before `period` values: see `ready`). */
  add(x: number): number {
    const previous = this.seen === 0 ? x : this.last;
    this.seen++;
    this.last = x * this.k + previous * (1 - this.k);
    return this.last;
  }

  /** Whether it has seen `period` values (the library's `isStable`). */
  get ready(): boolean {
    return this.seen >= this.period;
  }
}

/**
 * Wilder's smoothing: the simple mean of the first `period` values, then
 * `(x − previous) · (1 / period) + previous`. `undefined` until the first mean.
 */
export class WilderKernel {
  private readonly factor: number;
  private sum = 0;
  private seen = 0;
  private last = 0;

  constructor(readonly period: number) {
    this.factor = 1 / period;
  }

  add(x: number): number | undefined {
    if (this.seen >= this.period) {
      this.last = (x - this.last) * this.factor + this.last;
      return this.last;
    }
    this.sum += x;
    if (++this.seen < this.period) return undefined;
    this.last = this.sum / this.period;
    return this.last;
  }
}

/**
 * Wilder's RSI. Like the library it keeps the last `period` closes and needs two of them, so an
 * RSI of period 1 never reports.
 */
export class RsiKernel {
  private readonly gain: WilderKernel;
  private readonly loss: WilderKernel;
  private previous = 0;
  private seen = 0;

  constructor(readonly period: number) {
    this.gain = new WilderKernel(period);
    this.loss = new WilderKernel(period);
  }

  add(close: number): number | undefined {
    const previous = this.previous;
    this.previous = close;
    if (this.seen < this.period) this.seen++;
    if (this.seen < 2) return undefined;
    let gain: number | undefined;
    let loss: number | undefined;
    if (close > previous) {
      loss = this.loss.add(0);
      gain = this.gain.add(close - previous);
    } else {
      loss = this.loss.add(previous - close);
      gain = this.gain.add(0);
    }
    if (gain === undefined || loss === undefined) return undefined;
    if (loss === 0) return 100;
    return 100 - 100 / (gain / loss + 1);
  }
}

/** The bar fields ATR reads. */
export interface Candle {
  high: number;
  low: number;
  close: number;
}

/** Wilder's ATR: the first true range is high − low, then the largest of the three ranges. */
export class AtrKernel {
  private readonly smoothing: WilderKernel;
  private previousClose = 0;
  private seen = false;

  constructor(readonly period: number) {
    this.smoothing = new WilderKernel(period);
  }

  add(candle: Candle): number | undefined {
    const { high, low } = candle;
    const highLow = high - low;
    const range = this.seen
      ? Math.max(highLow, Math.abs(high - this.previousClose), Math.abs(low - this.previousClose))
      : highLow;
    this.seen = true;
    this.previousClose = candle.close;
    return this.smoothing.add(range);
  }
}

/** MACD: fast EMA − slow EMA from the slow period's close on, and an EMA of those values. */
export class MacdKernel {
  private readonly fast: EmaKernel;
  private readonly slow: EmaKernel;
  private readonly signalEma: EmaKernel;
  /** The last values, valid when `add` returned true. */
  macd = 0;
  signal = 0;
  histogram = 0;

  constructor(fast: number, slow: number, signal: number) {
    this.fast = new EmaKernel(fast);
    this.slow = new EmaKernel(slow);
    this.signalEma = new EmaKernel(signal);
  }

  /** Feeds one close; true when `macd`, `signal` and `histogram` hold this close's values. */
  add(close: number): boolean {
    const fast = this.fast.add(close);
    const slow = this.slow.add(close);
    if (!this.slow.ready) return false;
    this.macd = fast - slow;
    this.signal = this.signalEma.add(this.macd);
    this.histogram = this.macd - this.signal;
    return true;
  }

  /** Whether the signal line has seen `signal` MACD values (before, it still carries its seed). */
  get signalReady(): boolean {
    return this.signalEma.ready;
  }
}

/** Bollinger Bands over the last `period` closes: mean ± `deviations` population standard deviations. */
export class BollingerKernel {
  /** The last `period` closes, a ring: `next` is the oldest once it is full. */
  private readonly closes: Float64Array;
  private next = 0;
  private seen = 0;
  upper = 0;
  lower = 0;

  constructor(
    readonly period: number,
    private readonly deviations: number,
  ) {
    this.closes = new Float64Array(period);
  }

  /** Feeds one close; true when `upper` and `lower` hold this close's bands. */
  add(close: number): boolean {
    const { closes, period } = this;
    closes[this.next] = close;
    this.next = this.next + 1 === period ? 0 : this.next + 1;
    if (this.seen < period) this.seen++;
    if (this.seen < period) return false;
    // Oldest to newest, as the library sums its array: the same rounding, the same doubles.
    let sum = 0;
    for (let i = this.next; i < period; i++) sum += closes[i] as number;
    for (let i = 0; i < this.next; i++) sum += closes[i] as number;
    const middle = sum / period;
    let squares = 0;
    for (let i = this.next; i < period; i++) {
      const d = (closes[i] as number) - middle;
      squares += d * d;
    }
    for (let i = 0; i < this.next; i++) {
      const d = (closes[i] as number) - middle;
      squares += d * d;
    }
    const deviation = Math.sqrt(squares / period);
    this.lower = middle - deviation * this.deviations;
    this.upper = middle + deviation * this.deviations;
    return true;
  }
}

/**
 * Supertrend: basic bands at the median price ± `multiplier` ATRs (Wilder's, over `period`
 * bars); the final bands only tighten while the trend holds; up while the close stays at or
 * above the lower band, down while it stays at or below the upper band.
 */
export class SupertrendKernel {
  private readonly atrKernel: AtrKernel;
  private started = false;
  private previousClose = 0;
  private upperBand = 0;
  private lowerBand = 0;
  /** The last values, valid when `add` returned true. */
  atr = 0;
  /** The Supertrend line: the lower band in an up trend, the upper band in a down trend. */
  line = 0;
  up = false;

  constructor(
    readonly period: number,
    private readonly multiplier: number,
  ) {
    this.atrKernel = new AtrKernel(period);
  }

  /** Feeds one bar; true when `atr`, `line` and `up` hold this bar's values. */
  add(candle: Candle): boolean {
    const atr = this.atrKernel.add(candle);
    if (atr === undefined) return false;
    const median = (candle.high + candle.low) / 2;
    const basicUpper = median + this.multiplier * atr;
    const basicLower = median - this.multiplier * atr;
    const { close } = candle;
    if (!this.started) {
      this.started = true;
      this.upperBand = basicUpper;
      this.lowerBand = basicLower;
      this.up = close > basicUpper;
    } else {
      const upper =
        basicUpper < this.upperBand || this.previousClose > this.upperBand ? basicUpper : this.upperBand;
      const lower =
        basicLower > this.lowerBand || this.previousClose < this.lowerBand ? basicLower : this.lowerBand;
      this.up = this.up ? close >= lower : close > upper;
      this.upperBand = upper;
      this.lowerBand = lower;
    }
    this.previousClose = close;
    this.atr = atr;
    this.line = this.up ? this.lowerBand : this.upperBand;
    return true;
  }
}
