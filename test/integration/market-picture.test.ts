import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiServer, startApiServer } from "../../src/api/server.js";
import { Engine } from "../../src/app/engine.js";
import { loadConfig } from "../../src/config.js";
import type { Tick } from "../../src/domain/tick.js";
import { createLogger, type VeloxLogger } from "../../src/log.js";
import { CsvReplay } from "../../src/market/csv-replay.js";
import {
  generateTicks,
  SIMULATED_SECTORS,
  simulatedSector,
  symbolNames,
} from "../../src/market/simulator.js";
import { TickValidator } from "../../src/market/tick-validator.js";
import { VeloxMetrics } from "../../src/metrics/exporter.js";
import {
  MONITORING_PACKAGE_SCHEMA_PATH,
  type MonitoringPackage,
} from "../../src/schema/monitoring-package.js";
import { keys } from "../../src/schema/redis-keys.js";
import { sectorResolver } from "../../src/trading/market-config.js";
import { parseStrategyConfigYaml, type StrategyConfig } from "../../src/trading/strategy-config.js";
import { skipWithout } from "../helpers/backend.js";
import { RedisServer } from "../helpers/redis-server.js";
import { until } from "../helpers/wait.js";

/**
 * Seed 004's market picture through the real engine and a real redis-server: bars and bar
 * indicators from a replayed CSV against hand-computed figures, a bar-timeframe strategy, and the
 * decision package of `GET /api/monitoring/:symbol` validated against the published JSON Schema.
 */

const STRATEGIES = readFileSync("config/strategies.yaml", "utf8");
const T0 = Date.UTC(2026, 10, 2, 9, 0, 0);

/** The default strategies file with a `market:` section (and supertrend on `timeframe`). */
function strategiesWith(market: string, supertrendTimeframe?: string): StrategyConfig {
  let text = STRATEGIES.replace(
    "position_snapshot_interval_ms: 1000\n",
    `position_snapshot_interval_ms: 1000\n\nmarket:\n${market}\n`,
  );
  if (supertrendTimeframe) {
    text = text.replace(
      "  - id: supertrend\n    type: supertrend\n",
      `  - id: supertrend\n    type: supertrend\n    timeframe: ${supertrendTimeframe}\n`,
    );
  }
  return parseStrategyConfigYaml(text);
}

const skip = skipWithout("redis-server", "the market picture tests");

