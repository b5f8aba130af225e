import { ValidationError } from "../domain/errors.js";
import type { Tick } from "../domain/tick.js";
import {
  atrAdd,
  atrSlots,
  BOLLINGER_SLOT,
  bollingerAdd,
  bollingerSlots,
  emaAdd,
  emaReady,
  emaSlots,
  MACD_SLOT,
  macdAdd,
  macdSlots,
  rsiAdd,
  rsiSlots,
} from "./indicator-kernels.js";

/**
 * Incremental technical indicators, one IndicatorSet per symbol, with the conventions of
 * trading-signals and its doubles, operation for operation (test/unit/indicator-kernels.test.ts
 * compares every value with `Object.is`). Each
 * tick is treated as one bar: its close feeds RSI, EMA, MACD and the Bollinger Bands, its
 * high/low/close feed ATR. `update` returns only the indicators that have seen enough bars.
 *
 * Conventions of the library, which the reference tests pin down:
 * - RSI and ATR use Wilder's smoothing seeded with the simple average of the first `period` values
 *   (RSI needs period + 1 closes, ATR `period` bars; the first bar's true range is high − low).
 * - EMA is seeded with the first close (not with an SMA, as TA-Lib does) and is reported once it
 *   has seen `period` closes; early values therefore still carry some weight of that first close.
 * - MACD = EMA(fast) − EMA(slow) from the slow period's close on; its signal line is an EMA of the
 *   MACD values and is reported (with the histogram) once it has seen `signal` of them.
 * - Bollinger Bands use the population standard deviation of the last `period` closes;
 *   `bollinger_width` is upper − lower, in price units (the seed's width 4.0 for 152.5 / 148.5).
 */

/** Indicator name → value, e.g. `{ rsi_14: 28.4, ema_20: 101.2 }`. Only ready indicators appear. */
export type IndicatorValues = Record<string, number>;

export interface MacdSettings {
  fast: number;
  slow: number;
  signal: number;
}

export interface BollingerSettings {
  period: number;
  /** Width of the bands in standard deviations. */
  stdDev: number;
}

export interface IndicatorConfig {
  rsi: readonly number[];
  ema: readonly number[];
  atr: readonly number[];
  macd: MacdSettings;
  bollinger: BollingerSettings;
}

/** Extra periods a consumer (a strategy, a trailing stop) needs on top of the defaults. */
export interface IndicatorRequest {
  rsi?: readonly number[];
  ema?: readonly number[];
  atr?: readonly number[];
}

export const DEFAULT_INDICATOR_CONFIG: IndicatorConfig = {
  rsi: [14],
  ema: [20],
  atr: [14],
  macd: { fast: 12, slow: 26, signal: 9 },
  bollinger: { period: 20, stdDev: 2 },
};

export const indicatorName = {
  rsi: (period: number) => `rsi_${period}`,
  ema: (period: number) => `ema_${period}`,
  atr: (period: number) => `atr_${period}`,
  macd: "macd",
  macdSignal: "macd_signal",
  macdHistogram: "macd_histogram",
  bollingerUpper: "bollinger_upper",
  bollingerLower: "bollinger_lower",
  bollingerWidth: "bollinger_width",
} as const;

/** `base` plus every period the requests ask for (sorted, without duplicates). */
export function mergeIndicatorConfig(
  base: IndicatorConfig,
  ...requests: readonly (IndicatorRequest | undefined)[]
): IndicatorConfig {
  const union = (own: readonly number[], pick: (r: IndicatorRequest) => readonly number[] | undefined) =>
    [...new Set([...own, ...requests.flatMap((r) => (r ? (pick(r) ?? []) : []))])].sort((a, b) => a - b);
  return {
    ...base,
    rsi: union(base.rsi, (r) => r.rsi),
    ema: union(base.ema, (r) => r.ema),
    atr: union(base.atr, (r) => r.atr),
  };
}

function checkPeriod(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1) throw new ValidationError(field, "must be a whole number >= 1");
  return value;
}

function validate(config: IndicatorConfig): void {
  for (const [i, p] of config.rsi.entries()) checkPeriod(p, `indicators.rsi[${i}]`);
  for (const [i, p] of config.ema.entries()) checkPeriod(p, `indicators.ema[${i}]`);
  for (const [i, p] of config.atr.entries()) checkPeriod(p, `indicators.atr[${i}]`);
  checkPeriod(config.macd.fast, "indicators.macd.fast");
  checkPeriod(config.macd.slow, "indicators.macd.slow");
  checkPeriod(config.macd.signal, "indicators.macd.signal");
  if (config.macd.fast >= config.macd.slow) {
    throw new ValidationError("indicators.macd.fast", "must be below indicators.macd.slow");
  }
  checkPeriod(config.bollinger.period, "indicators.bollinger.period");
  if (!(config.bollinger.stdDev > 0)) throw new ValidationError("indicators.bollinger.stdDev", "must be > 0");
}

/**
 * The `period` recorded with each indicator in InfluxDB. The MACD family has no single period
 * (fast/slow/signal), so it carries none.
 */
export function indicatorPeriods(config: IndicatorConfig): Record<string, number> {
  const periods: Record<string, number> = {};
  for (const p of config.rsi) periods[indicatorName.rsi(p)] = p;
  for (const p of config.ema) periods[indicatorName.ema(p)] = p;
  for (const p of config.atr) periods[indicatorName.atr(p)] = p;
  periods[indicatorName.bollingerUpper] = config.bollinger.period;
  periods[indicatorName.bollingerLower] = config.bollinger.period;
  periods[indicatorName.bollingerWidth] = config.bollinger.period;
  return periods;
}

