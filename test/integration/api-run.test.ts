import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../src/api/server.js";
import { Engine } from "../../src/app/engine.js";
import { loadConfig } from "../../src/config.js";
import type { Trade } from "../../src/domain/trade.js";
import { createLogger, type VeloxLogger } from "../../src/log.js";
import { generateTicks, symbolNames } from "../../src/market/simulator.js";
import { TickValidator } from "../../src/market/tick-validator.js";
import { DataManager } from "../../src/storage/data-manager.js";
import { TradeJournal } from "../../src/storage/trade-journal.js";
import { loadStrategyConfig } from "../../src/trading/strategy-config.js";
import { getJson } from "../helpers/api.js";
import { skipWithout } from "../helpers/backend.js";
import { RedisServer } from "../helpers/redis-server.js";

/**
 * The seeds' routes over a journal and a Redis that a real run filled: 6,000 simulated ticks over
 * 4 symbols through the engine (strategies, stops, journal, cache window), then the API on top.
 */

const skip = skipWithout("redis-server", "API routes over a real run");

describe.skipIf(skip)("API over a journal and Redis filled by a real run", () => {
  const dir = mkdtempSync(join(tmpdir(), "velox-api-run-"));
  let redis: RedisServer;
  let logging: VeloxLogger;
  let engine: Engine;
  let api: ApiServer;
  let all: Trade[];

  beforeAll(async () => {
    redis = await RedisServer.start();
    const config = loadConfig({ VELOX_DATA_DIR: join(dir, "data"), VELOX_REDIS_URL: redis.url });
    logging = await createLogger({ level: "warn", console: false, dir: join(dir, "logs") });
    engine = new Engine({
      config,
      strategies: loadStrategyConfig(),
      logging,
      runId: "apirun",
      symbols: symbolNames(4),
      validator: new TickValidator(),
    });
    await until(() => engine.stores.cache?.connected === true);
    let n = 0;
    for (const tick of generateTicks({ seed: 5, rate: 400, symbols: 4, ticks: 6_000 })) {
      await engine.process(tick);
      // Commit windows between batches, as a live feed would see them.
      if (++n % 50 === 0) await new Promise((r) => setTimeout(r, 1));
    }
    await engine.stores.data.settle();
    await new Promise((r) => setTimeout(r, 100)); // one more cache window
    all = engine.stores.data.getRecentTrades({ limit: 10_000 });
    api = await startApiServer({
      port: 0,
      data: engine.stores.data,
      cache: engine.stores.cache,
      strategies: () => [],
    });
  }, 60_000);

  afterAll(async () => {
    await api?.close();
    await engine?.close();
    await logging?.close();
    await redis?.stop();
  });

  it("the run left open and closed trades to page through", () => {
    expect(all.filter((t) => t.status === "closed").length).toBeGreaterThan(20);
    expect(all.filter((t) => t.status === "open").length).toBeGreaterThan(0);
  });

  it("GET /api/trades pages through every trade once, newest first, with an opaque cursor", async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = cursor === null ? "limit=7" : `limit=7&cursor=${cursor}`;
      const { status, body } = await getJson(api, `/api/trades?${query}`);
      expect(status).toBe(200);
      expect(body.trades.length).toBeLessThanOrEqual(7);
      seen.push(...body.trades.map((t: Trade) => t.trade_id));
      cursor = body.next_cursor;
      if (cursor !== null) expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      pages++;
    } while (cursor !== null && pages < 1_000);
    expect(seen).toEqual(all.map((t) => t.trade_id));
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil(all.length / 7));
  });

  it("GET /api/trades filters by strategy, symbol and status", async () => {
    const sample = all[0] as Trade;
    const { body } = await getJson(
      api,
      `/api/trades?strategy=${sample.strategy_id}&symbol=${sample.symbol}&status=closed&limit=1000`,
    );
    const expected = all.filter(
      (t) => t.strategy_id === sample.strategy_id && t.symbol === sample.symbol && t.status === "closed",
    );
    expect(body.trades.map((t: Trade) => t.trade_id)).toEqual(expected.map((t) => t.trade_id));
    const open = await getJson(api, "/api/trades?status=open&limit=1000");
    expect(open.body.trades.every((t: Trade) => t.status === "open")).toBe(true);
    expect(open.body.trades.length).toBe(all.filter((t) => t.status === "open").length);
  });

  it("GET /api/trade/:id (seed 002) is /api/trades/:id; its CSV export parses back to the journal's stops", async () => {
    const trade = all.find(
      (t) => t.status === "closed" && engine.stores.journal.getSlUpdates(t.trade_id).length > 1,
    );
    expect(trade).toBeDefined();
    const id = (trade as Trade).trade_id;
    const seed = await getJson(api, `/api/trade/${id}`);
    const ours = await getJson(api, `/api/trades/${id}`);
    expect(seed.status).toBe(200);
    expect(seed.body).toEqual(ours.body);
    expect(seed.body.trade).toEqual(trade);

    const res = await fetch(`${api.url}/api/trade/${id}/export`);
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="trade_${id}.csv"`);
    const rows = parse(await res.text(), { columns: true, cast: true }) as Record<string, unknown>[];
    const stops = engine.stores.journal.getSlUpdates(id);
    expect(rows.filter((r) => r.kind === "stop_loss")).toEqual(
      stops.map((u) => ({
        kind: "stop_loss",
        time: new Date(u.ts * 1000).toISOString(),
        stop: u.stop,
        highest_price: u.highest_price,
        sl_type: u.sl_type,
      })),
    );
  });

  it("GET /api/services says which backends answer; /api/indicators reads what the run cached", async () => {
    const { body } = await getJson(api, "/api/services");
    expect(body).toEqual({ kafka: false, influxdb: false, redis: true, sqlite: true });
    const indicators = await getJson(api, `/api/indicators/${symbolNames(4)[0]}`);
    expect(indicators.status).toBe(200);
    expect(Object.keys(indicators.body.values).length).toBeGreaterThan(3);
  });

  it("GET /api/health asks SQLite: a journal that cannot answer is a 503", async () => {
    const journal = TradeJournal.open(join(dir, "broken.db"));
    const dm = new DataManager({ journal });
    const broken = await startApiServer({ port: 0, data: dm, strategies: () => [] });
    try {
      expect((await getJson(broken, "/api/health")).status).toBe(200);
      journal.close(); // the DataManager still holds it: only a real query can tell
      const { status, body } = await getJson(broken, "/api/health");
      expect(status).toBe(503);
      expect(body).toMatchObject({
        status: "down",
        stores: { sqlite: { up: false, error: expect.any(String) } },
      });
    } finally {
      await broken.close();
    }
  });
});

async function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}
