import type { ChainableCommander } from "ioredis";
import { assertId, assertSymbol, parseOrThrow } from "../domain/identifiers.js";
import { channels, keys, TTL } from "../schema/redis-keys.js";
import { type PositionWrite, positionSchema } from "./redis-cache-schemas.js";

/** Open positions in Redis: one hash per symbol, field per strategy, a change published per write. */

/*
 * Lua, so that "opened" vs "updated" is decided by the same atomic step that writes the field.
 * ARGV[5] is the change message without its opening brace; the type is spliced in front.
 */
const UPSERT_POSITION = `
local created = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local kind = created == 1 and 'opened' or 'updated'
redis.call('PUBLISH', ARGV[4], '{"type":"' .. kind .. '",' .. ARGV[5])
return kind`;

/** Publishes "closed" only when a position was actually removed. */
export const DELETE_POSITION = `
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`;

export function validatePositionWrite(write: PositionWrite, prefix = ""): PositionWrite {
  const at = (field: string) => (prefix ? `${prefix}.${field}` : field);
  return {
    strategyId: assertId(write.strategyId, at("strategyId")),
    symbol: assertSymbol(write.symbol, at("symbol")),
    position: parseOrThrow(positionSchema, write.position, at("position")),
  };
}

/** The EVAL of one checked position write: its script, key count, key and arguments. */
export function upsertPositionCall({
  strategyId,
  symbol,
  position,
}: PositionWrite): [string, number, string, string, string, number, string, string] {
  const change = JSON.stringify({ strategy_id: strategyId, symbol, ...position }).slice(1);
  return [
    UPSERT_POSITION,
    1,
    keys.activePositions(symbol),
    strategyId,
    JSON.stringify(position),
    TTL.position,
    channels.positionChanges,
    change,
  ];
}

export function upsertPosition(tx: ChainableCommander, write: PositionWrite): void {
  tx.eval(...upsertPositionCall(write));
}
