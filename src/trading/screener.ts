import type { BarBook } from "./bar-book.js";
import type { Bar } from "./bars.js";
import type { MarketConfig, ScreenerRuleName } from "./market-config.js";

/**
 * The screener: scores every symbol of the universe from its closed bars and bar indicators with
 * four named rules, each 0 or 1, weighted (see MarketConfig.screener.rules):
 * - breakout: the last bar closed above the highest high of the look-back bars before it;
 * - volume_surge: the last bar's volume is at least `multiple` × the look-back's average;
 * - macd_cross: the MACD histogram went from ≤ 0 on the bar before to > 0 on the last bar;
 * - support_bounce: the bar before the last dipped to within `within_percent` of the look-back's
 *   lowest low (before it), and the last bar closed above it.
 * score = Σ weight × fired / Σ weights, in [0, 1]. Symbols scoring above 0 are ranked by score,
 * then by symbol (so a seed gives one order), and the top `top` are the candidates.
 */

export interface ScreenedCandidate {
  symbol: string;
  score: number;
  price: number;
  /** The rules that fired, in rule order. */
  signals: ScreenerRuleName[];
  timestamp: number;
}

type Rule = (bars: readonly Bar[], macd: { latest?: number; previous?: number }) => boolean;

function breakout(bars: readonly Bar[]): boolean {
  const last = bars.at(-1);
  if (!last || bars.length < 2) return false;
  let high = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < bars.length - 1; i++) high = Math.max(high, (bars[i] as Bar).high);
  return last.close > high;
}

export class Screener {
  private readonly rules: [ScreenerRuleName, number, Rule][];
  private readonly weightSum: number;

  constructor(
    private readonly config: MarketConfig["screener"],
    private readonly bars: BarBook,
  ) {
    const r = config.rules;
    this.rules = [
      ["breakout", r.breakout.weight, breakout],
      [
        "volume_surge",
        r.volume_surge.weight,
        (bars) => {
          const last = bars.at(-1);
          if (!last || bars.length < 2) return false;
          let sum = 0;
          for (let i = 0; i < bars.length - 1; i++) sum += (bars[i] as Bar).volume;
          const average = sum / (bars.length - 1);
          return average > 0 && last.volume >= r.volume_surge.multiple * average;
        },
      ],
      [
        "macd_cross",
        r.macd_cross.weight,
        (_bars, macd) =>
          macd.latest !== undefined && macd.previous !== undefined && macd.previous <= 0 && macd.latest > 0,
      ],
      [
        "support_bounce",
        r.support_bounce.weight,
        (bars) => {
          if (bars.length < 3) return false;
          const last = bars.at(-1) as Bar;
          const dip = bars.at(-2) as Bar;
          let support = Number.POSITIVE_INFINITY;
          for (let i = 0; i < bars.length - 2; i++) support = Math.min(support, (bars[i] as Bar).low);
          return dip.low <= support * (1 + r.support_bounce.within_percent / 100) && last.close > dip.close;
        },
      ],
    ];
    this.weightSum = this.rules.reduce((sum, [, w]) => sum + w, 0);
  }

  /** Scores `symbols` at `now` (epoch ms), priced at `price(symbol)`; the ranked top candidates. */
  run(
    symbols: Iterable<string>,
    price: (symbol: string) => number | undefined,
    now: number,
  ): ScreenedCandidate[] {
    const timeframe = this.config.timeframe;
    const lookback = this.config.lookback_bars;
    const scored: ScreenedCandidate[] = [];
    for (const symbol of symbols) {
      const last = price(symbol);
      if (last === undefined) continue;
      const bars = this.bars.bars(symbol, timeframe).slice(-(lookback + 1));
      const { latest, previous } = this.bars.values(symbol, timeframe);
      const macd = { latest: latest.macd_histogram, previous: previous.macd_histogram };
      const fired: ScreenerRuleName[] = [];
      let score = 0;
      for (const [name, weight, rule] of this.rules) {
        if (weight > 0 && rule(bars, macd)) {
          fired.push(name);
          score += weight;
        }
      }
      if (fired.length === 0 || this.weightSum === 0) continue;
      scored.push({
        symbol,
        score: Math.round((score / this.weightSum) * 1e4) / 1e4,
        price: last,
        signals: fired,
        timestamp: now,
      });
    }
    scored.sort((a, b) => b.score - a.score || (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));
    return scored.slice(0, this.config.top);
  }
}
