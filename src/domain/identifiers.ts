import { z } from "zod";
import { ValidationError } from "./errors.js";

/**
 * Identifier rules shared by every store. They keep Redis keys, Influx tags and Prometheus labels
 * well-formed, and make it impossible to smuggle query syntax through an id.
 */
export const SYMBOL_PATTERN = /^[A-Z0-9._-]{1,32}$/;
export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export const symbolSchema = z.string().regex(SYMBOL_PATTERN, "must match [A-Z0-9._-]{1,32}");
export const idSchema = z.string().regex(ID_PATTERN, "must match [A-Za-z0-9._-]{1,64}");
export const positivePrice = z.number().finite().positive();
export const nonNegative = z.number().finite().nonnegative();

/** Unix time in seconds (fractions allowed): the unit every journal time column uses. */
export const unixSeconds = z.number().finite().nonnegative();

/**
 * Parses `value` with `schema`; on failure throws a ValidationError naming the first bad field as
 * `prefix.path` (or `prefix` for a scalar).
 */
export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, prefix: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue?.path.length ? `${prefix}.${issue.path.join(".")}` : prefix;
  throw new ValidationError(path, issue?.message ?? "invalid value");
}

/**
 * `value` itself when `plain(value)` — a cheap hand check that implies the schema passes and would
 * change nothing — else what `parseOrThrow` makes of it (the parsed value, or the error naming the
 * field). For hot paths, where most values are plain and zod's cost per call shows.
 */
export function plainOrParse<T>(
  schema: z.ZodType<T>,
  value: unknown,
  plain: (value: unknown) => boolean,
  prefix: string,
): T {
  return plain(value) ? (value as T) : parseOrThrow(schema, value, prefix);
}

// The schemas are the patterns alone, so a string that matches needs no parse (hot paths: every
// fill and mark); zod runs only to word the error.
export function assertSymbol(symbol: unknown, field = "symbol"): string {
  if (typeof symbol === "string" && SYMBOL_PATTERN.test(symbol)) return symbol;
  return parseOrThrow(symbolSchema, symbol, field);
}

export function assertId(id: unknown, field: string): string {
  if (typeof id === "string" && ID_PATTERN.test(id)) return id;
  return parseOrThrow(idSchema, id, field);
}