/** Sets `name` when the indicator gave a finite value, and removes it when not. */
function put(values: IndicatorValues, name: string, value: number | undefined): void {
  if (value !== undefined && Number.isFinite(value)) values[name] = value;
  else if (name in values) delete values[name];
}

function count(values: IndicatorValues): number {
  let n = 0;
  for (const _ in values) n++;
  return n;
}

/**
 * Where each indicator's state sits in a set's one Float64Array (see {@link IndicatorSet}), with
 * its name: the same for every set of one configuration, so a book builds it once. The slots
 * and their arithmetic are ./indicator-kernels.ts's.
 */
class IndicatorLayout {
  readonly rsi: readonly (readonly [string, number])[];
  readonly ema: readonly (readonly [string, number])[];
  readonly atr: readonly (readonly [string, number])[];
  readonly macd: number;
  readonly bollinger: number;
  /** The state of a set that has seen nothing. */
  readonly initial: Float64Array;
  /** How many names an update gives once every indicator is ready. */
  readonly names: number;

  constructor(readonly config: IndicatorConfig) {
    validate(config);
    const slots: number[] = [];
    this.rsi = config.rsi.map((p) => [indicatorName.rsi(p), rsiSlots(slots, p)] as const);
    this.ema = config.ema.map((p) => [indicatorName.ema(p), emaSlots(slots, p)] as const);
    this.atr = config.atr.map((p) => [indicatorName.atr(p), atrSlots(slots, p)] as const);
    this.macd = macdSlots(slots, config.macd.fast, config.macd.slow, config.macd.signal);
    this.bollinger = bollingerSlots(slots, config.bollinger.period, config.bollinger.stdDev);
    this.initial = Float64Array.from(slots);
    this.names = config.rsi.length + config.ema.length + config.atr.length + 3 + 3;
  }
}

/**
 * The indicators of one symbol. Their state is one Float64Array laid out by an
 * {@link IndicatorLayout}: a tick reads and writes a few adjacent cache lines, where a kernel
 * object per indicator (and its smoothing, its ring) spread one symbol over some twenty objects,
 * each a cache miss once hundreds of symbols take turns.
 */
export class IndicatorSet {
  private readonly layout: IndicatorLayout;
  private readonly state: Float64Array;
  private latest: IndicatorValues = {};
  /**
   * The first result with every indicator in it. Later results are copies of it with their own
   * values: a copy keeps its shape, where adding the names one by one to an empty object
   * rebuilds it on every tick (what the profile showed as the largest cost of `update`).
   */
  private shape: IndicatorValues | undefined;

  constructor(config: IndicatorConfig | IndicatorLayout = DEFAULT_INDICATOR_CONFIG) {
    this.layout = config instanceof IndicatorLayout ? config : new IndicatorLayout(config);
    this.state = this.layout.initial.slice();
  }

  get config(): IndicatorConfig {
    return this.layout.config;
  }

  /** Feeds one bar and returns every indicator that is ready after it. */
  update(tick: Pick<Tick, "high" | "low" | "close">): IndicatorValues {
    const { close } = tick;
    const s = this.state;
    const layout = this.layout;
    const values: IndicatorValues = this.shape ? { ...this.shape } : {};
    for (const [name, at] of layout.rsi) put(values, name, rsiAdd(s, at, close));
    for (const [name, at] of layout.ema) {
      const value = emaAdd(s, at, close);
      if (emaReady(s, at)) put(values, name, value);
    }
    for (const [name, at] of layout.atr) put(values, name, atrAdd(s, at, tick.high, tick.low, close));
    const m = layout.macd;
    if (macdAdd(s, m, close)) {
      put(values, indicatorName.macd, s[m + MACD_SLOT.macd]);
      if (emaReady(s, m + MACD_SLOT.signalEma)) {
        put(values, indicatorName.macdSignal, s[m + MACD_SLOT.signal]);
        put(values, indicatorName.macdHistogram, s[m + MACD_SLOT.histogram]);
      }
    }
    const b = layout.bollinger;
    if (bollingerAdd(s, b, close)) {
      const upper = s[b + BOLLINGER_SLOT.upper] as number;
      const lower = s[b + BOLLINGER_SLOT.lower] as number;
      put(values, indicatorName.bollingerUpper, upper);
      put(values, indicatorName.bollingerLower, lower);
      put(values, indicatorName.bollingerWidth, upper - lower);
    }
    if (this.shape === undefined && count(values) === layout.names) this.shape = values;
    this.latest = values;
    return values;
  }

  /** What the last `update` returned. */
  values(): IndicatorValues {
    return { ...this.latest };
  }

  periods(): Record<string, number> {
    return indicatorPeriods(this.config);
  }
}

/** One IndicatorSet per symbol, created on the symbol's first tick. */
export class IndicatorBook {
  private readonly sets = new Map<string, IndicatorSet>();
  private readonly periodMap: Record<string, number>;
  private readonly layout: IndicatorLayout;

  constructor(readonly config: IndicatorConfig = DEFAULT_INDICATOR_CONFIG) {
    this.layout = new IndicatorLayout(config);
    this.periodMap = indicatorPeriods(config);
  }

  update(tick: Pick<Tick, "symbol" | "high" | "low" | "close">): IndicatorValues {
    let set = this.sets.get(tick.symbol);
    if (!set) {
      set = new IndicatorSet(this.layout);
      this.sets.set(tick.symbol, set);
    }
    return set.update(tick);
  }

  /** The latest values of a symbol (empty before its first tick). */
  values(symbol: string): IndicatorValues {
    return this.sets.get(symbol)?.values() ?? {};
  }

  periods(): Record<string, number> {
    return { ...this.periodMap };
  }

  symbols(): string[] {
    return [...this.sets.keys()];
  }
}
