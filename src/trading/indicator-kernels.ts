/**
 * The arithmetic of the indicators VELOX computes per tick, on state kept in one Float64Array.
 *
 * Each indicator's state is a run of slots: a `…Slots` function appends them to a layout under
 * construction and returns where they start; its `…Add` function feeds one value into them. An
 * IndicatorSet (./indicators.ts) lays out all of a symbol's indicators in one array, so a tick
 * touches a few adjacent cache lines, where an object per indicator (and its smoothing, its ring)
 * spread one symbol over some twenty objects, each a cache miss once hundreds of symbols take
 * turns. A value that is not ready yet is NaN.
 *
 * Each does what trading-signals 8 does, operation for operation, so the results are the same
 * doubles (test/unit/indicator-kernels.test.ts feeds both the same series and compares every
 * value with `Object.is`). The library stays the reference for the conventions; its objects
 * allocate per update.
 *
 * Slots:
 * - EMA: k, last, seen, period (4);
 * - Wilder's smoothing: factor, sum, seen, last, period (5);
 * - RSI: previous, seen, period, then the gain's and the loss's smoothing (3 + 5 + 5);
 * - ATR: previous close, seen, then its smoothing (2 + 5);
 * - MACD: the fast, slow and signal EMAs, then macd, signal, histogram (12 + 3);
 * - Bollinger: next, seen, period, deviations, upper, lower, then the ring of closes (6 + period).
 */

/** An EMA seeded with the first value: `x·k + previous·(1 − k)`, `k = 2 / (period + 1)`. */
export function emaSlots(slots: number[], period: number): number {
  const at = slots.length;
  slots.push(2 / (period + 1), 0, 0, period);
  return at;
}

/**
 * Wilder's smoothing: the simple mean of the first `period` values, then
 * `(x − previous) · (1 / period) + previous`.
 */
export function wilderSlots(slots: number[], period: number): number {
  const at = slots.length;
  slots.push(1 / period, 0, 0, 0, period);
  return at;
}

/**
 * Wilder's RSI. Like the library it keeps the last `period` closes and needs two of them, so an
 * RSI of period 1 never reports.
 */
export function rsiSlots(slots: number[], period: number): number {
  const at = slots.length;
  slots.push(0, 0, period);
  wilderSlots(slots, period);
  wilderSlots(slots, period);
  return at;
}

/** Wilder's ATR: the first true range is high − low, then the largest of the three ranges. */
export function atrSlots(slots: number[], period: number): number {
  const at = slots.length;
  slots.push(0, 0);
  wilderSlots(slots, period);
  return at;
}

/** MACD: fast EMA − slow EMA from the slow period's close on, and an EMA of those values. */
export function macdSlots(slots: number[], fast: number, slow: number, signal: number): number {
  const at = emaSlots(slots, fast);
  emaSlots(slots, slow);
  emaSlots(slots, signal);
  slots.push(0, 0, 0);
  return at;
}

/** Where a MACD's and a Bollinger's results sit, from the start of their slots. */
export const MACD_SLOT = { signalEma: 8, macd: 12, signal: 13, histogram: 14 } as const;
export const BOLLINGER_SLOT = { upper: 4, lower: 5 } as const;

/** Bollinger Bands over the last `period` closes: mean ± `deviations` population standard deviations. */
export function bollingerSlots(slots: number[], period: number, deviations: number): number {
  const at = slots.length;
  slots.push(0, 0, period, deviations, 0, 0);
  for (let i = 0; i < period; i++) slots.push(0);
  return at;
}

/** EMA at `at`: feeds one value and returns the average (ready once `seen` reaches `period`). */
export function emaAdd(s: Float64Array, at: number, x: number): number {
  const k = s[at] as number;
  const previous = s[at + 2] === 0 ? x : (s[at + 1] as number);
  s[at + 2] = (s[at + 2] as number) + 1;
  const last = x * k + previous * (1 - k);
  s[at + 1] = last;
  return last;
}

/** Whether the EMA at `at` has seen `period` values (the library's `isStable`). */
export function emaReady(s: Float64Array, at: number): boolean {
  return (s[at + 2] as number) >= (s[at + 3] as number);
}

/** Wilder's smoothing at `at`: the new average, or NaN before the first mean. */
export function wilderAdd(s: Float64Array, at: number, x: number): number {
  const period = s[at + 4] as number;
  if ((s[at + 2] as number) >= period) {
    const last = s[at + 3] as number;
    const next = (x - last) * (s[at] as number) + last;
    s[at + 3] = next;
    return next;
  }
  s[at + 1] = (s[at + 1] as number) + x;
  const seen = (s[at + 2] as number) + 1;
  s[at + 2] = seen;
  if (seen < period) return Number.NaN;
  const mean = (s[at + 1] as number) / period;
  s[at + 3] = mean;
  return mean;
}

