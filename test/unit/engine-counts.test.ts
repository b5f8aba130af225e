import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { Engine, MAX_SYMBOL_LABELS, OTHER_SYMBOL } from "../../src/app/engine.js";
import { loadConfig } from "../../src/config.js";
import type { Tick } from "../../src/domain/tick.js";
import { createLogger } from "../../src/log.js";
import { generateTicks, symbolNames } from "../../src/market/simulator.js";
import { TickValidator } from "../../src/market/tick-validator.js";
import { loadStrategyConfig } from "../../src/trading/strategy-config.js";

/** What the engine counts of the ticks it runs: per symbol (a bounded label set) and per second. */
describe("engine tick counts", () => {
  it("counts every run tick once: per symbol up to the label bound, the rest as other, and in the rate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-counts-"));
    const symbols = MAX_SYMBOL_LABELS + 50;
    const engine = new Engine({
      config: loadConfig({ VELOX_DATA_DIR: join(dir, "data") }),
      strategies: loadStrategyConfig(),
      logging: await createLogger({ level: "silent", console: false, dir: join(dir, "logs") }),
      runId: "counts",
      symbols: symbolNames(symbols),
      validator: new TickValidator(),
    });
    try {
      const ticks: Tick[] = [...generateTicks({ seed: 3, rate: 5_000, ticks: symbols * 4, symbols })];
      // Three kinds of hand-over: batches with a bad tick in them, a replay batch, one at a time.
      const bad = { ...ticks[0], close: -1 } as unknown as Tick;
      await engine.processBatch([...ticks.slice(0, 200), bad]);
      await engine.runBatch(ticks.slice(200, 500));
      for (const tick of ticks.slice(500)) await engine.process(tick);
      const fedUntil = Math.floor(Date.now() / 1000);

      const counts = engine.snapshot().ticksBySymbol;
      expect(Object.keys(counts)).toHaveLength(MAX_SYMBOL_LABELS + 1);
      // The simulator takes its symbols in turn, so the first 100 seen are SYM001 … SYM100.
      for (const symbol of symbolNames(symbols).slice(0, MAX_SYMBOL_LABELS)) expect(counts[symbol]).toBe(4);
      expect(counts[OTHER_SYMBOL]).toBe(50 * 4);

      // The rate is over whole past seconds: wait until the last tick's second is one of them.
      while (Math.floor(Date.now() / 1000) <= fedUntil) await sleep(50);
      const rate = engine.snapshot().tickRate;
      // Every tick of the run, over the one or two whole seconds since its first (the bad one not).
      expect([ticks.length, ticks.length / 2]).toContain(rate);
    } finally {
      await engine.close();
    }
  }, 30_000);
});
