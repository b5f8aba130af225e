import type { ChainableCommander } from "ioredis";
import { z } from "zod";
import { assertId, assertSymbol, parseOrThrow, plainOrParse, SYMBOL_PATTERN } from "../domain/identifiers.js";
import { keys, TTL } from "../schema/redis-keys.js";
import {
  type CacheWindow,
  count,
  dayOf,
  epochMs,
  FIELD_NAME,
  fieldName,
  type IndicatorWrite,
  indicatorValuesSchema,
  isJsonObject,
  jsonObjectSchema,
  type LatestTick,
  signalSchema,
  signalType,
  stopStateSchema,
  tickSchema,
} from "./redis-cache-schemas.js";
import { putRankedCandidates, putWatchlist, validateCandidates, validateWatchlist } from "./redis-market.js";
import { upsertPosition, validatePositionWrite } from "./redis-positions.js";

/**
 * The write-behind window's way to Redis ({@link windowWriter}): a window's hashes (latest ticks,
 * indicators, stop states) in one script call, then its counters, signals, monitoring documents
 * and market scan, with cheap checks for the hot values (zod only names a fault).
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

/** One hash's row of WRITE_HASHES' JSON argument. */
export function hashRow({ ttl, replace, fields }: HashWrite): string {
  const row: (string | number)[] = [ttl, replace ? 1 : 0];
  for (const field in fields) row.push(field, String(fields[field]));
  return JSON.stringify(row);
}

/**
 * A latest tick's row, written out directly: the hot case (about one per symbol per window), with
 * no fields object or row array in between. Byte-equal to hashRow of the same hash (by test);
 * only for a tick that passed plainTick (finite numbers, nothing to escape).
 */
export function latestTickRow(t: LatestTick): string {
  return `[${TTL.latestTick},0,"last","${t.last}","open","${t.open}","high","${t.high}","low","${t.low}","close","${t.close}","volume","${t.volume}","bid","${t.bid}","ask","${t.ask}","timestamp","${t.timestamp}"]`;
}

/** Hashes by key and row (hashRow, latestTickRow), all in one script call. */
export function writeHashes(
  tx: ChainableCommander,
  keyList: readonly string[],
  rows: readonly string[],
): void {
  tx.eval(WRITE_HASHES, keyList.length, ...keyList, `[${rows.join(",")}]`);
}

const TICK_PRICES = ["last", "open", "high", "low", "close", "bid", "ask"] as const;

// Built once: a window checks its counters with them, and building a zod schema is not free.
const positiveCount = z.number().int().positive();
const amount = z.number();

/** Whether a window's tick passes `tickSchema` for sure (cheap); otherwise zod decides and names the fault. */
export function plainTick(t: LatestTick): boolean {
  if (typeof t !== "object" || t === null || Object.keys(t).length !== 10) return false;
  if (typeof t.symbol !== "string" || !SYMBOL_PATTERN.test(t.symbol)) return false;
  for (const name of TICK_PRICES) if (!(Number.isFinite(t[name]) && t[name] > 0)) return false;
  return Number.isFinite(t.volume) && t.volume >= 0 && Number.isSafeInteger(t.timestamp) && t.timestamp >= 0;
}

/**
 * Indicator names already found to pass FIELD_NAME (and not to be `timestamp`): a run computes
 * the same few names for every symbol, so each is tested once, not once per window and symbol.
 */
const checkedIndicatorNames = new Set<string>();
/** Distinct names remembered before the memo starts over (names come from configuration). */
const CHECKED_INDICATOR_NAMES_MAX = 10_000;

function plainIndicatorName(name: string): boolean {
  if (checkedIndicatorNames.has(name)) return true;
  if (name === "timestamp" || !FIELD_NAME.test(name)) return false;
  if (checkedIndicatorNames.size >= CHECKED_INDICATOR_NAMES_MAX) checkedIndicatorNames.clear();
  checkedIndicatorNames.add(name);
  return true;
}

