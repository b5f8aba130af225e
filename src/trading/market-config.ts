import { z } from "zod";
import { symbolSchema } from "../domain/identifiers.js";
import { TIMEFRAME_PATTERN } from "./bars.js";

/**
 * The `market:` section of the strategies file: bar timeframes, the screener, the market context,
 * position monitoring and the symbol → sector map. Every key is optional; the defaults are below
 * and in config/strategies.yaml.
 */

const num = () => z.number({ error: "must be a number" }).finite("must be a finite number");
const positive = () => num().gt(0, "must be > 0");
const weight = () => num().min(0, "must be >= 0").max(1, "must be <= 1");
export const timeframeSchema = z
  .string({ error: "must be a timeframe such as 1m" })
  .regex(TIMEFRAME_PATTERN, { message: "must look like 30s, 1m, 5m or 1h" });
const sectorName = z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, { message: "must match [a-z][a-z0-9_]{0,31}" });

export const SCREENER_RULES = ["breakout", "volume_surge", "macd_cross", "support_bounce"] as const;
export type ScreenerRuleName = (typeof SCREENER_RULES)[number];

const screenerSchema = z.strictObject({
  /** Seconds of event time between runs. */
  interval_seconds: positive().default(10),
  /** The bars the rules read; must be one of `timeframes`. */
  timeframe: timeframeSchema.default("1m"),
  /** Closed bars the rules look back over (highs, lows, average volume). */
  lookback_bars: num()
    .int("must be a whole number")
    .min(2, "must be >= 2")
    .max(500, "must be <= 500")
    .default(20),
  /** Candidates kept in candidates:ranked and watchlist:current. */
  top: num().int("must be a whole number").min(1, "must be >= 1").max(1000, "must be <= 1000").default(20),
  rules: z
    .strictObject({
      /** Last close above the highest high of the look-back before it. */
      breakout: z.strictObject({ weight: weight().default(0.3) }).prefault({}),
      /** Last bar's volume at least `multiple` × the look-back's average volume. */
      volume_surge: z
        .strictObject({ weight: weight().default(0.25), multiple: positive().default(2) })
        .prefault({}),
      /** MACD crossed above its signal line on the last bar (histogram ≤ 0 → > 0). */
      macd_cross: z.strictObject({ weight: weight().default(0.25) }).prefault({}),
      /** Previous bar's low within `within_percent` of the look-back's lowest low, last close up. */
      support_bounce: z
        .strictObject({ weight: weight().default(0.2), within_percent: positive().default(0.5) })
        .prefault({}),
    })
    .prefault({}),
});

const contextSchema = z.strictObject({
  /** A symbol within ± this many basis points of its session open is unchanged. */
  unchanged_band_bps: num().min(0, "must be >= 0").default(1),
  /** Screener runs the volatility of the equal-weight index is measured over. */
  volatility_window: num().int("must be a whole number").min(2, "must be >= 2").default(30),
  /** The index's change from the open (percent) beyond which the market trends. */
  trend_percent: positive().default(0.5),
  /** Share of advancing (or declining) symbols a trend needs. */
  trend_breadth: weight().default(0.6),
  /** Annualised volatility (percent) above which the regime is high_volatility. */
  high_volatility: positive().default(40),
});

const monitoringSchema = z.strictObject({
  /** The profit target of a position: this many percent beyond its entry. */
  profit_target_percent: positive().default(4),
  /** RSI levels of the technical signals (per timeframe). */
  overbought: num().min(0, "must be >= 0").max(100, "must be <= 100").default(70),
  oversold: num().min(0, "must be >= 0").max(100, "must be <= 100").default(30),
});

export const marketSchema = z.strictObject({
  timeframes: z
    .array(timeframeSchema)
    .max(6, "at most 6 timeframes")
    .default(["1m", "5m"])
    .refine((tfs) => new Set(tfs).size === tfs.length, { message: "lists a timeframe twice" }),
  screener: screenerSchema.prefault({}),
  context: contextSchema.prefault({}),
  monitoring: monitoringSchema.prefault({}),
  /** Sector → symbols. Symbols missing here take the simulator's sector, or `unclassified`. */
  sectors: z.record(sectorName, z.array(symbolSchema)).default({}),
});

export type MarketConfig = z.output<typeof marketSchema>;

/** Sector of a symbol without one in the configuration and without a fallback. */
export const UNCLASSIFIED_SECTOR = "unclassified";

/** symbol → sector: the configured map first, then `fallback` (e.g. the simulator's), else unclassified. */
export function sectorResolver(
  sectors: MarketConfig["sectors"],
  fallback?: (symbol: string) => string | undefined,
): (symbol: string) => string {
  const bySymbol = new Map<string, string>();
  for (const [sector, symbols] of Object.entries(sectors)) for (const s of symbols) bySymbol.set(s, sector);
  return (symbol) => bySymbol.get(symbol) ?? fallback?.(symbol) ?? UNCLASSIFIED_SECTOR;
}
