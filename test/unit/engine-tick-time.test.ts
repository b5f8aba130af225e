import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/app/engine.js";
import { loadConfig } from "../../src/config.js";
import type { Tick } from "../../src/domain/tick.js";
import { createLogger } from "../../src/log.js";
import { generateTicks, symbolNames } from "../../src/market/simulator.js";
import { TickValidator } from "../../src/market/tick-validator.js";
import { loadStrategyConfig } from "../../src/trading/strategy-config.js";

/** Holds the thread for `ms` (a validator that takes its time, measurably). */
function hold(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: the point is time spent on the engine's thread
  }
}

/**
 * `velox_tick_to_store_seconds` runs from a tick's arrival: in a batch, a tick's time starts where
 * the one before it ended, so its own validation is in it and no time between ticks is lost.
 */
describe("engine tick time", () => {
  it("counts each valid tick of a batch once, from the end of the one before, its validation included", async () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-tick-time-"));
    const observed: number[] = [];
    const validator = new TickValidator();
    const validate = validator.validate.bind(validator);
    const slow = Object.assign(validator, {
      validate: (...args: Parameters<TickValidator["validate"]>) => {
        hold(3);
        return validate(...args);
      },
    });
    const engine = new Engine({
      config: loadConfig({ VELOX_DATA_DIR: join(dir, "data") }),
      strategies: loadStrategyConfig(),
      logging: await createLogger({ level: "silent", console: false, dir: join(dir, "logs") }),
      runId: "tick-time",
      symbols: symbolNames(),
      validator: slow,
      observeTick: (seconds) => observed.push(seconds),
    });
    try {
      const ticks: Tick[] = [...generateTicks({ seed: 5, rate: 1_000, ticks: 12 })];
      const bad = { ...ticks[0], close: -1 } as unknown as Tick;
      const started = performance.now();
      await engine.processBatch([...ticks.slice(0, 6), bad, ...ticks.slice(6)]);
      const wall = (performance.now() - started) / 1000;

      expect(observed).toHaveLength(ticks.length);
      // Every tick's time holds its validation (3 ms); the one after the bad tick holds both.
      for (const seconds of observed) expect(seconds).toBeGreaterThanOrEqual(0.003);
      expect(observed[6]).toBeGreaterThanOrEqual(0.006);
      // Back to back: together they are the batch's time, up to its last tick.
      const sum = observed.reduce((a, b) => a + b, 0);
      expect(sum).toBeLessThanOrEqual(wall);
      expect(sum).toBeGreaterThanOrEqual(0.003 * (ticks.length + 1));
    } finally {
      await engine.close();
    }
  }, 30_000);
});
