import { describe, expect, it } from "vitest";
import { keys, TTL } from "../../src/schema/redis-keys.js";
import type { IndicatorWrite, LatestTick } from "../../src/storage/redis-cache-schemas.js";
import {
  hashRow,
  indicatorRow,
  latestTickRow,
  plainIndicators,
  plainTick,
} from "../../src/storage/redis-window.js";

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

describe("indicatorRow", () => {
  const write: IndicatorWrite = {
    symbol: "AAPL",
    timestamp: 1_746_778_530_123,
    values: { rsi_14: 58.69216744142796, macd: -0.005670429401391175, atr_14: 1e-7, ema_20: 2 ** 53 + 0.5 },
  };
  const cases: IndicatorWrite[] = [
    write,
    { ...write, values: { sma_5: 0.1 + 0.2, "2": 3, bollinger_width: 1e21 } },
    { ...write, values: {}, timestamp: 0 },
  ];

  it.each(cases)("equals the generic row of the same hash ($timestamp)", (w) => {
    expect(plainIndicators(w)).toBe(true);
    const generic = hashRow({
      key: keys.stockIndicators(w.symbol),
      ttl: TTL.indicators,
      replace: true,
      fields: Object.assign({}, w.values, { timestamp: w.timestamp }),
    });
    expect(indicatorRow(w)).toBe(generic);
    expect(JSON.parse(indicatorRow(w))).toEqual([
      TTL.indicators,
      1,
      ...Object.entries(w.values).flatMap(([name, value]) => [name, String(value)]),
      "timestamp",
      String(w.timestamp),
    ]);
  });

  it("leaves to zod what it cannot write as it is, however often a good name was seen before", () => {
    expect(plainIndicators(write)).toBe(true);
    expect(plainIndicators({ ...write, values: { ...write.values, timestamp: 1 } })).toBe(false);
    expect(plainIndicators({ ...write, values: { 'rsi"14': 50 } })).toBe(false);
    expect(plainIndicators({ ...write, values: { rsi_14: Number.NaN } })).toBe(false);
    expect(plainIndicators({ ...write, values: { rsi_14: Number.POSITIVE_INFINITY } })).toBe(false);
    expect(plainIndicators({ ...write, symbol: "aapl" })).toBe(false);
  });
});
