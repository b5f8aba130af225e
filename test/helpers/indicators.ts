import type { IndicatorConfig } from "../../src/trading/indicators.js";

/** Only the named indicators, with all others switched off (empty lists, unreachable periods). */
export function only(partial: Partial<IndicatorConfig>): IndicatorConfig {
  return {
    rsi: [],
    ema: [],
    atr: [],
    macd: { fast: 998, slow: 999, signal: 999 },
    bollinger: { period: 999, stdDev: 2 },
    ...partial,
  };
}
