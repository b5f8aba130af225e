import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { StoreUnavailableError, ValidationError } from "../../src/domain/errors.js";
import { channels, keys, TTL } from "../../src/schema/redis-keys.js";
import {
  type Candidate,
  type LatestTick,
  type Position,
  type PositionChange,
  type PositionWrite,
  RedisCache,
  type Sentiment,
  type Signal,
  type StopState,
} from "../../src/storage/redis-cache.js";
import { skipWithout } from "../helpers/backend.js";
import { freePort, RedisServer } from "../helpers/redis-server.js";
import { until } from "../helpers/wait.js";

const skip = skipWithout("redis-server", "Redis cache tests");

const NOW = 1_746_778_530_123;

const tick: LatestTick = {
  symbol: "AAPL",
  last: 150.25,
  open: 149.8,
  high: 151.2,
  low: 149.5,
  close: 150.1,
  volume: 25_000_000,
  bid: 150.24,
  ask: 150.26,
  timestamp: NOW,
};

const position: Position = {
  trade_id: "T-001",
  side: "long",
  entry_price: 2450.5,
  quantity: 10,
  entry_time: NOW,
  stop_loss: 2400,
};

describe.skipIf(skip)("RedisCache against a real redis-server", () => {
  let server: RedisServer;
  let cache: RedisCache;
  let admin: Redis;

  /** The key's TTL equals the schema constant, allowing a second of slack. */
  async function expectTtl(key: string, ttl: number): Promise<void> {
    const remaining = await admin.ttl(key);
    expect(remaining).toBeGreaterThanOrEqual(ttl - 1);
    expect(remaining).toBeLessThanOrEqual(ttl);
  }

  beforeAll(async () => {
    server = await RedisServer.start();
    cache = await RedisCache.connect(server.url);
    admin = new Redis(server.port, "127.0.0.1");
  });

  afterAll(async () => {
    await cache?.close();
    admin?.disconnect();
    await server?.stop();
  });

  beforeEach(async () => {
    await admin.flushdb();
  });

  it("reports health with a latency and exposes the connection state", async () => {
    expect(cache.connected).toBe(true);
    const health = await cache.health();
    expect(health.up).toBe(true);
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("rejects connect with StoreUnavailableError when nothing listens", async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    await expect(RedisCache.connect(url)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it("round-trips the latest tick as numbers in a hash with the tick TTL", async () => {
    await cache.setLatestTick(tick);
    expect(await cache.getLatestTick("AAPL")).toEqual(tick);
    expect(await admin.type(keys.stockPrice("AAPL"))).toBe("hash");
    await expectTtl(keys.stockPrice("AAPL"), TTL.latestTick);
    expect(await cache.getLatestTick("MSFT")).toBeNull();
  });

  it("replaces indicators so dropped ones do not linger", async () => {
    await cache.setIndicators("AAPL", { rsi_14: 65.75, macd: 0.5, macd_signal: 0.3 }, NOW);
    await cache.setIndicators("AAPL", { rsi_14: 70.125 }, NOW + 1000);
    expect(await cache.getIndicators("AAPL")).toEqual({ values: { rsi_14: 70.125 }, timestamp: NOW + 1000 });
    expect(await admin.hexists(keys.stockIndicators("AAPL"), "macd")).toBe(0);
    await expectTtl(keys.stockIndicators("AAPL"), TTL.indicators);
    expect(await cache.getIndicators("MSFT")).toBeNull();
  });

  it("round-trips sentiment as JSON with the sentiment TTL", async () => {
    const sentiment: Sentiment = {
      sentiment_score: 0.75,
      sentiment_label: "bullish",
      news_count: 1,
      latest_news: [
        { headline: "Strong earnings", source: "FT", url: "https://example.com/x", timestamp: NOW },
      ],
      timestamp: NOW,
    };
    await cache.setSentiment("AAPL", sentiment);
    expect(await cache.getSentiment("AAPL")).toEqual(sentiment);
    await expectTtl(keys.stockSentiment("AAPL"), TTL.sentiment);
  });

  it("keeps watchlist order and replaces it whole", async () => {
    await cache.setWatchlist(["MSFT", "AAPL", "GOOGL", "AMZN"]);
    expect(await cache.getWatchlist()).toEqual(["MSFT", "AAPL", "GOOGL", "AMZN"]);
    await cache.setWatchlist(["META", "AAPL"]);
    expect(await cache.getWatchlist()).toEqual(["META", "AAPL"]);
    expect(await admin.lrange(keys.watchlist(), 0, -1)).toEqual(["META", "AAPL"]);
    await cache.setWatchlist([]);
    expect(await cache.getWatchlist()).toEqual([]);
  });

  it("ranks candidates highest first and an atomic replace removes old members", async () => {
    const candidate = (symbol: string, score: number): Candidate => ({
      symbol,
      score,
      price: 100 + score,
      signals: ["breakout", "volume_surge"],
      timestamp: NOW,
    });
    await cache.setRankedCandidates([
      candidate("MSFT", 0.92),
      candidate("AAPL", 0.95),
      candidate("TSLA", 0.5),
    ]);
    expect(await cache.getRankedCandidates()).toEqual([
      candidate("AAPL", 0.95),
      candidate("MSFT", 0.92),
      candidate("TSLA", 0.5),
    ]);
    expect((await cache.getRankedCandidates(2)).map((c) => c.symbol)).toEqual(["AAPL", "MSFT"]);
    await expectTtl(keys.candidatesRanked(), TTL.candidates);
    await expectTtl(keys.candidatesDetails(), TTL.candidates);

    await cache.setRankedCandidates([candidate("NVDA", 0.8), candidate("MSFT", 0.99)]);
    expect(await cache.getRankedCandidates()).toEqual([candidate("MSFT", 0.99), candidate("NVDA", 0.8)]);
    expect(await admin.zscore(keys.candidatesRanked(), "AAPL")).toBeNull();
    expect(await admin.hexists(keys.candidatesDetails(), "TSLA")).toBe(0);
  });

  it("writes, reads and deletes a position in a hash per symbol with the position TTL", async () => {
    expect(await cache.setPosition("rsi_agg", "RELIANCE", position)).toBe("opened");
    expect(await cache.getPosition("rsi_agg", "RELIANCE")).toEqual(position);
    const moved = { ...position, current_price: 2460.25, last_update: NOW + 5 };
    expect(await cache.setPosition("rsi_agg", "RELIANCE", moved)).toBe("updated");
    await cache.setPosition("scalping_pro", "RELIANCE", position);
    expect((await admin.hkeys(keys.activePositions("RELIANCE"))).sort()).toEqual(["rsi_agg", "scalping_pro"]);
    expect(await cache.getPosition("rsi_agg", "RELIANCE")).toEqual(moved);
    await expectTtl(keys.activePositions("RELIANCE"), TTL.position);

    expect(await cache.deletePosition("rsi_agg", "RELIANCE")).toBe(true);
    expect(await cache.deletePosition("rsi_agg", "RELIANCE")).toBe(false);
    expect(await cache.getPosition("rsi_agg", "RELIANCE")).toBeNull();
    expect(await cache.getPosition("scalping_pro", "RELIANCE")).toEqual(position);
  });

  it("writes a batch in one pipeline and lists every position exactly once over several SCAN calls", async () => {
    const batch: PositionWrite[] = [];
    for (let s = 0; s < 50; s++) {
      for (let k = 0; k < 5; k++) {
        batch.push({
          strategyId: `strat_${k}`,
          symbol: `SYM${String(s).padStart(2, "0")}`,
          position: { ...position, trade_id: `T-${s}-${k}`, entry_price: 100 + s + k / 4 },
        });
      }
    }
    // Noise the SCAN pattern must skip.
    await cache.setWatchlist(["AAPL"]);
    await cache.setLatestTick(tick);
    await cache.setPositions(batch);
    await expectTtl(keys.activePositions("SYM07"), TTL.position);
    expect(await cache.getPosition("strat_3", "SYM42")).toEqual(batch[42 * 5 + 3]?.position);

    await admin.config("RESETSTAT");
    const listed = await cache.getAllPositions(10);
    const scanCalls = Number(/cmdstat_scan:calls=(\d+)/.exec(await admin.info("commandstats"))?.[1]);
    expect(scanCalls).toBeGreaterThan(1);

    expect(listed).toHaveLength(250);
    expect(new Set(listed.map((p) => `${p.symbol}/${p.strategy_id}`)).size).toBe(250);
    const expected = batch.map((w) => ({ strategy_id: w.strategyId, symbol: w.symbol, ...w.position }));
    expect(listed).toEqual(expected);
  });

  it("publishes opened, updated and closed position changes to subscribers", async () => {
    const received: PositionChange[] = [];
    const unsubscribe = await cache.subscribePositionChanges((change) => received.push(change));
    expect(await admin.pubsub("NUMSUB", channels.positionChanges)).toEqual([channels.positionChanges, 1]);

    await cache.setPosition("rsi_agg", "INFY", position);
    await cache.setPosition("rsi_agg", "INFY", { ...position, current_price: 2455 });
    await cache.deletePosition("rsi_agg", "INFY");
    await until(() => received.length >= 3, 2_000);
    expect(received).toEqual([
      { type: "opened", strategy_id: "rsi_agg", symbol: "INFY", ...position },
      { type: "updated", strategy_id: "rsi_agg", symbol: "INFY", ...position, current_price: 2455 },
      { type: "closed", strategy_id: "rsi_agg", symbol: "INFY" },
    ]);

    await unsubscribe();
    expect(await admin.pubsub("NUMSUB", channels.positionChanges)).toEqual([channels.positionChanges, 0]);
  });

  it("writes a window's position marks in the window's one transaction, and publishes them", async () => {
    const received: PositionChange[] = [];
    const unsubscribe = await cache.subscribePositionChanges((change) => received.push(change));
    const tick = {
      symbol: "INFY",
      last: 2455,
      open: 2450,
      high: 2460,
      low: 2440,
      close: 2455,
      volume: 10,
      bid: 2454,
      ask: 2456,
      timestamp: NOW,
    };
    await cache.writeLatest({
      ticks: [tick],
      positions: [{ strategyId: "rsi_agg", symbol: "INFY", position: { ...position, current_price: 2455 } }],
    });
    expect(await cache.getPosition("rsi_agg", "INFY")).toEqual({ ...position, current_price: 2455 });
    expect(await cache.getLatestTick("INFY")).toEqual(tick);
    await until(() => received.length >= 1, 2_000);
    expect(received).toEqual([
      { type: "opened", strategy_id: "rsi_agg", symbol: "INFY", ...position, current_price: 2455 },
    ]);
    // A bad mark fails the whole window, naming it; nothing of the window is written.
    await expect(
      cache.writeLatest({
        ticks: [{ ...tick, symbol: "TCS" }],
        positions: [{ strategyId: "bad id!", symbol: "TCS", position }],
      }),
    ).rejects.toThrow(expect.objectContaining({ field: "positions.0.strategyId" }));
    expect(await cache.getLatestTick("TCS")).toBeNull();
    await unsubscribe();
  });

  it("round-trips monitoring, signals, stop state and market context with their TTLs", async () => {
    const monitoring = {
      technical_signals: { rsi_1m: { value: 78.5, signal: "overbought" } },
      profit_target: { value: 26.75, distance: "1.9%" },
      time_in_trade: "00:27:15",
      timestamp: NOW,
    };
    await cache.setPositionMonitoring("AAPL", monitoring);
    expect(await cache.getPositionMonitoring("AAPL")).toEqual(monitoring);
    await expectTtl(keys.positionMonitoring("AAPL"), TTL.positionMonitoring);

    const signal: Signal = {
      reason: "breakout",
      price: 150.25,
      timestamp: NOW,
      indicators: { macd: 0.5, rsi: 65 },
      confidence: 0.85,
    };
    await cache.setSignal("entry", "AAPL", signal);
    expect(await cache.getSignal("entry", "AAPL")).toEqual(signal);
    expect(await cache.getSignal("exit", "AAPL")).toBeNull();
    await expectTtl(keys.signal("entry", "AAPL"), TTL.signal);

    const stop: StopState = {
      current_sl: 145.5,
      highest_price: 152.75,
      sl_type: "trailing",
      updated_at: NOW,
    };
    await cache.setStopState("T-001", stop);
    expect(await cache.getStopState("T-001")).toEqual(stop);
    expect(await admin.type(keys.stopState("T-001"))).toBe("hash");
    await expectTtl(keys.stopState("T-001"), TTL.stopState);
    expect(await cache.deleteStopState("T-001")).toBe(true);
    expect(await cache.getStopState("T-001")).toBeNull();

    const context = {
      sector_performance: { technology: 0.5, energy: -0.4 },
      market_breadth: { advancing: 1250, declining: 1750 },
      vix: 18.5,
      market_regime: "bullish_consolidation",
      timestamp: NOW,
    };
    await cache.setMarketContext(context);
    expect(await cache.getMarketContext()).toEqual(context);
    await expectTtl(keys.marketContext(), TTL.marketContext);
  });

  it("keeps value types in system state and performance hashes and merges updates", async () => {
    await cache.setSystemState({
      state: "running",
      market_status: "open",
      active_positions_count: 2,
      paused: false,
    });
    await cache.setSystemState({ active_positions_count: 3, last_scan_time: NOW, note: null });
    expect(await cache.getSystemState()).toEqual({
      state: "running",
      market_status: "open",
      active_positions_count: 3,
      paused: false,
      last_scan_time: NOW,
      note: null,
    });
    expect(await admin.hget(keys.systemState(), "state")).toBe('"running"');

    await cache.setPerformance({ daily_pnl: 125.5, win_rate: 0.75, avg_loss: -25, label: "42" });
    expect(await cache.getPerformance()).toEqual({
      daily_pnl: 125.5,
      win_rate: 0.75,
      avg_loss: -25,
      label: "42",
    });
  });

  it("counts exactly under concurrent incrementers on separate connections", async () => {
    // A burst of 6,000 commands can queue past the 500 ms default on a busy machine; this test is
    // about atomicity, not latency.
    const workers = await Promise.all(
      Array.from({ length: 10 }, () => RedisCache.connect(server.url, { commandTimeoutMs: 10_000 })),
    );
    try {
      const day = new Date(Date.UTC(2025, 4, 9, 23, 59));
      await Promise.all(
        workers.flatMap((worker) =>
          Array.from({ length: 200 }, (_, i) => [
            worker.incrementSignalCount("rsi_agg", "BUY"),
            worker.recordTradeResult("rsi_agg", i % 2 === 0 ? 0.5 : -0.25),
            worker.incrementDaily("pnl", 0.25, day),
          ]).flat(),
        ),
      );
      expect(await cache.getStrategyCounters("rsi_agg")).toEqual({
        signals: { BUY: 2000 },
        trades: 2000,
        wins: 1000,
        losses: 1000,
        pnl: 250,
      });
      expect(await cache.getDailyStats(day)).toEqual({ pnl: 500 });
      await expectTtl(keys.dailyStats("2025-05-09"), TTL.dailyStats);
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });

  it("keys daily aggregates by UTC day and reports untouched strategies as zeros", async () => {
    expect(await cache.incrementDaily("trades", 1, new Date("2025-05-10T00:30:00+02:00"))).toBe(1);
    expect(await admin.hget(keys.dailyStats("2025-05-09"), "trades")).toBe("1");
    expect(await cache.getDailyStats(new Date("2025-05-10T12:00:00Z"))).toEqual({});
    await cache.recordTradeResult("flat", 0);
    expect(await cache.getStrategyCounters("flat")).toEqual({
      signals: {},
      trades: 1,
      wins: 0,
      losses: 0,
      pnl: 0,
    });
    expect(await cache.getStrategyCounters("none")).toEqual({
      signals: {},
      trades: 0,
      wins: 0,
      losses: 0,
      pnl: 0,
    });
  });

  it("rejects bad input with a ValidationError naming the field and writes nothing", async () => {
    // Thunks, so each call starts only when its rejection is awaited.
    const cases: [() => Promise<unknown>, string][] = [
      [() => cache.setLatestTick({ ...tick, last: Number.NaN }), "tick.last"],
      [() => cache.setLatestTick({ ...tick, bid: -1 }), "tick.bid"],
      [() => cache.setLatestTick({ ...tick, symbol: "aapl" }), "tick.symbol"],
      [() => cache.setPosition("", "AAPL", position), "strategyId"],
      [() => cache.setPosition("rsi_agg", "aapl", position), "symbol"],
      [() => cache.setPosition("rsi_agg", "AA PL", position), "symbol"],
      [() => cache.setPosition("rsi_agg", "AAPL", { ...position, entry_price: -5 }), "position.entry_price"],
      [
        () => cache.setPosition("rsi_agg", "AAPL", { ...position, quantity: Number.NaN }),
        "position.quantity",
      ],
      [
        () =>
          cache.setPositions([
            { strategyId: "a", symbol: "AAPL", position },
            { strategyId: "b", symbol: "ms ft", position },
          ]),
        "positions.1.symbol",
      ],
      [() => cache.setIndicators("AAPL", { rsi_14: Number.NaN }, NOW), "indicators.rsi_14"],
      [() => cache.setIndicators("AAPL", { timestamp: 1 }, NOW), "indicators.timestamp"],
      [() => cache.setWatchlist(["AAPL", "msft"]), "watchlist.1"],
      [
        () =>
          cache.setRankedCandidates([
            { symbol: "AAPL", score: 1, price: 1, signals: [], timestamp: NOW },
            { symbol: "AAPL", score: 2, price: 1, signals: [], timestamp: NOW },
          ]),
        "candidates.1.symbol",
      ],
      [
        () =>
          cache.setSignal("Entry!", "AAPL", {
            reason: "x",
            price: 1,
            timestamp: NOW,
            indicators: {},
            confidence: 1,
          }),
        "signalType",
      ],
      [
        () =>
          cache.setSignal("entry", "AAPL", {
            reason: "x",
            price: 0,
            timestamp: NOW,
            indicators: {},
            confidence: 1,
          }),
        "signal.price",
      ],
      [
        () => cache.setStopState("", { current_sl: 1, highest_price: 2, sl_type: "fixed", updated_at: NOW }),
        "tradeId",
      ],
      [() => cache.incrementSignalCount("", "BUY"), "strategyId"],
      [() => cache.recordTradeResult("rsi_agg", Number.NaN), "pnl"],
      [() => cache.incrementDaily("pnl", Number.POSITIVE_INFINITY), "by"],
      [() => cache.incrementDaily("pnl", 1, new Date("not a date")), "date"],
      [() => cache.setMarketContext({ vix: Number.NaN }), "marketContext.vix"],
      [() => cache.getLatestTick("aapl"), "symbol"],
    ];
    for (const [attempt, field] of cases) {
      const error = await attempt().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error, field).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).field).toBe(field);
    }
    expect(await admin.dbsize()).toBe(0);
  });

  it("fails a command that outlives commandTimeoutMs instead of hanging", async () => {
    const impatient = await RedisCache.connect(server.url, { commandTimeoutMs: 100 });
    try {
      await admin.client("PAUSE", 500, "ALL");
      const started = Date.now();
      await expect(impatient.getWatchlist()).rejects.toBeInstanceOf(StoreUnavailableError);
      expect(Date.now() - started).toBeLessThan(400);
      await until(async () => (await impatient.health()).up, 3_000);
    } finally {
      await impatient.close();
    }
  });
});

describe.skipIf(skip)("RedisCache when the server dies and comes back", () => {
  const password = "s3cret-pw";
  let server: RedisServer;
  let cache: RedisCache;
  const logLines: { level: number; msg: string }[] = [];
  const rawLog: string[] = [];
  const states: boolean[] = [];

  beforeAll(async () => {
    // An ACL user with a password; the default user stays open for the helper's readiness probe.
    server = await RedisServer.start(["--user", "velox", "on", `>${password}`, "~*", "&*", "+@all"]);
    const logger = pino(
      { level: "debug" },
      {
        write: (line: string) => {
          rawLog.push(line);
          logLines.push(JSON.parse(line));
        },
      },
    );
    cache = await RedisCache.connect(`redis://velox:${password}@127.0.0.1:${server.port}`, { logger });
    cache.onStateChange((connected) => states.push(connected));
  });

  afterAll(async () => {
    await cache?.close();
    await server?.stop();
  });

  it("fails fast while down, reports it, reconnects and logs each transition once", async () => {
    await cache.setWatchlist(["AAPL"]);
    expect(await cache.getWatchlist()).toEqual(["AAPL"]);

    await server.kill();
    const started = Date.now();
    const error = await cache.getWatchlist().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).store).toBe("redis");

    await until(() => !cache.connected, 1_000);
    const writeStarted = Date.now();
    await expect(cache.setWatchlist(["MSFT"])).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(Date.now() - writeStarted).toBeLessThan(1_000);
    expect(await cache.health()).toMatchObject({ up: false, latencyMs: null });

    // Let a few reconnect attempts fail before the server returns.
    await new Promise((r) => setTimeout(r, 300));
    await server.launch();
    await until(() => cache.connected, 5_000);
    await cache.setWatchlist(["MSFT"]);
    expect(await cache.getWatchlist()).toEqual(["MSFT"]);
    expect((await cache.health()).up).toBe(true);

    expect(states).toEqual([false, true]);
    const transitions = logLines.filter((l) => l.level >= 30).map((l) => l.msg);
    expect(transitions).toEqual([
      "redis connected",
      "redis connection lost; reconnecting",
      "redis connected",
    ]);
    expect(logLines.filter((l) => l.level < 30).length).toBeGreaterThan(0);
    expect(rawLog.join("")).not.toContain(password);
    expect(rawLog.join("")).toContain(`127.0.0.1:${server.port}`);
  });
});

describe.skipIf(skip)("RedisCache with a wrong password", () => {
  it("says so once, at error level, naming the setting; the password is in no line", async () => {
    const server = await RedisServer.start(["--user", "velox", "on", ">right-password", "~*", "&*", "+@all"]);
    const lines: { level: number; msg: string }[] = [];
    const raw: string[] = [];
    const logger = pino(
      { level: "debug" },
      {
        write: (line: string) => {
          raw.push(line);
          lines.push(JSON.parse(line));
        },
      },
    );
    const cache = RedisCache.create(`redis://velox:wrong-password@127.0.0.1:${server.port}`, { logger });
    try {
      await until(() => lines.filter((l) => l.level >= 50).length > 0, 5_000);
      // Several refused attempts later, still one error line.
      await new Promise((r) => setTimeout(r, 600));
      const errors = lines.filter((l) => l.level >= 50);
      expect(errors).toHaveLength(1);
      expect(errors[0]?.msg).toMatch(/refused the credentials.*VELOX_REDIS_URL/);
      expect(cache.connected).toBe(false);
      expect(raw.join("")).not.toContain("wrong-password");
    } finally {
      await cache.close();
      await server.stop();
    }
  });
});
