import { ValidationError } from "../../domain/errors.js";
import type { Signal } from "../../domain/signal.js";
import type { Tick } from "../../domain/tick.js";
import { type IndicatorRequest, type IndicatorValues, indicatorName } from "../indicators.js";
import { type Strategy, type StrategyPosition, type SymbolSelection, signalFor } from "./strategy.js";

export interface RsiMeanReversionParams {
  /** RSI period; the strategy reads `rsi_<period>`. */
  period: number;
  /** Enter long when the RSI is below this level. */
  oversold: number;
  /** Exit the long when the RSI is above this level. */
  exit_level: number;
}

export const RSI_MEAN_REVERSION_DEFAULTS: RsiMeanReversionParams = {
  period: 14,
  oversold: 30,
  exit_level: 55,
};

/**
 * RSI mean reversion, long only: buy an oversold symbol, sell once the RSI has recovered.
 *
 *   entry: no position and RSI < oversold      confidence = 0.5 + 0.5 × (oversold − RSI) / oversold
 *   exit:  long open and RSI > exit_level      confidence = 0.5 + 0.5 × (RSI − exit_level) / (100 − exit_level)
 *
 * So a signal right at its threshold has confidence 0.5 and one at the RSI's bound (0 or 100) has 1.
 * After a position on a symbol ends (by this strategy's exit or by its stop), the strategy waits
 * for the RSI to come back to `oversold` or above before it enters that symbol again: a stop-loss
 * in a still-falling market is not followed at once by the same losing entry.
 */
export class RsiMeanReversion implements Strategy {
  readonly type = "rsi_mean_reversion";
  readonly requires: IndicatorRequest;
  readonly params: RsiMeanReversionParams;
  private readonly rsiName: string;
  /** Per symbol: false after a position, until the RSI has been at or above `oversold` again. */
  private readonly armed = new Map<string, boolean>();

  constructor(
    readonly id: string,
    readonly symbols: SymbolSelection,
    params: Partial<RsiMeanReversionParams> = {},
  ) {
    this.params = { ...RSI_MEAN_REVERSION_DEFAULTS, ...params };
    const { period, oversold, exit_level } = this.params;
    if (!Number.isInteger(period) || period < 2) throw new ValidationError("params.period", "must be >= 2");
    if (!(oversold > 0 && oversold < 100))
      throw new ValidationError("params.oversold", "must be in (0, 100)");
    if (!(exit_level > oversold && exit_level < 100)) {
      throw new ValidationError("params.exit_level", "must be above oversold and below 100");
    }
    this.rsiName = indicatorName.rsi(period);
    this.requires = { rsi: [period] };
  }

  onTick(
    tick: Tick,
    indicators: IndicatorValues,
    position: Readonly<StrategyPosition> | undefined,
  ): Signal | undefined {
    const rsi = indicators[this.rsiName];
    if (rsi === undefined) return undefined;
    const { oversold, exit_level } = this.params;
    const thresholds = { oversold, exit_level };

    if (position) {
      this.armed.set(tick.symbol, false);
      if (position.side !== "long" || rsi <= exit_level) return undefined;
      return signalFor(this, tick, {
        kind: "exit",
        action: "SELL",
        reason: "rsi_recovered",
        indicators: { ...indicators },
        confidence: 0.5 + (0.5 * (rsi - exit_level)) / (100 - exit_level),
        thresholds,
      });
    }

    if (rsi >= oversold) {
      this.armed.set(tick.symbol, true);
      return undefined;
    }
    if (this.armed.get(tick.symbol) === false) return undefined;
    return signalFor(this, tick, {
      kind: "entry",
      action: "BUY",
      reason: "rsi_oversold",
      indicators: { ...indicators },
      confidence: 0.5 + (0.5 * (oversold - rsi)) / oversold,
      thresholds,
    });
  }
}