/** Whether an indicator write passes validateIndicatorWrite for sure (cheap). */
export function plainIndicators(w: IndicatorWrite): boolean {
  if (typeof w.symbol !== "string" || !SYMBOL_PATTERN.test(w.symbol)) return false;
  if (!Number.isSafeInteger(w.timestamp) || w.timestamp < 0) return false;
  for (const name in w.values) {
    if (!plainIndicatorName(name) || !Number.isFinite(w.values[name])) return false;
  }
  return true;
}

/**
 * An indicator hash's row, written out directly: with the latest tick, the hot case (about one
 * per symbol per window). Byte-equal to hashRow of the same hash, values then `timestamp`, replacing
 * the old hash (by test); only for a write that passed plainIndicators (names match FIELD_NAME,
 * values are finite numbers: nothing to escape).
 */
export function indicatorRow({ values, timestamp }: IndicatorWrite): string {
  let row = `[${TTL.indicators},1`;
  for (const name in values) row += `,"${name}","${values[name]}"`;
  return `${row},"timestamp","${timestamp}"]`;
}

/** Replace, not merge: an indicator no longer computed must not linger with an old value. */
export function putIndicators(tx: ChainableCommander, { symbol, values, timestamp }: IndicatorWrite): void {
  const key = keys.stockIndicators(symbol);
  tx.del(key)
    .hset(key, Object.assign({}, values, { timestamp }))
    .expire(key, TTL.indicators);
}

/**
 * What a cache window writes, checked (a bad entry is a ValidationError naming it, e.g.
 * `ticks.3.close`), as one transaction's commands: every hash in one script call, then the small
 * writes. Undefined when the window holds nothing.
 */
