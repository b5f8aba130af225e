import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NewTrade } from "../../src/domain/trade.js";

/**
 * A long trade for strategy rsi_agg: BUY 10 RELIANCE at 100, entered at `entryTime` (unix
 * seconds). No fees and no initial stop unless `overrides` give them.
 */
export function makeTrade(id: string, entryTime: number, overrides: Partial<NewTrade> = {}): NewTrade {
  return {
    trade_id: id,
    strategy_id: "rsi_agg",
    symbol: "RELIANCE",
    action: "BUY",
    side: "long",
    entry_time: entryTime,
    entry_price: 100,
    quantity: 10,
    ...overrides,
  };
}

/** A path for a new journal database (`velox.db`) in a fresh temp dir named `prefix` plus a suffix. */
export function tempJournalPath(prefix: string): string {
  return join(mkdtempSync(join(tmpdir(), prefix)), "velox.db");
}
