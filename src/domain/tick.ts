import { z } from "zod";
import { nonNegative, positivePrice, symbolSchema } from "./identifiers.js";

/**
 * A market tick: one OHLCV bar (or trade print) of one symbol at the event's own time.
 * `timestamp` is epoch milliseconds; every store derives its own unit from it.
 */
export const tickSchema = z
  .object({
    symbol: symbolSchema,
    timestamp: z.number().finite().nonnegative(),
    open: positivePrice,
    high: positivePrice,
    low: positivePrice,
    close: positivePrice,
    volume: nonNegative,
    bid: positivePrice.optional(),
    ask: positivePrice.optional(),
    /** Where the tick came from (simulator, replay, feed name). */
    source: z
      .string()
      .regex(/^[a-z0-9_-]{1,32}$/, "must match [a-z0-9_-]{1,32}")
      .default("simulator"),
  })
  .refine((t) => t.high >= t.low, { path: ["high"], message: "must not be below low" })
  .refine((t) => t.bid === undefined || t.ask === undefined || t.bid <= t.ask, {
    path: ["ask"],
    message: "must not be below bid",
  });

export type TickInput = z.input<typeof tickSchema>;
export type Tick = z.output<typeof tickSchema>;
