import { ValidationError } from "../domain/errors.js";
import type { Tick } from "../domain/tick.js";
import { AtrKernel, BollingerKernel, EmaKernel, MacdKernel, RsiKernel } from "./indicator-kernels.js";

/**
 * Incremental technical indicators, one IndicatorSet per symbol, with the conventions of
 * trading-signals (computed by ./indicator-kernels.ts, which gives the library's doubles). Each
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

/** The indicators of one symbol. */
export class IndicatorSet {
  private readonly rsi: [string, RsiKernel][];
  private readonly ema: [string, EmaKernel][];
  private readonly atr: [string, AtrKernel][];
  private readonly macd: MacdKernel;
  private readonly bollinger: BollingerKernel;
  private latest: IndicatorValues = {};
  /** How many names an update gives once every indicator is ready. */
  private readonly names: number;
  /**
   * The first result with every indicator in it. Later results are copies of it with their own
   * values: a copy keeps its shape, where adding the names one by one to an empty object
   * rebuilds it on every tick (what the profile showed as the largest cost of `update`).
   */
  private shape: IndicatorValues | undefined;

  constructor(readonly config: IndicatorConfig = DEFAULT_INDICATOR_CONFIG) {
    validate(config);
    this.rsi = config.rsi.map((p) => [indicatorName.rsi(p), new RsiKernel(p)]);
    this.ema = config.ema.map((p) => [indicatorName.ema(p), new EmaKernel(p)]);
    this.atr = config.atr.map((p) => [indicatorName.atr(p), new AtrKernel(p)]);
    this.macd = new MacdKernel(config.macd.fast, config.macd.slow, config.macd.signal);
    this.bollinger = new BollingerKernel(config.bollinger.period, config.bollinger.stdDev);
    this.names = config.rsi.length + config.ema.length + config.atr.length + 3 + 3;
  }

  /** Feeds one bar and returns every indicator that is ready after it. */
  update(tick: Pick<Tick, "high" | "low" | "close">): IndicatorValues {
    const { close } = tick;
    const values: IndicatorValues = this.shape ? { ...this.shape } : {};
    for (const [name, rsi] of this.rsi) put(values, name, rsi.add(close));
    for (const [name, ema] of this.ema) {
      const value = ema.add(close);
      if (ema.ready) put(values, name, value);
    }
    for (const [name, atr] of this.atr) put(values, name, atr.add(tick));
    const macd = this.macd;
    if (macd.add(close)) {
      put(values, indicatorName.macd, macd.macd);
      if (macd.signalReady) {
        put(values, indicatorName.macdSignal, macd.signal);
        put(values, indicatorName.macdHistogram, macd.histogram);
      }
    }
    const bands = this.bollinger;
    if (bands.add(close)) {
      put(values, indicatorName.bollingerUpper, bands.upper);
      put(values, indicatorName.bollingerLower, bands.lower);
      put(values, indicatorName.bollingerWidth, bands.upper - bands.lower);
    }
    if (this.shape === undefined && count(values) === this.names) this.shape = values;
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

  constructor(readonly config: IndicatorConfig = DEFAULT_INDICATOR_CONFIG) {
    validate(config);
    this.periodMap = indicatorPeriods(config);
  }

  update(tick: Pick<Tick, "symbol" | "high" | "low" | "close">): IndicatorValues {
    let set = this.sets.get(tick.symbol);
    if (!set) {
      set = new IndicatorSet(this.config);
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
