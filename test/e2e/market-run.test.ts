import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SIMULATED_SECTORS } from "../../src/market/simulator.js";
import { keys, TTL } from "../../src/schema/redis-keys.js";
import { skipWithout } from "../helpers/backend.js";
import { RedisServer } from "../helpers/redis-server.js";
import { startVelox } from "../helpers/velox-process.js";

/**
 * Seed 004's keys from a real `velox run` (child process, real redis-server): the screener's
 * candidates and watchlist, the market context, position monitoring and bar indicators, in the
 * seed's shapes and with their TTLs; and `velox sentiment import` storing exactly the good lines.
 * The run uses 1 s and 5 s bars and a 1 s screener so that a 20 s run closes enough 1 s bars for RSI(14).
 */

const skip = skipWithout("redis-server", "the market picture runs");

describe.skipIf(skip)("velox run: seed 004's market picture", () => {
  let redis: RedisServer;
  let probe: Redis;
  let root: string;

  beforeAll(async () => {
    redis = await RedisServer.start();
    probe = new Redis(redis.url);
    root = mkdtempSync(join(tmpdir(), "velox-market-run-"));
  });
  afterAll(async () => {
    probe.disconnect();
    await redis.stop();
  });

  it("fills candidates, watchlist, context, monitoring and bar indicators in the seed's shapes", async () => {
    const strategies = join(root, "strategies.yaml");
    writeFileSync(
      strategies,
      readFileSync("config/strategies.yaml", "utf8").replace(
        "position_snapshot_interval_ms: 1000\n",
        "position_snapshot_interval_ms: 1000\n\nmarket:\n  timeframes: [1s, 5s]\n  screener:\n    interval_seconds: 1\n    timeframe: 1s\n    lookback_bars: 5\n",
      ),
    );
    const data = join(root, "data");
    const run = await startVelox(
      ["run", "--config", strategies, "--duration", "20", "--rate", "200", "--symbols", "20", "--seed", "5"],
      { VELOX_DATA_DIR: data, VELOX_LOG_DIR: join(root, "logs"), VELOX_REDIS_URL: redis.url },
    );
    expect(await run.exited, run.output()).toBe(0);

    const ranked = await probe.zrevrange(keys.candidatesRanked(), 0, -1, "WITHSCORES");
    expect(ranked.length).toBeGreaterThan(0);
    const details = await probe.hgetall(keys.candidatesDetails());
    const watchlist = await probe.lrange(keys.watchlist(), 0, -1);
    expect(new Set(watchlist)).toEqual(new Set(Object.keys(details)));
    for (let i = 0; i < ranked.length; i += 2) {
      const score = Number(ranked[i + 1]);
      expect(score).toBeGreaterThan(0);
      expect(score).toBeLessThanOrEqual(1);
      const detail = JSON.parse(details[ranked[i] as string] as string);
      expect(detail.price).toBeGreaterThan(0);
      expect(
        detail.signals.every((s: string) =>
          ["breakout", "volume_surge", "macd_cross", "support_bounce"].includes(s),
        ),
      ).toBe(true);
    }
    expect(await probe.ttl(keys.candidatesRanked())).toBeGreaterThan(TTL.candidates - 60);

    const context = JSON.parse((await probe.get(keys.marketContext())) as string);
    expect(context).toMatchObject({
      sector_performance: expect.any(Object),
      market_breadth: {
        advancing: expect.any(Number),
        declining: expect.any(Number),
        unchanged: expect.any(Number),
      },
      market_regime: expect.stringMatching(
        /^(high_volatility|bullish_trend|bearish_trend|bullish_consolidation|bearish_consolidation|neutral)$/,
      ),
      timestamp: expect.any(Number),
    });
    const b = context.market_breadth;
    expect(b.advancing + b.declining + b.unchanged).toBe(20);
    // 20 simulated symbols cover every sector the simulator assigns.
    expect(Object.keys(context.sector_performance).sort()).toEqual([...SIMULATED_SECTORS].sort());
    expect(await probe.ttl(keys.marketContext())).toBeGreaterThan(TTL.marketContext - 60);

    // Every symbol the journal still holds has its monitoring document, nothing else has one.
    const db = new Database(join(data, "velox.db"), { readonly: true });
    const open = db.prepare("SELECT DISTINCT symbol FROM trades WHERE exit_time IS NULL").all() as {
      symbol: string;
    }[];
    db.close();
    expect(open.length).toBeGreaterThan(0);
    for (const { symbol } of open) {
      const doc = JSON.parse((await probe.get(keys.positionMonitoring(symbol))) as string);
      expect(doc).toMatchObject({
        symbol,
        technical_signals: expect.objectContaining({
          rsi_1s: { value: expect.any(Number), signal: expect.any(String) },
        }),
        profit_target: { value: expect.any(Number), distance: expect.stringMatching(/^\d+\.\d%$/) },
        stop_loss: { value: expect.any(Number), distance: expect.stringMatching(/^\d+\.\d%$/) },
        time_in_trade: expect.stringMatching(/^\d\d:\d\d:\d\d$/),
      });
      expect(await probe.ttl(keys.positionMonitoring(symbol))).toBeGreaterThan(TTL.positionMonitoring - 60);
    }
    const monitored = await probe.keys("positions:monitoring:*");
    expect(monitored.sort()).toEqual(open.map((o) => keys.positionMonitoring(o.symbol)).sort());

    const indicators = await probe.hgetall(keys.stockIndicators("SYM001"));
    expect(indicators).toHaveProperty("rsi_14");
    expect(indicators).toHaveProperty("rsi_14_1s");
    const state = await probe.hgetall(keys.systemState());
    expect(JSON.parse(state.watchlist_count as string)).toBe(watchlist.length);
    expect(JSON.parse(state.last_scan_time as string)).toMatch(/^\d{4}-\d\d-\d\dT/);
  }, 90_000);

  it("imports sentiment: exactly the good lines are stored, each bad one is reported with its number", async () => {
    const good = (symbol: string, score: number) =>
      JSON.stringify({
        symbol,
        sentiment_score: score,
        sentiment_label: score > 0 ? "bullish" : "bearish",
        news_count: 1,
        latest_news: [
          {
            headline: "Results",
            source: "Wire",
            timestamp: "2025-05-09T07:30:00.000Z",
            url: "https://example.com/a",
          },
        ],
        timestamp: "2025-05-09T08:15:30.123Z",
      });
    const file = join(root, "sentiment.jsonl");
    writeFileSync(
      file,
      [
        good("AAPL", 0.75),
        "{not json",
        good("MSFT", -0.2),
        "",
        good("GOOGL", 1.5),
        good("bad symbol", 0.1),
        good("AMZN", 0.3).replace("https://example.com/a", "ftp://example.com/a"),
        good("META", 0.1),
      ].join("\n"),
    );
    const run = await startVelox(["sentiment", "import", file, "--redis-url", redis.url], {});
    expect(await run.exited, run.output()).toBe(1);
    const errors = run.errors();
    expect(errors).toMatch(new RegExp(`${file}:2: rejected: .*not JSON`));
    expect(errors).toMatch(
      new RegExp(`${file}:5: rejected: invalid record.sentiment_score: must be from -1 to 1`),
    );
    expect(errors).toMatch(new RegExp(`${file}:6: rejected: invalid record.symbol`));
    expect(errors).toMatch(
      new RegExp(`${file}:7: rejected: invalid record.latest_news.0.url: must be an http`),
    );
    expect(errors.match(/rejected:/g)).toHaveLength(4);
    expect(run.output()).toContain("3 stored, 4 rejected, 8 lines read");
    for (const symbol of ["AAPL", "MSFT", "META"]) {
      const stored = JSON.parse((await probe.get(keys.stockSentiment(symbol))) as string);
      expect(stored.timestamp).toBe(Date.parse("2025-05-09T08:15:30.123Z"));
      expect(await probe.ttl(keys.stockSentiment(symbol))).toBeGreaterThan(TTL.sentiment - 60);
    }
    for (const symbol of ["GOOGL", "AMZN"]) expect(await probe.exists(keys.stockSentiment(symbol))).toBe(0);

    // Without Redis there is nowhere to put it: one line naming the setting, exit 2.
    const none = await startVelox(["sentiment", "import", file], { VELOX_REDIS_URL: "" });
    expect(await none.exited).toBe(2);
    expect(none.errors().trim().split("\n")).toEqual([expect.stringContaining("VELOX_REDIS_URL")]);
  }, 60_000);
});
