import { describe, expect, it } from "vitest";
import { keys, TTL } from "../../src/schema/redis-keys.js";
import type { LatestTick } from "../../src/storage/redis-cache-schemas.js";
import { hashRow, latestTickRow, plainTick } from "../../src/storage/redis-window.js";

/**
 * The cache window's hot row (a latest tick, written out directly) against the generic row of the
 * same hash: byte for byte, so Redis stores the same strings either way.
 */

const base: LatestTick = {
  symbol: "AAPL",
  last: 150.1,
  open: 149.8,
  high: 151.2,
  low: 149.5,
  close: 150.1,
  volume: 25_000_000,
  bid: 150.09,
  ask: 150.11,
  timestamp: 1_746_778_530_123,
};

describe("latestTickRow", () => {
  const cases: LatestTick[] = [
    base,
    { ...base, last: 0.1 + 0.2, close: 0.1 + 0.2, volume: 0 },
    { ...base, high: 1e21, low: 5e-7, bid: 1 / 3, ask: 2 ** 53 + 0.5 },
    { ...base, symbol: "BRK.B", volume: 0.5, timestamp: 0 },
  ];

  it.each(cases)("equals the generic row of the same hash ($symbol, close $close)", (tick) => {
    expect(plainTick(tick)).toBe(true);
    const { symbol, ...fields } = tick;
    const generic = hashRow({ key: keys.stockPrice(symbol), ttl: TTL.latestTick, replace: false, fields });
    expect(latestTickRow(tick)).toBe(generic);
    // Every value a string, so Redis keeps exactly what was formatted.
    expect(JSON.parse(latestTickRow(tick))).toEqual([
      TTL.latestTick,
      0,
      ...Object.entries(fields).flatMap(([name, value]) => [name, String(value)]),
    ]);
  });
});
