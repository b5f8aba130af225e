import { z } from "zod";

/**
 * The decision package of `GET /api/monitoring/:symbol` (seed 004's "structured data package"):
 * everything known about one symbol, combined from the cache's keys, with the journal as the
 * fallback for positions. Every part carries its time (ISO 8601) and age in seconds; a part with
 * nothing behind it is null. Defined once here: the route builds it, `npm run dashboards` writes
 * its JSON Schema to docs/monitoring-package.schema.json, and the route's answer is tested
 * against that file.
 */

const stamped = { timestamp: z.iso.datetime(), age_seconds: z.number().nonnegative() };
const values = z.record(z.string(), z.number());

const level = z.strictObject({
  value: z.number(),
  distance: z.string(),
  distance_price: z.number(),
  distance_pct: z.number(),
});
const positionFigures = z.strictObject({
  trade_id: z.string(),
  strategy_id: z.string(),
  side: z.enum(["long", "short"]),
  entry_price: z.number(),
  current_price: z.number(),
  profit_target: level,
  stop_loss: level,
  time_in_trade: z.string().regex(/^\d{2,}:\d{2}:\d{2}$/),
});

const signal = z.strictObject({
  reason: z.string(),
  price: z.number(),
  indicators: values,
  confidence: z.number().min(0).max(1),
  ...stamped,
});

export const monitoringPackageSchema = z.strictObject({
  symbol: z.string(),
  generated_at: z.iso.datetime(),
  /** Which stores answered: without Redis only the journal's positions are known. */
  sources: z.strictObject({ redis: z.boolean(), journal: z.boolean() }),
  price: z
    .strictObject({
      last: z.number(),
      open: z.number(),
      high: z.number(),
      low: z.number(),
      close: z.number(),
      volume: z.number(),
      bid: z.number(),
      ask: z.number(),
      ...stamped,
    })
    .nullable(),
  /** Indicator values by timeframe: `tick` for the per-tick ones, `1m`, `5m`, … for the bars'. */
  indicators: z.strictObject({ by_timeframe: z.record(z.string(), values), ...stamped }).nullable(),
  sentiment: z
    .strictObject({
      sentiment_score: z.number(),
      sentiment_label: z.string(),
      news_count: z.number().int().nonnegative(),
      latest_news: z.array(
        z.strictObject({
          headline: z.string(),
          source: z.string(),
          url: z.string(),
          timestamp: z.iso.datetime(),
        }),
      ),
      ...stamped,
    })
    .nullable(),
  positions: z.array(
    z.strictObject({
      trade_id: z.string(),
      strategy_id: z.string(),
      side: z.enum(["long", "short"]),
      entry_price: z.number(),
      quantity: z.number(),
      entry_time: z.iso.datetime(),
      current_price: z.number().nullable(),
      unrealized_pnl: z.number().nullable(),
      unrealized_pnl_pct: z.number().nullable(),
      stop_loss: z.number().nullable(),
    }),
  ),
  /** positions:monitoring:{symbol}: present while the symbol is held and Redis answers. */
  monitoring: z
    .strictObject({
      symbol: z.string(),
      technical_signals: z.record(
        z.string(),
        z.union([
          z.strictObject({ value: z.number(), signal: z.string() }),
          z.strictObject({ next_level: z.number(), type: z.enum(["support", "resistance"]) }),
        ]),
      ),
      ...positionFigures.shape,
      positions: z.array(positionFigures),
      ...stamped,
    })
    .nullable(),
  signals: z.strictObject({ entry: signal.nullable(), exit: signal.nullable() }),
  market_context: z
    .strictObject({
      sector_performance: values,
      market_breadth: z.strictObject({
        advancing: z.number().int().nonnegative(),
        declining: z.number().int().nonnegative(),
        unchanged: z.number().int().nonnegative(),
      }),
      vix: z.number().nullable(),
      index_change_pct: z.number(),
      market_regime: z.string(),
      symbols: z.number().int().nonnegative(),
      ...stamped,
    })
    .nullable(),
});

export type MonitoringPackage = z.infer<typeof monitoringPackageSchema>;

/** Where the published JSON Schema lives (relative to the project root). */
export const MONITORING_PACKAGE_SCHEMA_PATH = "docs/monitoring-package.schema.json";

/** The JSON Schema of the package, as published. */
export function monitoringPackageJsonSchema(): Record<string, unknown> {
  return {
    title: "VELOX monitoring package (GET /api/monitoring/:symbol)",
    ...z.toJSONSchema(monitoringPackageSchema, { target: "draft-2020-12" }),
  };
}
