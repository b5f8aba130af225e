import type { ChainableCommander } from "ioredis";
import { assertSymbol, parseOrThrow, SYMBOL_PATTERN } from "../domain/identifiers.js";
import { keys, TTL } from "../schema/redis-keys.js";
import {
  epochMs,
  FIELD_NAME,
  type IndicatorWrite,
  indicatorValuesSchema,
  type LatestTick,
} from "./redis-cache-schemas.js";

/**
 * The write-behind window's way to Redis: a window's hashes (latest ticks, indicators, stop
 * states) in one script call, with cheap checks for the hot values (zod only names a fault).
 */

export function putLatestTick(tx: ChainableCommander, { symbol, ...fields }: LatestTick): void {
  const key = keys.stockPrice(symbol);
  tx.hset(key, fields).expire(key, TTL.latestTick);
}

/** `prefix` locates a batch entry in error fields (`indicators.3.symbol`); a single write has none. */
export function validateIndicatorWrite(write: IndicatorWrite, prefix = ""): IndicatorWrite {
  const at = (field: string) => (prefix ? `${prefix}.${field}` : field);
  return {
    symbol: assertSymbol(write.symbol, at("symbol")),
    values: parseOrThrow(indicatorValuesSchema, write.values, at("indicators")),
    timestamp: parseOrThrow(epochMs, write.timestamp, at("timestamp")),
  };
}

/** One hash of a cache window: its fields, its TTL, and whether it replaces the old hash. */
export interface HashWrite {
  key: string;
  ttl: number;
  replace: boolean;
  fields: Record<string, string | number>;
}

/**
 * Writes many hashes, each with its TTL, in one command of three arguments' worth of work per
 * hash. KEYS are the hashes; ARGV[1] is a JSON array with, per key, [ttl, replace (1: delete
 * first), field, value, field, value, …], every value a string so Redis stores it exactly.
 */
const WRITE_HASHES = `
local rows = cjson.decode(ARGV[1])
for i, key in ipairs(KEYS) do
  local row = rows[i]
  if row[2] == 1 then redis.call('DEL', key) end
  redis.call('HSET', key, unpack(row, 3))
  redis.call('EXPIRE', key, row[1])
end
return #KEYS`;

export function writeHashes(tx: ChainableCommander, hashes: readonly HashWrite[]): void {
  const keyList: string[] = new Array(hashes.length);
  const rows: (string | number)[][] = new Array(hashes.length);
  for (let i = 0; i < hashes.length; i++) {
    const { key, ttl, replace, fields } = hashes[i] as HashWrite;
    const row: (string | number)[] = [ttl, replace ? 1 : 0];
    for (const field in fields) row.push(field, String(fields[field]));
    keyList[i] = key;
    rows[i] = row;
  }
  tx.eval(WRITE_HASHES, hashes.length, ...keyList, JSON.stringify(rows));
}

const TICK_PRICES = ["last", "open", "high", "low", "close", "bid", "ask"] as const;

/** Whether a window's tick passes `tickSchema` for sure (cheap); otherwise zod decides and names the fault. */
export function plainTick(t: LatestTick): boolean {
  if (typeof t !== "object" || t === null || Object.keys(t).length !== 10) return false;
  if (typeof t.symbol !== "string" || !SYMBOL_PATTERN.test(t.symbol)) return false;
  for (const name of TICK_PRICES) if (!(Number.isFinite(t[name]) && t[name] > 0)) return false;
  return Number.isFinite(t.volume) && t.volume >= 0 && Number.isSafeInteger(t.timestamp) && t.timestamp >= 0;
}

/** Whether an indicator write passes validateIndicatorWrite for sure (cheap). */
export function plainIndicators(w: IndicatorWrite): boolean {
  if (typeof w.symbol !== "string" || !SYMBOL_PATTERN.test(w.symbol)) return false;
  if (!Number.isSafeInteger(w.timestamp) || w.timestamp < 0) return false;
  for (const name in w.values) {
    if (name === "timestamp" || !FIELD_NAME.test(name) || !Number.isFinite(w.values[name])) return false;
  }
  return true;
}

/** Replace, not merge: an indicator no longer computed must not linger with an old value. */
export function putIndicators(tx: ChainableCommander, { symbol, values, timestamp }: IndicatorWrite): void {
  const key = keys.stockIndicators(symbol);
  tx.del(key)
    .hset(key, { ...values, timestamp })
    .expire(key, TTL.indicators);
}
