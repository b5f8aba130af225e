import { z } from "zod";
import { symbolSchema } from "./identifiers.js";

/**
 * A sentiment record as it comes in (seed 004's `stocks:sentiment:{symbol}`), from
 * `POST /api/sentiment/:symbol` or a line of `velox sentiment import`. Times may be ISO 8601 (as
 * in the seed) or epoch milliseconds; they are kept as epoch ms, like every time in the cache.
 */

const instant = z.union([
  z.number().int().nonnegative(),
  z.iso
    .datetime({ offset: true, message: "must be an ISO 8601 time such as 2025-05-09T08:15:30.123Z" })
    .transform((t) => Date.parse(t)),
]);

const newsSchema = z.strictObject({
  headline: z.string().min(1, "must not be empty").max(500, "must be at most 500 characters"),
  source: z.string().min(1, "must not be empty").max(100, "must be at most 100 characters"),
  timestamp: instant,
  url: z.url({ protocol: /^https?$/, message: "must be an http(s) URL" }).max(2000),
});

export const sentimentInputSchema = z.strictObject({
  sentiment_score: z.number().min(-1, "must be from -1 to 1").max(1, "must be from -1 to 1"),
  sentiment_label: z.string().regex(/^[a-z][a-z_]{0,31}$/, "must match [a-z][a-z_]{0,31}, e.g. bullish"),
  news_count: z.number().int("must be a whole number").nonnegative("must be >= 0"),
  latest_news: z.array(newsSchema).max(50, "at most 50 items"),
  timestamp: instant,
});
export type SentimentInput = z.input<typeof sentimentInputSchema>;
export type SentimentRecord = z.output<typeof sentimentInputSchema>;

/** A line of a sentiment import file: the record with its symbol. */
export const sentimentLineSchema = sentimentInputSchema.extend({ symbol: symbolSchema });
