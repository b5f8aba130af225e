import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Engine } from "../../src/app/engine.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { generateTicks, symbolNames } from "../../src/market/simulator.js";
import { TickValidator } from "../../src/market/tick-validator.js";
import { loadStrategyConfig } from "../../src/trading/strategy-config.js";

/**
 * The drawdown is measured on the equity curve itself: it must not depend on how often something
 * reads it (a scrape, a status line). It used to: the peak was raised only when `snapshot()` ran.
 */

async function engine(name: string): Promise<Engine> {
  const dir = mkdtempSync(join(tmpdir(), `velox-drawdown-${name}-`));
  return new Engine({
    config: loadConfig({ VELOX_DATA_DIR: join(dir, "data") }),
    strategies: loadStrategyConfig(),
    logging: await createLogger({ level: "silent", console: false, dir: join(dir, "logs") }),
    runId: name,
    symbols: symbolNames(),
    validator: new TickValidator(),
  });
}

describe("drawdown", () => {
  it("is the same whether the engine is read after every tick or only at the end", async () => {
    const ticks = [
      ...generateTicks({ seed: 42, rate: 2000, ticks: 6_000, startTime: Date.parse("2026-11-02T09:00:00Z") }),
    ];
    const [often, once] = await Promise.all([engine("often"), engine("once")]);
    let deepest = 0;
    for (const tick of ticks) {
      await often.process(tick);
      deepest = Math.max(deepest, often.snapshot().drawdown);
      await once.process(tick);
    }
    const readOnce = once.snapshot();
    const readOften = often.snapshot();
    expect(readOften.realizedPnl).toBe(readOnce.realizedPnl);
    expect(readOnce.drawdown).toBeCloseTo(readOften.drawdown, 9);
    // And it is a real drawdown: equity did fall from a peak during the run.
    expect(deepest).toBeGreaterThan(0);
    await Promise.all([often.close(), once.close()]);
  }, 60_000);
});
