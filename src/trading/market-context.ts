import type { MarketConfig } from "./market-config.js";

/**
 * The market context, from the universe itself (seed 004's `context:market`):
 * - breadth: symbols advancing, declining and unchanged against their session open (the first
 *   price of the symbol's UTC day); within ± `unchanged_band_bps` is unchanged;
 * - sector performance: the equal-weight mean change from the open of each sector's symbols, in
 *   percent;
 * - `vix`: the realised volatility of the equal-weight index (mean change from the open) between
 *   context runs over the last `volatility_window` runs, annualised over 252 sessions of 6.5 hours,
 *   in percent; `null` until two runs have passed. It is this universe's figure, not CBOE's VIX;
 * - the regime, by these rules in order: `high_volatility` when vix > `high_volatility`;
 *   `bullish_trend` when the index is up more than `trend_percent` and at least `trend_breadth` of
 *   the symbols advance; `bearish_trend` mirrored; otherwise `bullish_consolidation` when more
 *   advance than decline, `bearish_consolidation` when more decline, else `neutral`.
 */

export const MARKET_REGIMES = [
  "high_volatility",
  "bullish_trend",
  "bearish_trend",
  "bullish_consolidation",
  "bearish_consolidation",
  "neutral",
] as const;
export type MarketRegime = (typeof MARKET_REGIMES)[number];

export interface MarketContextFigures {
  sector_performance: Record<string, number>;
  market_breadth: { advancing: number; declining: number; unchanged: number };
  vix: number | null;
  /** Equal-weight mean change from the session open, percent. */
  index_change_pct: number;
  market_regime: MarketRegime;
  symbols: number;
  timestamp: number;
}

const DAY_MS = 86_400_000;
const SESSION_SECONDS_PER_YEAR = 252 * 6.5 * 3600;
const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits;

export class MarketContext {
  /** Per symbol, its session's UTC day (days since the epoch) and opening price. */
  private readonly opens = new Map<string, { day: number; price: number }>();
  private readonly last = new Map<string, number>();
  private readonly index: number[] = [];

  constructor(
    private readonly config: MarketConfig["context"],
    private readonly intervalSeconds: number,
    private readonly sectorOf: (symbol: string) => string,
  ) {}

  /** Takes a tick's price: the session open on the symbol's first tick of a UTC day, and its last price. */
  observe(symbol: string, price: number, timestamp: number): void {
    // A day number, not a date string: this runs on every tick.
    const day = Math.floor(timestamp / DAY_MS);
    const open = this.opens.get(symbol);
    if (!open) this.opens.set(symbol, { day, price });
    else if (open.day !== day) {
      open.day = day;
      open.price = price;
    }
    this.last.set(symbol, price);
  }

  price(symbol: string): number | undefined {
    return this.last.get(symbol);
  }

  symbols(): IterableIterator<string> {
    return this.last.keys();
  }

  /** The context at `now` (epoch ms); each call is one run of the volatility window. */
  run(now: number): MarketContextFigures {
    const band = this.config.unchanged_band_bps / 100;
    const breadth = { advancing: 0, declining: 0, unchanged: 0 };
    const sectors = new Map<string, { sum: number; n: number }>();
    let sum = 0;
    for (const [symbol, price] of this.last) {
      const open = this.opens.get(symbol)?.price ?? price;
      const change = (price / open - 1) * 100;
      if (change > band) breadth.advancing++;
      else if (change < -band) breadth.declining++;
      else breadth.unchanged++;
      const sector = this.sectorOf(symbol);
      const s = sectors.get(sector) ?? { sum: 0, n: 0 };
      s.sum += change;
      s.n++;
      sectors.set(sector, s);
      sum += change;
    }
    const n = this.last.size;
    const indexChange = n === 0 ? 0 : sum / n;
    this.index.push(100 * (1 + indexChange / 100));
    if (this.index.length > this.config.volatility_window + 1) this.index.shift();
    const vix = this.volatility();
    const share = (k: number) => (n === 0 ? 0 : k / n);
    const c = this.config;
    let regime: MarketRegime;
    if (vix !== null && vix > c.high_volatility) regime = "high_volatility";
    else if (indexChange > c.trend_percent && share(breadth.advancing) >= c.trend_breadth)
      regime = "bullish_trend";
    else if (indexChange < -c.trend_percent && share(breadth.declining) >= c.trend_breadth)
      regime = "bearish_trend";
    else if (breadth.advancing > breadth.declining) regime = "bullish_consolidation";
    else if (breadth.declining > breadth.advancing) regime = "bearish_consolidation";
    else regime = "neutral";
    const sectorPerformance: Record<string, number> = {};
    for (const name of [...sectors.keys()].sort()) {
      const s = sectors.get(name) as { sum: number; n: number };
      sectorPerformance[name] = round(s.sum / s.n);
    }
    return {
      sector_performance: sectorPerformance,
      market_breadth: breadth,
      vix: vix === null ? null : round(vix, 2),
      index_change_pct: round(indexChange),
      market_regime: regime,
      symbols: n,
      timestamp: now,
    };
  }

  private volatility(): number | null {
    if (this.index.length < 3) return null;
    const returns: number[] = [];
    for (let i = 1; i < this.index.length; i++) {
      returns.push(Math.log((this.index[i] as number) / (this.index[i - 1] as number)));
    }
    const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
    const variance = returns.reduce((a, r) => a + (r - mean) ** 2, 0) / (returns.length - 1);
    return Math.sqrt(variance) * Math.sqrt(SESSION_SECONDS_PER_YEAR / this.intervalSeconds) * 100;
  }
}
