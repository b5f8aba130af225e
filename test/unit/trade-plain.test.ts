import { describe, expect, it } from "vitest";
import type { z } from "zod";
import {
  newTradeSchema,
  plainNewTrade,
  plainSlUpdate,
  plainTradeExit,
  slUpdateSchema,
  tradeExitSchema,
} from "../../src/domain/trade.js";

/** Values a field could be given: valid ones, edge cases and wrong types. */
const EDGES: unknown[] = [
  undefined,
  null,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -1,
  0,
  1e-300,
  2.5,
  "",
  " stop",
  "stop ",
  "x".repeat(64),
  "x".repeat(65),
  "a b",
  "AAPL",
  "aapl",
  "BUY",
  "SELL",
  "long",
  "short",
  "5",
  {},
  [],
  true,
];

function* mutants(base: Record<string, unknown>) {
  yield base;
  for (const key of [...Object.keys(base), "stop_loss_initial", "max_price", "min_price", "extra"]) {
    for (const edge of EDGES) yield { ...base, [key]: edge };
    const { [key]: _, ...without } = base;
    yield without;
  }
  // Two fields at once: the side and action pair, an optional with a bad neighbour.
  for (const a of EDGES) for (const b of EDGES.slice(12, 20)) yield { ...base, side: a, action: b };
}

const CASES: [string, z.ZodType, (value: unknown) => boolean, Record<string, unknown>][] = [
  [
    "new trade",
    newTradeSchema,
    plainNewTrade,
    {
      trade_id: "run-rsi_mr-AAPL-1",
      strategy_id: "rsi_mr",
      symbol: "AAPL",
      action: "BUY",
      side: "long",
      entry_time: 1_700_000_000.25,
      entry_price: 187.5,
      quantity: 10,
      fees: 0.19,
      stop_loss_initial: 183.1,
    },
  ],
  [
    "trade exit",
    tradeExitSchema,
    plainTradeExit,
    {
      exit_time: 1_700_000_060,
      exit_price: 189,
      exit_fees: 0,
      exit_reason: "trailing_stop",
      max_price: 190,
      min_price: 186,
    },
  ],
  [
    "stop move",
    slUpdateSchema,
    plainSlUpdate,
    { trade_id: "run-rsi_mr-AAPL-1", ts: 1_700_000_030, stop: 184, highest_price: 189, sl_type: "atr" },
  ],
];

describe("plain checks of the journal's inputs", () => {
  it.each(CASES)("a %s is plain only where its schema passes it unchanged", (_, schema, plain, base) => {
    let accepted = 0;
    let total = 0;
    for (const value of mutants(base)) {
      total++;
      if (!plain(value)) continue;
      accepted++;
      const parsed = schema.safeParse(value);
      expect(parsed.success, JSON.stringify(value)).toBe(true);
      expect(parsed.data, JSON.stringify(value)).toStrictEqual(value);
    }
    // The fills' own shape takes the fast path; most mutants do not.
    expect(plain(base)).toBe(true);
    expect(accepted).toBeGreaterThan(10);
    expect(accepted).toBeLessThan(total / 2);
  });

  it("takes the fast path for a trade without its optional stop and an exit without extremes", () => {
    const { stop_loss_initial: _, ...trade } = CASES[0]?.[3] ?? {};
    expect(plainNewTrade(trade)).toBe(true);
    expect(plainTradeExit({ exit_time: 1, exit_price: 2, exit_fees: 0, exit_reason: "target" })).toBe(true);
    // zod fills a missing fee in and strips an unknown key: neither value is plain.
    expect(plainNewTrade({ ...trade, fees: undefined })).toBe(false);
    expect(plainTradeExit({ exit_time: 1, exit_price: 2, exit_reason: "target" })).toBe(false);
  });
});