export function windowWriter(batch: CacheWindow): ((tx: ChainableCommander) => void) | undefined {
  // Hot data (one hash per symbol and kind) is checked by hand; zod runs only to name a fault.
  const hashKeys: string[] = [];
  const rows: string[] = [];
  const addHash = (hash: HashWrite) => {
    hashKeys.push(hash.key);
    rows.push(hashRow(hash));
  };
  (batch.ticks ?? []).forEach((t, i) => {
    if (plainTick(t)) {
      hashKeys.push(keys.stockPrice(t.symbol));
      rows.push(latestTickRow(t));
      return;
    }
    const { symbol, ...fields } = parseOrThrow(tickSchema, t, `ticks.${i}`);
    addHash({ key: keys.stockPrice(symbol), ttl: TTL.latestTick, replace: false, fields });
  });
  (batch.indicators ?? []).forEach((w, i) => {
    if (plainIndicators(w)) {
      hashKeys.push(keys.stockIndicators(w.symbol));
      rows.push(indicatorRow(w));
      return;
    }
    const { symbol, values, timestamp } = validateIndicatorWrite(w, `indicators.${i}`);
    // Replace, not merge: an indicator no longer computed must not linger with an old value.
    addHash({
      key: keys.stockIndicators(symbol),
      ttl: TTL.indicators,
      replace: true,
      // Object.assign, not a spread followed by a key: the same object, ten times cheaper on Node 20.
      fields: Object.assign({}, values, { timestamp }),
    });
  });
  (batch.stopStates ?? []).forEach((w, i) => {
    addHash({
      key: keys.stopState(assertId(w.tradeId, `stopStates.${i}.tradeId`)),
      ttl: TTL.stopState,
      replace: false,
      fields: parseOrThrow(stopStateSchema, w.state, `stopStates.${i}.state`),
    });
  });
  const signals = (batch.signals ?? []).map((w, i) => ({
    key: keys.signal(parseOrThrow(signalType, w.type, `signals.${i}.type`), assertSymbol(w.symbol)),
    value: JSON.stringify(parseOrThrow(signalSchema, w.signal, `signals.${i}.signal`)),
  }));
  const counts = (batch.signalCounts ?? []).map((c, i) => ({
    key: keys.strategyStats(assertId(c.strategyId, `signalCounts.${i}.strategyId`)),
    field: `signals:${parseOrThrow(fieldName, c.action, `signalCounts.${i}.action`)}`,
    by: parseOrThrow(positiveCount, c.count, `signalCounts.${i}.count`),
  }));
  const daily = (batch.daily ?? []).map((d, i) => ({
    key: keys.dailyStats(dayOf(d.date)),
    field: parseOrThrow(fieldName, d.metric, `daily.${i}.metric`),
    by: parseOrThrow(amount, d.amount, `daily.${i}.amount`),
  }));
  const results = (batch.tradeResults ?? []).map((r, i) => ({
    key: keys.strategyStats(assertId(r.strategyId, `tradeResults.${i}.strategyId`)),
    trades: parseOrThrow(count, r.trades, `tradeResults.${i}.trades`),
    wins: parseOrThrow(count, r.wins, `tradeResults.${i}.wins`),
    losses: parseOrThrow(count, r.losses, `tradeResults.${i}.losses`),
    pnl: parseOrThrow(amount, r.pnl, `tradeResults.${i}.pnl`),
  }));
  const stopDeletes = (batch.stopDeletes ?? []).map((id, i) =>
    keys.stopState(assertId(id, `stopDeletes.${i}`)),
  );
  const monitoring = (batch.monitoring ?? []).map((m, i) => ({
    key: keys.positionMonitoring(assertSymbol(m.symbol, `monitoring.${i}.symbol`)),
    // Checked by hand (many per window); zod only names a fault.
    value: JSON.stringify(
      plainOrParse(jsonObjectSchema, m.document, isJsonObject, `monitoring.${i}.document`),
    ),
  }));
  const positions = (batch.positions ?? []).map((w, i) => validatePositionWrite(w, `positions.${i}`));
  const monitoringDeletes = (batch.monitoringDeletes ?? []).map((symbol, i) =>
    keys.positionMonitoring(assertSymbol(symbol, `monitoringDeletes.${i}`)),
  );
  const scan = batch.scan && {
    candidates: validateCandidates(batch.scan.candidates, "scan.candidates"),
    watchlist: validateWatchlist(batch.scan.watchlist, "scan.watchlist"),
    context: JSON.stringify(parseOrThrow(jsonObjectSchema, batch.scan.context, "scan.context")),
  };
  const small =
    signals.length +
    counts.length +
    daily.length +
    results.length +
    stopDeletes.length +
    monitoring.length +
    monitoringDeletes.length +
    positions.length +
    (scan ? 1 : 0);
  if (hashKeys.length + small === 0) return undefined;
  return (tx) => {
    // Every hash of the window in one script call: one command, not three per symbol.
    if (hashKeys.length > 0) writeHashes(tx, hashKeys, rows);
    for (const w of signals) tx.set(w.key, w.value, "EX", TTL.signal);
    for (const c of counts) tx.hincrby(c.key, c.field, c.by);
    for (const d of daily) tx.hincrbyfloat(d.key, d.field, d.by).expire(d.key, TTL.dailyStats);
    for (const r of results) {
      tx.hincrby(r.key, "trades", r.trades);
      if (r.wins > 0) tx.hincrby(r.key, "wins", r.wins);
      if (r.losses > 0) tx.hincrby(r.key, "losses", r.losses);
      tx.hincrbyfloat(r.key, "pnl", r.pnl);
    }
    // After the sets: a stop set and deleted within one window ends deleted.
    if (stopDeletes.length > 0) tx.del(...stopDeletes);
    for (const m of monitoring) tx.set(m.key, m.value, "EX", TTL.positionMonitoring);
    if (monitoringDeletes.length > 0) tx.del(...monitoringDeletes);
    for (const p of positions) upsertPosition(tx, p);
    if (scan) {
      putRankedCandidates(tx, scan.candidates);
      putWatchlist(tx, scan.watchlist);
      tx.set(keys.marketContext(), scan.context, "EX", TTL.marketContext);
    }
  };
}