/** RSI at `at`, or NaN while not ready. */
export function rsiAdd(s: Float64Array, at: number, close: number): number {
  const previous = s[at] as number;
  s[at] = close;
  const period = s[at + 2] as number;
  if ((s[at + 1] as number) < period) s[at + 1] = (s[at + 1] as number) + 1;
  if ((s[at + 1] as number) < 2) return Number.NaN;
  let gain: number;
  let loss: number;
  if (close > previous) {
    loss = wilderAdd(s, at + 8, 0);
    gain = wilderAdd(s, at + 3, close - previous);
  } else {
    loss = wilderAdd(s, at + 8, previous - close);
    gain = wilderAdd(s, at + 3, 0);
  }
  if (Number.isNaN(gain) || Number.isNaN(loss)) return Number.NaN;
  if (loss === 0) return 100;
  return 100 - 100 / (gain / loss + 1);
}

/** ATR at `at`, or NaN while not ready. */
export function atrAdd(s: Float64Array, at: number, high: number, low: number, close: number): number {
  const highLow = high - low;
  const previousClose = s[at] as number;
  const range =
    s[at + 1] === 1
      ? Math.max(highLow, Math.abs(high - previousClose), Math.abs(low - previousClose))
      : highLow;
  s[at + 1] = 1;
  s[at] = close;
  return wilderAdd(s, at + 2, range);
}

/** MACD at `at`: true when its three values (MACD_SLOT) hold this close's. */
export function macdAdd(s: Float64Array, at: number, close: number): boolean {
  const fast = emaAdd(s, at, close);
  const slow = emaAdd(s, at + 4, close);
  if (!emaReady(s, at + 4)) return false;
  const macd = fast - slow;
  const signal = emaAdd(s, at + MACD_SLOT.signalEma, macd);
  s[at + MACD_SLOT.macd] = macd;
  s[at + MACD_SLOT.signal] = signal;
  s[at + MACD_SLOT.histogram] = macd - signal;
  return true;
}

/** Bollinger Bands at `at`: true when upper and lower (BOLLINGER_SLOT) hold this close's bands. */
export function bollingerAdd(s: Float64Array, at: number, close: number): boolean {
  const period = s[at + 2] as number;
  const ring = at + 6;
  let next = s[at] as number;
  s[ring + next] = close;
  next = next + 1 === period ? 0 : next + 1;
  s[at] = next;
  if ((s[at + 1] as number) < period) s[at + 1] = (s[at + 1] as number) + 1;
  if ((s[at + 1] as number) < period) return false;
  // Oldest to newest, as the library sums its array: the same rounding, the same doubles.
  let sum = 0;
  for (let i = next; i < period; i++) sum += s[ring + i] as number;
  for (let i = 0; i < next; i++) sum += s[ring + i] as number;
  const middle = sum / period;
  let squares = 0;
  for (let i = next; i < period; i++) {
    const d = (s[ring + i] as number) - middle;
    squares += d * d;
  }
  for (let i = 0; i < next; i++) {
    const d = (s[ring + i] as number) - middle;
    squares += d * d;
  }
  const deviation = Math.sqrt(squares / period);
  const deviations = s[at + 3] as number;
  s[at + BOLLINGER_SLOT.lower] = middle - deviation * deviations;
  s[at + BOLLINGER_SLOT.upper] = middle + deviation * deviations;
  return true;
}

/** The bar fields ATR reads. */
export interface Candle {
  high: number;
  low: number;
  close: number;
}

/**
 * Supertrend: basic bands at the median price ± `multiplier` ATRs (Wilder's, over `period`
 * bars); the final bands only tighten while the trend holds; up while the close stays at or
 * above the lower band, down while it stays at or below the upper band.
 */
export class SupertrendKernel {
  /** Its ATR's slots (atrSlots at 0). */
  private readonly atrState: Float64Array;
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
    const slots: number[] = [];
    atrSlots(slots, period);
    this.atrState = Float64Array.from(slots);
  }

  /** Feeds one bar; true when `atr`, `line` and `up` hold this bar's values. */
  add(candle: Candle): boolean {
    const atr = atrAdd(this.atrState, 0, candle.high, candle.low, candle.close);
    if (Number.isNaN(atr)) return false;
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
