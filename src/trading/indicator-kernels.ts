/**
 * Wilder's smoothing, ATR and the Supertrend as plain numbers in fixed-size state, for the
 * Supertrend strategy (its bars' ATR and bands).
 *
 * Each kernel does what trading-signals 8 does, operation for operation, so the results are the
 * same doubles (test/unit/indicator-kernels.test.ts feeds both the same series and compares every
 * value with `Object.is`). The library stays the reference for the conventions; this file exists
 * because the library's objects allocate per update and spread one symbol's state over dozens of
 * objects. The per-tick indicator set (./indicators.ts) does the same arithmetic in one array.
 */

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