describe.skipIf(skip)("market picture", () => {
  let redis: RedisServer;
  let probe: Redis;
  let dir: string;
  const logs: VeloxLogger[] = [];

  beforeAll(async () => {
    redis = await RedisServer.start();
    probe = new Redis(redis.url);
    // The drill below stops the server under it: its reconnect errors are expected.
    probe.on("error", () => {});
    dir = mkdtempSync(join(tmpdir(), "velox-market-"));
  });
  afterAll(async () => {
    probe.disconnect();
    for (const l of logs) await l.close();
    await redis.stop();
  });

  async function engine(
    name: string,
    strategies: StrategyConfig,
    source: "replay" | "simulator",
    observeScan?: (seconds: number) => void,
  ) {
    const logging = await createLogger({ level: "warn", console: false, dir: join(dir, name, "logs") });
    logs.push(logging);
    return new Engine({
      config: loadConfig({
        VELOX_DATA_DIR: join(dir, name),
        VELOX_REDIS_URL: redis.url,
        VELOX_REDIS_FLUSH_MS: "20",
      }),
      strategies,
      logging,
      runId: name,
      symbols: [],
      validator: new TickValidator({ source }),
      observeScan,
      sectorOf: sectorResolver(
        strategies.market.sectors,
        source === "simulator" ? simulatedSector : undefined,
      ),
    });
  }

  it("replays a CSV into 1 m and 5 m bars and bar indicators equal to hand-computed figures", async () => {
    await probe.flushall();
    // One print every 15 s for 90 minutes on a known path; each tick ±0.02 around its price.
    const rows: { at: number; price: number; volume: number }[] = [];
    for (let i = 0; i < 360; i++) {
      rows.push({
        at: T0 + i * 15_000,
        price: Math.round((100 + 3 * Math.sin(i / 7) + i * 0.01) * 100) / 100,
        volume: 100 + (i % 7) * 10,
      });
    }
    const csv = join(dir, "known.csv");
    writeFileSync(
      csv,
      `timestamp,symbol,open,high,low,close,volume\n${rows
        .map(
          (r) =>
            `${new Date(r.at).toISOString()},TEST,${r.price},${(r.price + 0.02).toFixed(2)},${(r.price - 0.02).toFixed(2)},${r.price},${r.volume}`,
        )
        .join("\n")}\n`,
    );

    // Hand-made bars: bucket by the epoch-aligned minute (or 5 minutes), the last bucket still open.
    const handBars = (ms: number) => {
      const buckets = new Map<number, typeof rows>();
      for (const r of rows) {
        const start = r.at - (r.at % ms);
        buckets.set(start, [...(buckets.get(start) ?? []), r]);
      }
      return [...buckets.entries()].slice(0, -1).map(([start, rs]) => ({
        start,
        open: rs[0]?.price,
        high: Math.round(Math.max(...rs.map((r) => r.price + 0.02)) * 100) / 100,
        low: Math.round(Math.min(...rs.map((r) => r.price - 0.02)) * 100) / 100,
        close: rs.at(-1)?.price,
        volume: rs.reduce((a, r) => a + r.volume, 0),
      }));
    };
    const oneMinute = handBars(60_000);
    const fiveMinutes = handBars(300_000);
    expect(oneMinute).toHaveLength(89);
    expect(fiveMinutes).toHaveLength(17);

    // Wilder's RSI(14) of the 5 m closes, by hand.
    const closes = fiveMinutes.map((b) => b.close as number);
    let gain = 0;
    let loss = 0;
    for (let i = 1; i <= 14; i++) {
      const d = (closes[i] as number) - (closes[i - 1] as number);
      gain += Math.max(d, 0) / 14;
      loss += Math.max(-d, 0) / 14;
    }
    for (let i = 15; i < closes.length; i++) {
      const d = (closes[i] as number) - (closes[i - 1] as number);
      gain = (gain * 13 + Math.max(d, 0)) / 14;
      loss = (loss * 13 + Math.max(-d, 0)) / 14;
    }
    const rsi5m = 100 - 100 / (1 + gain / loss);
    // Bollinger upper band of the last 20 1 m closes: mean + 2 × population standard deviation.
    const last20 = oneMinute.slice(-20).map((b) => b.close as number);
    const mean = last20.reduce((a, b) => a + b, 0) / 20;
    const sd = Math.sqrt(last20.reduce((a, c) => a + (c - mean) ** 2, 0) / 20);

    const config = strategiesWith("  timeframes: [1m, 5m]", "1m");
    const e = await engine("replay", config, "replay");
    await until(() => e.stores.cache?.connected === true);
    const replay = await CsvReplay.open({ path: csv, validator: e.validator });
    const supertrendSignals: Tick[] = [];
    for await (const tick of replay) {
      const outcome = await e.run(tick);
      for (const s of outcome?.signals ?? [])
        if (s.strategy_id === "supertrend") supertrendSignals.push(outcome?.tick as Tick);
    }
    const bars = (tf: string) =>
      e.pipeline.bars.bars("TEST", tf).map(({ start, open, high, low, close, volume }) => ({
        start,
        open,
        high: Math.round(high * 100) / 100,
        low: Math.round(low * 100) / 100,
        close,
        volume,
      }));
    // The book keeps the last look-back + 1 bars.
    expect(bars("1m")).toEqual(oneMinute.slice(-bars("1m").length));
    expect(bars("5m")).toEqual(fiveMinutes.slice(-bars("5m").length));
    expect(bars("5m").length).toBeGreaterThan(10);
    expect(e.snapshot().pipeline.barsClosed).toEqual({ "1m": 89, "5m": 17 });
    expect(e.pipeline.bars.values("TEST", "5m").latest.rsi_14).toBeCloseTo(rsi5m, 9);
    expect(e.pipeline.bars.values("TEST", "1m").latest.bollinger_upper).toBeCloseTo(mean + 2 * sd, 9);
    // A 1 m strategy decides only on the tick that closes a minute (the first of the next one).
    expect(supertrendSignals.length).toBeGreaterThan(0);
    for (const t of supertrendSignals) expect(t.timestamp % 60_000).toBe(0);

    await e.close();
    const hash = await probe.hgetall(keys.stockIndicators("TEST"));
    expect(Number(hash.rsi_14_5m)).toBeCloseTo(rsi5m, 9);
    expect(Number(hash.bollinger_upper_1m)).toBeCloseTo(mean + 2 * sd, 9);
    // The tick indicators stay in the same hash, next to the bars'.
    expect(hash).toHaveProperty("rsi_14");
    expect(hash).toHaveProperty("ema_20_1m");
  }, 60_000);

  describe("the decision package", () => {
    let e: Engine;
    let api: ApiServer;
    const sentiment: string[] = [];
    const metrics = new VeloxMetrics({ drawdownLimit: 0 });
    const validate = (() => {
      const ajv = new Ajv2020({ allErrors: true, strict: true });
      addFormats.default(ajv);
      return ajv.compile(JSON.parse(readFileSync(MONITORING_PACKAGE_SCHEMA_PATH, "utf8")));
    })();
    const get = (path: string) => fetch(`${api.url}${path}`);
    const pkgOf = async (path: string) => (await (await get(path)).json()) as MonitoringPackage;
    const errorOf = async (r: Response) => (await r.json()) as { error: string; field?: string };

    beforeAll(async () => {
      await probe.flushall();
      const config = strategiesWith(
        "  timeframes: [5s, 15s]\n  screener:\n    interval_seconds: 2\n    timeframe: 5s\n    lookback_bars: 5",
      );
      e = await engine("package", config, "simulator", metrics.observeScan);
      metrics.attach(e);
      // Fed while Redis is up: a window the cache cannot take is skipped (counted), not queued.
      await until(() => e.stores.cache?.connected === true);
      let lastSym001 = 0;
      for (const tick of generateTicks({
        seed: 3,
        rate: 20,
        ticks: 6000,
        symbols: 20,
        startTime: Date.now() - 310_000,
      })) {
        await e.process(tick);
        if (tick.symbol === "SYM001") lastSym001 = tick.timestamp;
      }
      // Two cache windows: the last scan, marks and monitoring documents are written.
      await new Promise((r) => setTimeout(r, 100));
      // A symbol's indicator hash goes out at most once per VELOX_REDIS_INDICATORS_MS (250 ms),
      // so SYM001's last one may follow its last tick by that long, or more on a loaded machine.
      await until(
        async () => Number(await probe.hget(keys.stockIndicators("SYM001"), "timestamp")) >= lastSym001,
      );
      api = await startApiServer({
        port: 0,
        data: e.stores.data,
        cache: e.stores.cache,
        strategies: () => [],
        timeframes: config.market.timeframes,
        observeSentiment: (result) => {
          sentiment.push(result);
          metrics.observeSentiment(result);
        },
      });
    }, 60_000);
    afterAll(async () => {
      await api?.close();
      await e?.close();
    });

    it("fills candidates, watchlist, market context and monitoring in seed 004's shapes, with their TTLs", async () => {
      const ranked = await probe.zrevrange(keys.candidatesRanked(), 0, -1, "WITHSCORES");
      expect(ranked.length).toBeGreaterThan(0);
      const details = await probe.hgetall(keys.candidatesDetails());
      for (let i = 0; i < ranked.length; i += 2) {
        const detail = JSON.parse(details[ranked[i] as string] as string);
        expect(Object.keys(detail).sort()).toEqual(["price", "signals", "timestamp"]);
        expect(detail.signals.length).toBeGreaterThan(0);
      }
      expect(await probe.lrange(keys.watchlist(), 0, -1)).toHaveLength(ranked.length / 2);
      const context = JSON.parse((await probe.get(keys.marketContext())) as string);
      expect(Object.keys(context).sort()).toEqual(
        [
          "index_change_pct",
          "market_breadth",
          "market_regime",
          "sector_performance",
          "symbols",
          "timestamp",
          "vix",
        ].sort(),
      );
      const b = context.market_breadth;
      expect(b.advancing + b.declining + b.unchanged).toBe(20);
      // 20 simulated symbols cover every sector the simulator assigns.
      expect(Object.keys(context.sector_performance).sort()).toEqual([...SIMULATED_SECTORS].sort());
      expect(await probe.ttl(keys.marketContext())).toBeGreaterThan(3500);
      expect(await probe.ttl(keys.candidatesRanked())).toBeGreaterThan(86_000);

      const held = new Set(e.pipeline.tracker.positions().map((p) => p.symbol));
      expect(held.size).toBeGreaterThan(0);
      for (const symbol of held) {
        const doc = JSON.parse((await probe.get(keys.positionMonitoring(symbol))) as string);
        expect(doc).toMatchObject({
          symbol,
          profit_target: { distance: expect.stringMatching(/%$/) },
          stop_loss: {},
          time_in_trade: expect.stringMatching(/^\d\d:\d\d:\d\d$/),
        });
        expect(Object.keys(doc.technical_signals).some((k) => k.endsWith("_5s"))).toBe(true);
        expect(await probe.ttl(keys.positionMonitoring(symbol))).toBeGreaterThan(250);
      }
      // No document for a symbol that is not held.
      for (const symbol of symbolNames(20).filter((s) => !held.has(s))) {
        expect(await probe.exists(keys.positionMonitoring(symbol)), symbol).toBe(0);
      }
      // Bar indicators next to the tick indicators.
      const hash = await probe.hgetall(keys.stockIndicators("SYM001"));
      expect(Object.keys(hash).some((k) => k.endsWith("_5s"))).toBe(true);
    });

    it("answers GET /api/monitoring/:symbol as the published schema says, held or not; a bad symbol is a 400", async () => {
      const held = e.pipeline.tracker.positions()[0]?.symbol as string;
      const heldPackage = await pkgOf(`/api/monitoring/${held}`);
      expect(validate(heldPackage), JSON.stringify(validate.errors)).toBe(true);
      expect(heldPackage.positions.length).toBeGreaterThan(0);
      expect(heldPackage.monitoring).not.toBeNull();
      expect(heldPackage.market_context).not.toBeNull();
      expect(Object.keys(heldPackage.indicators?.by_timeframe ?? {}).sort()).toEqual(["15s", "5s", "tick"]);

      const free = symbolNames(20).find(
        (s) => !e.pipeline.tracker.positions().some((p) => p.symbol === s),
      ) as string;
      const freePackage = await pkgOf(`/api/monitoring/${free}`);
      expect(validate(freePackage), JSON.stringify(validate.errors)).toBe(true);
      expect(freePackage.positions).toEqual([]);
      expect(freePackage.monitoring).toBeNull();
      expect(freePackage.price?.last).toBeGreaterThan(0);

      // The schema is not a rubber stamp: a package with a field renamed fails it.
      const { price, ...renamed } = freePackage;
      expect(validate({ ...renamed, prices: price })).toBe(false);

      const bad = await get("/api/monitoring/bad$symbol");
      expect(bad.status).toBe(400);
      expect((await errorOf(bad)).field).toBe("symbol");
    });

    it("takes sentiment in through POST /api/sentiment/:symbol, and refuses a bad record with the field", async () => {
      const record = {
        sentiment_score: 0.75,
        sentiment_label: "bullish",
        news_count: 1,
        latest_news: [
          {
            headline: "Company XYZ Reports Strong Earnings",
            source: "Financial Times",
            timestamp: "2025-05-09T07:30:00.000Z",
            url: "https://example.com/news/xyz-earnings",
          },
        ],
        timestamp: "2025-05-09T08:15:30.123Z",
      };
      const post = (body: unknown) =>
        fetch(`${api.url}/api/sentiment/SYM002`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      const ok = await post(record);
      expect(ok.status).toBe(201);
      const bad = await post({ ...record, sentiment_score: 2 });
      expect(bad.status).toBe(400);
      expect((await errorOf(bad)).field).toBe("sentiment.sentiment_score");
      const badUrl = await post({
        ...record,
        latest_news: [{ ...record.latest_news[0], url: "javascript:alert(1)" }],
      });
      expect(badUrl.status).toBe(400);
      const badSymbol = await fetch(`${api.url}/api/sentiment/not$a$symbol`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(record),
      });
      expect(badSymbol.status).toBe(400);
      expect((await errorOf(badSymbol)).field).toBe("symbol");
      expect(sentiment).toEqual(["accepted", "rejected", "rejected", "rejected"]);

      const pkg = await pkgOf("/api/monitoring/SYM002");
      expect(validate(pkg), JSON.stringify(validate.errors)).toBe(true);
      expect(pkg.sentiment).toMatchObject({
        sentiment_score: 0.75,
        sentiment_label: "bullish",
        timestamp: "2025-05-09T08:15:30.123Z",
      });
      expect(pkg.sentiment?.latest_news[0]?.timestamp).toBe("2025-05-09T07:30:00.000Z");
    });

    it("exports the market picture's metrics: bars, scans, breadth, sectors, sentiment records", async () => {
      const body = (await metrics.scrape(false)).body;
      const value = (series: string) => {
        const line = body.split("\n").find((l: string) => l.startsWith(`${series} `));
        return line === undefined ? undefined : Number(line.split(" ")[1]);
      };
      const { pipeline, market } = e.snapshot();
      expect(value('velox_bars_closed_total{timeframe="5s"}')).toBe(pipeline.barsClosed["5s"]);
      expect(value('velox_bars_closed_total{timeframe="15s"}')).toBe(pipeline.barsClosed["15s"]);
      expect(value("velox_screener_runs_total")).toBe(market.scans);
      expect(market.scans).toBeGreaterThan(100);
      expect(value("velox_screener_duration_seconds_count")).toBe(market.scans);
      const breadth = ["advancing", "declining", "unchanged"].map(
        (d) => value(`velox_market_breadth{direction="${d}"}`) ?? 0,
      );
      expect(breadth.reduce((a, b) => a + b, 0)).toBe(20);
      expect(value('velox_sector_change_percent{sector="energy"}')).toBe(market.sectors.energy);
      expect(value('velox_sentiment_records_total{result="accepted"}')).toBe(1);
      expect(value('velox_sentiment_records_total{result="rejected"}')).toBe(3);
    });

    it("answers from the journal when Redis is gone: positions, and every cache part null", async () => {
      const held = e.pipeline.tracker.positions()[0]?.symbol as string;
      await redis.kill();
      try {
        await new Promise((r) => setTimeout(r, 200));
        const response = await get(`/api/monitoring/${held}`);
        expect(response.status).toBe(200);
        const pkg = (await response.json()) as MonitoringPackage;
        expect(validate(pkg), JSON.stringify(validate.errors)).toBe(true);
        expect(pkg.sources).toEqual({ redis: false, journal: true });
        expect(pkg.positions.length).toBeGreaterThan(0);
        expect(pkg.price).toBeNull();
      } finally {
        await redis.launch();
      }
    });
  });
});
