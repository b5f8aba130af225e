import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import type { Tick } from "../../src/domain/tick.js";
import { tickSchema } from "../../src/domain/tick.js";
import { MAX_BATCH, TURN_MS } from "../../src/market/pacer.js";
import {
  DEFAULT_START_TIME,
  DEFAULT_SYMBOLS,
  generateTicks,
  simulateBatches,
  simulateTicks,
  symbolNames,
} from "../../src/market/simulator.js";

async function collect(iterator: AsyncIterable<Tick>): Promise<Tick[]> {
  const out: Tick[] = [];
  for await (const tick of iterator) out.push(tick);
  return out;
}

describe("simulator", () => {
  it("gives exactly the same ticks for the same seed, paced or not", async () => {
    const options = { seed: 7, symbols: 4, rate: 50, ticks: 400 };
    const a = [...generateTicks(options)];
    const b = [...generateTicks(options)];
    const c = await collect(simulateTicks({ ...options, pacing: "max" }));
    expect(a).toHaveLength(400);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
  });

  it("hands the same ticks over in batches of at most MAX_BATCH, paced or not", async () => {
    const options = { seed: 7, symbols: 4, rate: 2000, ticks: 1000 };
    const expected = [...generateTicks(options)];
    for (const pacing of ["max", "realtime"] as const) {
      const sizes: number[] = [];
      const ticks: Tick[] = [];
      for await (const batch of simulateBatches({ ...options, pacing })) {
        sizes.push(batch.length);
        ticks.push(...batch);
      }
      expect(ticks, pacing).toEqual(expected);
      expect(Math.max(...sizes), pacing).toBeLessThanOrEqual(MAX_BATCH);
      expect(Math.min(...sizes), pacing).toBeGreaterThan(0);
    }
  });

  it("gives the event loop a turn every TURN_MS however long a batch takes to run", async () => {
    // A consumer that spends 2 × TURN_MS on each batch: a timer must still run between batches.
    let fired = 0;
    const timer = setInterval(() => fired++, 1);
    let batches = 0;
    try {
      for await (const _ of simulateBatches({ pacing: "max", ticks: 20 * MAX_BATCH })) {
        const until = performance.now() + 2 * TURN_MS;
        while (performance.now() < until) {
          // busy, as the pipeline is
        }
        batches++;
      }
    } finally {
      clearInterval(timer);
    }
    expect(batches).toBe(20);
    expect(fired).toBeGreaterThanOrEqual(batches - 2);
  });

  it("gives different ticks for a different seed", () => {
    const a = [...generateTicks({ seed: 1, ticks: 50 })];
    const b = [...generateTicks({ seed: 2, ticks: 50 })];
    expect(b.map((t) => t.close)).not.toEqual(a.map((t) => t.close));
    // Same clock and symbols: only the prices depend on the seed.
    expect(b.map((t) => [t.symbol, t.timestamp])).toEqual(a.map((t) => [t.symbol, t.timestamp]));
  });

  it("names symbols SYM001… from a count, or uses the names given", () => {
    expect(symbolNames(3)).toEqual(["SYM001", "SYM002", "SYM003"]);
    expect(symbolNames(1200)[1199]).toBe("SYM1200");
    expect(symbolNames()).toEqual([...DEFAULT_SYMBOLS]);
    const ticks = [...generateTicks({ symbols: ["BTC-USD", "ETH-USD"], ticks: 4 })];
    expect(ticks.map((t) => t.symbol)).toEqual(["BTC-USD", "ETH-USD", "BTC-USD", "ETH-USD"]);
  });

  it("keeps every tick valid: positive prices, high ≥ open/close ≥ low, bid < ask, timestamps increasing per symbol", () => {
    const ticks = [...generateTicks({ seed: 99, symbols: 5, rate: 2000, ticks: 5000, volatility: 2 })];
    const last = new Map<string, number>();
    for (const t of ticks) {
      expect(tickSchema.safeParse(t).success).toBe(true);
      expect(t.low).toBeGreaterThan(0);
      expect(t.high).toBeGreaterThanOrEqual(t.low);
      expect(t.high).toBeGreaterThanOrEqual(Math.max(t.open, t.close));
      expect(t.low).toBeLessThanOrEqual(Math.min(t.open, t.close));
      expect(t.bid).toBeGreaterThan(0);
      expect(t.bid as number).toBeLessThan(t.ask as number);
      expect(Number.isInteger(t.volume) && t.volume > 0).toBe(true);
      expect(Number.isInteger(t.timestamp)).toBe(true);
      const previous = last.get(t.symbol);
      if (previous !== undefined) expect(t.timestamp).toBeGreaterThan(previous);
      last.set(t.symbol, t.timestamp);
    }
    // Each bar opens at the previous close of its symbol.
    const aapl = ticks.filter((t) => t.symbol === "SYM001");
    for (let i = 1; i < aapl.length; i++) expect(aapl[i]?.open).toBe(aapl[i - 1]?.close);
  });

  it("stamps ticks on the simulated clock at the configured rate", () => {
    const start = Date.UTC(2025, 5, 1);
    const ticks = [...generateTicks({ startTime: start, rate: 250, ticks: 1001 })];
    expect(ticks[0]?.timestamp).toBe(start);
    // 1000 intervals at 4 ms.
    expect(ticks.at(-1)?.timestamp).toBe(start + 4000);
    const odd = [...generateTicks({ rate: 3, ticks: 4 })];
    expect(odd.map((t) => t.timestamp - DEFAULT_START_TIME)).toEqual([0, 333, 666, 1000]);
  });

  it("stops at a simulated duration", () => {
    const ticks = [...generateTicks({ rate: 10, durationMs: 5000 })];
    expect(ticks).toHaveLength(50);
    expect((ticks.at(-1)?.timestamp ?? 0) - DEFAULT_START_TIME).toBe(4900);
  });

  it("checks its options up front", () => {
    expect(() => generateTicks({ rate: 0 })).toThrow(ValidationError);
    expect(() => generateTicks({ symbols: ["aapl"] })).toThrow(/simulator\.symbols/);
    expect(() => generateTicks({ symbols: ["A", "A"] })).toThrow(ValidationError);
    expect(() => generateTicks({ seed: 1.5 })).toThrow(ValidationError);
    // One symbol cannot get distinct whole-ms timestamps above 1000 ticks/s.
    expect(() => generateTicks({ symbols: 1, rate: 1500 })).toThrow(/simulator\.rate/);
    expect(() => simulateTicks({ rate: -1 })).toThrow(ValidationError);
  });

  it("paces in real time at the configured rate, 2000 ticks/s included", async () => {
    let begin = performance.now();
    const slow = await collect(simulateTicks({ rate: 100, ticks: 31 }));
    const slowMs = performance.now() - begin;
    expect(slow).toHaveLength(31);
    // 30 intervals of 10 ms: about 300 ms; a generous bound either side.
    expect(slowMs).toBeGreaterThanOrEqual(250);
    expect(slowMs).toBeLessThan(2000);

    begin = performance.now();
    const fast = await collect(simulateTicks({ rate: 2000, ticks: 2001 }));
    const fastMs = performance.now() - begin;
    expect(fast).toHaveLength(2001);
    expect(fastMs).toBeGreaterThanOrEqual(900);
    expect(fastMs).toBeLessThan(3000);
  });

  it("runs far faster than the rate with max pacing", async () => {
    const begin = performance.now();
    const ticks = await collect(simulateTicks({ rate: 1, ticks: 2000, pacing: "max" }));
    expect(ticks).toHaveLength(2000);
    expect(performance.now() - begin).toBeLessThan(1500);
  });

  it("stops when aborted, also in the middle of a wait", async () => {
    const controller = new AbortController();
    const seen: Tick[] = [];
    for await (const tick of simulateTicks({ pacing: "max", signal: controller.signal })) {
      seen.push(tick);
      if (seen.length === 100) controller.abort();
    }
    expect(seen).toHaveLength(100);

    // One tick per second: the second tick is a long wait away; the abort cuts it short.
    const waiting = new AbortController();
    const begin = performance.now();
    setTimeout(() => waiting.abort(), 100);
    const ticks = await collect(simulateTicks({ rate: 1, signal: waiting.signal }));
    expect(ticks).toHaveLength(1);
    expect(performance.now() - begin).toBeLessThan(900);
  });

  it("lets timers run while it produces ticks without end", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    let count = 0;
    for await (const _ of simulateTicks({ pacing: "max", signal: controller.signal })) count++;
    expect(count).toBeGreaterThan(0);
  });
});
