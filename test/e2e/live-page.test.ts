import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../src/api/server.js";
import { Engine } from "../../src/app/engine.js";
import { loadConfig } from "../../src/config.js";
import { createLogger, type VeloxLogger } from "../../src/log.js";
import { generateTicks, symbolNames } from "../../src/market/simulator.js";
import { TickValidator } from "../../src/market/tick-validator.js";
import { loadStrategyConfig } from "../../src/trading/strategy-config.js";
import { skipWithout } from "../helpers/backend.js";

/**
 * The live page in a real browser: headless Chromium (Debian `chromium`, driven by playwright-core)
 * opens `/`, and the page, fed by the WebSocket from a real engine (in-process changes, no Redis),
 * shows positions opening, their P&L moving, and closing.
 */

const CHROMIUM = "chromium";
const skip = skipWithout(CHROMIUM, "the live page's browser test");
/** A fresh token per run (hex: within the allowed characters). */
const TOKEN = randomBytes(16).toString("hex");

describe.skipIf(skip)("live page in headless Chromium", () => {
  const dir = mkdtempSync(join(tmpdir(), "velox-live-"));
  let logging: VeloxLogger;
  let engine: Engine;
  let api: ApiServer;
  let browser: Browser;
  let feeding = true;
  let fed: Promise<void>;

  beforeAll(async () => {
    const config = loadConfig({ VELOX_DATA_DIR: join(dir, "data") });
    logging = await createLogger({ level: "warn", console: false, dir: join(dir, "logs") });
    const symbols = symbolNames(3);
    engine = new Engine({
      config,
      strategies: loadStrategyConfig(),
      logging,
      runId: "live",
      symbols,
      validator: new TickValidator(),
    });
    api = await startApiServer({
      port: 0,
      data: engine.stores.data,
      strategies: () => [],
      status: () => ({ ...engine.snapshot() }),
      onPositionChange: (listener) => engine.onPositionChange(listener),
      security: { token: TOKEN },
      websocket: { statusIntervalMs: 500 },
    });
    // A steady feed, about 100 ticks a second in batches, until the test is over.
    fed = (async () => {
      const ticks = generateTicks({ seed: 11, rate: 100, symbols: 3, ticks: 1_000_000 });
      for (const tick of ticks) {
        if (!feeding) return;
        await engine.process(tick);
        if (engine.pipeline.counters().ticks % 5 === 0) await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const executablePath = execFileSync("sh", ["-c", `command -v ${CHROMIUM}`], { encoding: "utf8" }).trim();
    browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  }, 30_000);

  afterAll(async () => {
    feeding = false;
    await fed;
    await browser?.close();
    await api?.close();
    await engine?.close();
    await logging?.close();
  });

  it("asks for the token, then shows positions open, update and close; a screenshot is kept", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors: string[] = [];
    page.on("pageerror", (err) => errors.push(err.message));
    await page.goto(`${api.url}/`);
    // The WebSocket is refused without the token: the page says so and asks for it.
    await page.locator("#token-form").waitFor({ state: "visible", timeout: 10_000 });
    await expect(page.locator("#connection").textContent()).resolves.toBe("token required");
    await page.fill("#token", TOKEN);
    await page.click("#token-form button");
    await page.locator("#connection.open").waitFor({ timeout: 10_000 });

    // A position appears…
    const row = page.locator("#positions tbody tr").first();
    await row.waitFor({ timeout: 15_000 });
    const tradeId = await row.getAttribute("data-trade-id");
    expect(tradeId).toMatch(/^live-[a-z_]+-SYM\d+-\d+$/);
    // …a held position is marked again (an in-process `updated`, at most once a second): the same
    // row shows another price…
    const prices = () =>
      page.$$eval("#positions tbody tr", (rows) =>
        Object.fromEntries(
          rows.map((r) => [
            r.getAttribute("data-trade-id"),
            r.querySelector("td[data-field=price]")?.textContent ?? "",
          ]),
        ),
      );
    const moved = async () => {
      const deadline = Date.now() + 20_000;
      let before = await prices();
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        const now = await prices();
        if (Object.keys(now).some((id) => before[id] !== undefined && before[id] !== now[id])) return true;
        before = { ...before, ...now };
      }
      return false;
    };
    expect(await moved()).toBe(true);
    // …and one closes.
    await page.locator("#closed li").first().waitFor({ timeout: 20_000 });
    const closedText = await page.locator("#closed li").first().textContent();
    expect(closedText).toMatch(/closed$/);
    expect(errors).toEqual([]);
    // The status message's engine counters reach the page too.
    await page.locator("#ticks").filter({ hasText: /\d/ }).waitFor({ timeout: 5_000 });

    const shot = join(dir, "live-page.png");
    await page.screenshot({ path: shot, fullPage: true });
    expect(existsSync(shot) && statSync(shot).size).toBeGreaterThan(10_000);
    expect(errors).toEqual([]);
  }, 60_000);
});
