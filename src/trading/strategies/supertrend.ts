import { ValidationError } from "../../domain/errors.js";
import type { Signal } from "../../domain/signal.js";
import type { Tick } from "../../domain/tick.js";
import { SupertrendKernel } from "../indicator-kernels.js";
import { type IndicatorValues, indicatorName } from "../indicators.js";
import { type Strategy, type StrategyPosition, type SymbolSelection, signalFor } from "./strategy.js";

export interface SupertrendParams {
  /** ATR period of the bands. */
  atr_period: number;
  /** Band distance from the bar's median price, in ATRs. */
  multiplier: number;
}

export const SUPERTREND_DEFAULTS: SupertrendParams = { atr_period: 10, multiplier: 3 };

type Trend = "BULLISH" | "BEARISH";

interface SymbolState {
  supertrend: SupertrendKernel;
  trend: Trend | undefined;
  /** The Supertrend line of the previous bar: the band a flip breaks through. */
  line: number | undefined;
}

/**
 * Supertrend, long only: buy when the trend flips up, sell when it flips down.
 *
 * The bands are trading-signals' SuperTrend (basic bands at median ± multiplier × ATR, final
 * bands that only tighten while the trend holds, trend up while the close stays above the lower
 * band, down while it stays below the upper band), computed by SupertrendKernel, which gives the
 * library's values. Its ATR is Wilder's over `atr_period` bars and also scales the confidence.
 *
 *   confidence = 0.5 + 0.5 × |close − previous Supertrend line| / ATR
 *
 * i.e. 0.5 for a close just across the band, 1 for a break of one ATR or more.
 * The first bar with a value only sets the trend; signals need a change from one bar to the next.
 */
export class SupertrendStrategy implements Strategy {
  readonly type = "supertrend";
  readonly params: SupertrendParams;
  private readonly state = new Map<string, SymbolState>();
  private readonly atrName: string;

  constructor(
    readonly id: string,
    readonly symbols: SymbolSelection,
    params: Partial<SupertrendParams> = {},
  ) {
    this.params = { ...SUPERTREND_DEFAULTS, ...params };
    if (!Number.isInteger(this.params.atr_period) || this.params.atr_period < 1) {
      throw new ValidationError("params.atr_period", "must be a whole number >= 1");
    }
    if (!(this.params.multiplier > 0)) throw new ValidationError("params.multiplier", "must be > 0");
    this.atrName = indicatorName.atr(this.params.atr_period);
  }

  onTick(
    tick: Tick,
    indicators: IndicatorValues,
    position: Readonly<StrategyPosition> | undefined,
  ): Signal | undefined {
    let s = this.state.get(tick.symbol);
    if (!s) {
      s = {
        supertrend: new SupertrendKernel(this.params.atr_period, this.params.multiplier),
        trend: undefined,
        line: undefined,
      };
      this.state.set(tick.symbol, s);
    }
    const bands = s.supertrend;
    if (!bands.add(tick)) return undefined;
    const { atr, line } = bands;
    const trend: Trend = bands.up ? "BULLISH" : "BEARISH";

    const previousTrend = s.trend;
    const previousLine = s.line;
    s.trend = trend;
    s.line = line;
    if (previousTrend === undefined || previousLine === undefined || previousTrend === trend) {
      return undefined;
    }

    // Object.assign, not a spread followed by keys: the same object, ten times cheaper on Node 20.
    const evidence = Object.assign({}, indicators, {
      supertrend: line,
      supertrend_direction: trend === "BULLISH" ? 1 : -1,
      [this.atrName]: atr,
    });
    const thresholds = { atr_period: this.params.atr_period, multiplier: this.params.multiplier };
    const confidence = atr > 0 ? 0.5 + (0.5 * Math.abs(tick.close - previousLine)) / atr : 1;

    if (trend === "BULLISH" && !position) {
      return signalFor(this, tick, {
        kind: "entry",
        action: "BUY",
        reason: "supertrend_flip_up",
        indicators: evidence,
        confidence,
        thresholds,
      });
    }
    if (trend === "BEARISH" && position?.side === "long") {
      return signalFor(this, tick, {
        kind: "exit",
        action: "SELL",
        reason: "supertrend_flip_down",
        indicators: evidence,
        confidence,
        thresholds,
      });
    }
    return undefined;
  }
}
