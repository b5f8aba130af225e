import type { ChainableCommander } from "ioredis";
import { z } from "zod";
import { ValidationError } from "../domain/errors.js";
import { parseOrThrow, symbolSchema } from "../domain/identifiers.js";
import { keys, TTL } from "../schema/redis-keys.js";
import { type Candidate, candidateSchema } from "./redis-cache-schemas.js";

/**
 * The market picture's keys (seed 004): the watchlist and the ranked candidates, checked and
 * written whole, by the cache's own calls and by the window that carries a scan.
 */

export function validateWatchlist(symbols: readonly string[], field: string): string[] {
  return parseOrThrow(z.array(symbolSchema), symbols, field);
}

export function validateCandidates(candidates: readonly Candidate[], field: string): Candidate[] {
  const list = parseOrThrow(z.array(candidateSchema), candidates, field);
  const seen = new Set<string>();
  list.forEach((c, i) => {
    if (seen.has(c.symbol)) throw new ValidationError(`${field}.${i}.symbol`, `duplicate ${c.symbol}`);
    seen.add(c.symbol);
  });
  return list;
}

/** Replaces the watchlist, keeping the given order. */
export function putWatchlist(tx: ChainableCommander, list: readonly string[]): void {
  const key = keys.watchlist();
  tx.del(key);
  if (list.length > 0) tx.rpush(key, ...list);
}

/** Replaces the ranked set and its details; old members disappear. */
export function putRankedCandidates(tx: ChainableCommander, list: readonly Candidate[]): void {
  const ranked = keys.candidatesRanked();
  const details = keys.candidatesDetails();
  tx.del(ranked, details);
  if (list.length === 0) return;
  tx.zadd(ranked, ...list.flatMap((c) => [c.score, c.symbol]));
  tx.hset(
    details,
    Object.fromEntries(
      list.map((c) => [
        c.symbol,
        JSON.stringify({ price: c.price, signals: c.signals, timestamp: c.timestamp }),
      ]),
    ),
  );
  tx.expire(ranked, TTL.candidates).expire(details, TTL.candidates);
}
