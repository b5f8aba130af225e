import { z } from "zod";
import { nonNegative, parseOrThrow, positivePrice, symbolSchema } from "./identifiers.js";

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

/**
 * The ticks that passed `tickSchema`, so later stages of the tick path need not parse them again.
 * A WeakSet leaves the tick objects exactly as they are and forgets them with them.
 */
const VALIDATED = new WeakSet<object>();

/** Records that `tick` is a parsed, valid tick (the validator's output). */
export function markValid(tick: Tick): Tick {
  VALIDATED.add(tick);
  return tick;
}

/**
 * The tick, parsed once: a tick the validator already accepted is returned as it is, anything
 * else goes through `tickSchema` (a ValidationError naming the field when it fails).
 */
export function validTick(input: TickInput | Tick): Tick {
  if (VALIDATED.has(input)) return input as Tick;
  return markValid(parseOrThrow(tickSchema, input, "tick"));
}
