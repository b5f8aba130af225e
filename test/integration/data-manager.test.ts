import { execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { NotFoundError, StateError, ValidationError } from "../../src/domain/errors.js";
import type { NewTrade } from "../../src/domain/trade.js";
import { keys } from "../../src/schema/redis-keys.js";
import { DataManager } from "../../src/storage/data-manager.js";
import { InfluxWriter } from "../../src/storage/influx-writer.js";
import { RedisCache } from "../../src/storage/redis-cache.js";
import { TradeJournal } from "../../src/storage/trade-journal.js";
import { skipWithout } from "../helpers/backend.js";
import { RedisServer } from "../helpers/redis-server.js";
import { makeTrade, tempJournalPath } from "../helpers/trades.js";
import { VICTORIA_METRICS, VictoriaMetrics } from "../helpers/victoria-metrics.js";

const T0 = 1_746_780_000; // 2025-05-09T08:40:00Z, unix seconds

/** A trade entered at T0, with a fee of 1 and an initial stop at 95. */
function trade(id: string, overrides: Partial<NewTrade> = {}): NewTrade {
  return makeTrade(id, T0, { fees: 1, stop_loss_initial: 95, ...overrides });
}

function journalPath(): string {
  return tempJournalPath("velox-dm-");
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await condition()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

describe("DataManager on the journal alone (no Redis, no InfluxDB)", () => {
  it("journals the whole life of a trade and serves it back", async () => {
    const dm = new DataManager({ journal: TradeJournal.open(journalPath()) });
    await dm.openPosition({ trade: trade("T1"), entryConditions: { rsi: 28.5, threshold: 30 } });
    dm.updatePositionSnapshot("T1", 104, T0 * 1000 + 500);
    await dm.updateTrailingStop({
      trade_id: "T1",
      ts: T0 + 1,
      stop: 99,
      highest_price: 104,
      sl_type: "fixed_percent",
    });

    const open = await dm.getOpenPositions();
    expect(open).toEqual([
      expect.objectContaining({ trade_id: "T1", current_price: 104, unrealized_pnl: 40, stop_loss: 99 }),
    ]);

    const closed = await dm.closePosition("T1", {
      exit: { exit_time: T0 + 10, exit_price: 110, exit_fees: 1, exit_reason: "target" },
      exitConditions: { rsi: 71 },
    });
    // (110 − 100) × 10 − (1 + 1) fees = 98
    expect(closed.pnl).toBe(98);

    const details = await dm.getTradeDetails("T1");
    expect(details?.trade.status).toBe("closed");
    expect(details?.entry_conditions[0]?.conditions).toEqual({ rsi: 28.5, threshold: 30 });
    expect(details?.exit_conditions[0]?.conditions).toEqual({ rsi: 71 });
    expect(details?.sl_timeline.map((u) => u.stop)).toEqual([99]);
    expect(details?.position_history).toBeNull();
    expect(await dm.getOpenPositions()).toEqual([]);
    // T0 lies in 2025: widen the window to include it.
    expect((await dm.getStrategyPerformance("rsi_agg", 10_000)).stats.total_trades).toBe(1);
    await dm.close();
  });

  it("journals a held-back stop move once it is due, with no further write to carry it", async () => {
    const path = journalPath();
    const dm = new DataManager({ journal: TradeJournal.open(path, { stopIntervalMs: 200 }) });
    await dm.openPosition({ trade: trade("S1") });
    const move = (ts: number, stop: number) =>
      dm.updateTrailingStop({ trade_id: "S1", ts: T0 + ts, stop, highest_price: stop + 5, sl_type: "atr" });
    move(1, 96);
    await dm.settle();
    // Within the interval: held back, the latest kept. Then the ticks stop.
    move(2, 97);
    move(3, 98);
    await dm.settle();
    const committed = () => {
      const reader = TradeJournal.open(path);
      try {
        return reader.getSlUpdates("S1").map((u) => u.stop);
      } finally {
        reader.close();
      }
    };
    expect(committed()).toEqual([96]);
    const waited = await until(() => committed().length === 2, 2_000);
    expect(committed()).toEqual([96, 98]);
    expect(waited).toBeLessThan(1_000);
    await dm.close();
  });

  it("writes a trade and its conditions together or not at all", async () => {
    const path = journalPath();
    const dm = new DataManager({ journal: TradeJournal.open(path) });
    // The trade is valid, its conditions are not (NaN does not survive JSON): nothing may stay.
    expect(() => dm.openPosition({ trade: trade("T9"), entryConditions: { rsi: Number.NaN } })).toThrow(
      ValidationError,
    );
    await dm.close();
    const journal = TradeJournal.open(path);
    try {
      expect(journal.getTrade("T9")).toBeUndefined();
    } finally {
      journal.close();
    }
  });

  it("fails the operation when the journal refuses it, and tells why", async () => {
    const dm = new DataManager({ journal: TradeJournal.open(journalPath()) });
    await dm.openPosition({ trade: trade("T1") });
    expect(() => dm.openPosition({ trade: trade("T1") })).toThrow(StateError);
    expect(() =>
      dm.closePosition("nope", { exit: { exit_time: T0 + 1, exit_price: 1, exit_reason: "x" } }),
    ).toThrow(NotFoundError);
    expect(() => dm.openPosition({ trade: trade("T2", { entry_price: Number.NaN }) })).toThrow(
      expect.objectContaining({ field: "trade.entry_price" }),
    );
    expect(() =>
      dm.storeTick({ symbol: "AAPL", timestamp: 1, open: 1, high: 1, low: 2, close: 1, volume: 1 }),
    ).toThrow(ValidationError);
    expect((await dm.getOpenPositions()).map((p) => p.trade_id)).toEqual(["T1"]);
    await dm.close();
  });
});

const skip = skipWithout("redis-server", "DataManager tests with Redis");

describe.skipIf(skip)("DataManager with a real Redis", () => {
  let server: RedisServer;
  let probe: Redis;
  let dm: DataManager | undefined;

  beforeAll(async () => {
    server = await RedisServer.start();
    probe = new Redis(server.port, "127.0.0.1", { maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    probe.on("error", () => {});
  });
  afterEach(async () => {
    await dm?.close();
    dm = undefined;
    if (!server.pid) await server.launch();
    await probe.flushall();
  });
  afterAll(async () => {
    probe.disconnect();
    await server.stop();
  });

  it("coalesces ticks: Redis work per window does not grow with the tick rate", async () => {
    const cache = await RedisCache.connect(server.url);
    dm = new DataManager({ journal: TradeJournal.open(journalPath()), cache, cacheFlushMs: 60_000 });
    const symbols = ["AAA", "BBB", "CCC"];

    const commandsFor = async (ticksPerSymbol: number) => {
      const before = await commandsProcessed(probe);
      for (let i = 1; i <= ticksPerSymbol; i++) {
        for (const symbol of symbols) {
          const price = 100 + i / 100;
          dm?.storeTick({
            symbol,
            timestamp: T0 * 1000 + i,
            open: price,
            high: price,
            low: price,
            close: price,
            volume: i,
          });
        }
      }
      // Drive the flush the timer would do.
      await (dm as unknown as { flushCache(): Promise<void> }).flushCache();
      return (await commandsProcessed(probe)) - before - 1; // minus the INFO itself
    };

    const few = await commandsFor(10);
    const many = await commandsFor(5_000);
    expect(many).toBe(few);
    // The last tick per symbol won.
    expect(await probe.hget(keys.stockPrice("BBB"), "close")).toBe(String(100 + 5_000 / 100));
    expect(await probe.ttl(keys.stockPrice("BBB"))).toBeGreaterThan(50);
  });

  it("coalesces signals: Redis work per window does not grow with the signal rate, and the counts add up", async () => {
    const cache = await RedisCache.connect(server.url);
    dm = new DataManager({ journal: TradeJournal.open(journalPath()), cache, cacheFlushMs: 60_000 });
    const commandsFor = async (signalsPerSymbol: number) => {
      const before = await commandsProcessed(probe);
      for (let i = 1; i <= signalsPerSymbol; i++) {
        for (const symbol of ["AAA", "BBB"]) {
          dm?.recordSignal({
            strategy_id: "rsi_agg",
            kind: "entry",
            action: "BUY",
            symbol,
            price: 100 + i / 100,
            timestamp: T0 * 1000 + i,
            reason: "rsi below 30",
            confidence: 0.8,
            indicators: { rsi_14: 25 },
          });
        }
      }
      await (dm as unknown as { flushCache(): Promise<void> }).flushCache();
      return (await commandsProcessed(probe)) - before - 1; // minus the INFO itself
    };
    const few = await commandsFor(10);
    const many = await commandsFor(5_000);
    expect(many).toBe(few);
    expect(await probe.hget(keys.strategyStats("rsi_agg"), "signals:BUY")).toBe(String(2 * (10 + 5_000)));
    const latest = JSON.parse((await probe.get(keys.signal("entry", "BBB"))) ?? "{}");
    expect(latest.price).toBe(100 + 5_000 / 100);
  });

  it("sums closed-trade counters over the window: Redis work does not grow with the number of closes", async () => {
    const cache = await RedisCache.connect(server.url);
    dm = new DataManager({ journal: TradeJournal.open(journalPath()), cache, cacheFlushMs: 60_000 });
    const flush = () => (dm as unknown as { flushCache(): Promise<void> }).flushCache();
    let n = 0;
    /** Opens and closes `trades` trades of strategy "sum" (half winners, half losers), returns counter commands. */
    const countersFor = async (trades: number) => {
      for (let i = 0; i < trades; i++) {
        const id = `S${++n}`;
        await dm?.openPosition({ trade: trade(id, { strategy_id: "sum", symbol: `SYM${n}` }) });
        await dm?.closePosition(id, {
          exit: { exit_time: T0 + 60, exit_price: i % 2 === 0 ? 110 : 90, exit_reason: "signal" },
        });
      }
      await dm?.settle();
      await flush();
      const before = await commandsProcessed(probe);
      await flush(); // nothing left: no command
      expect((await commandsProcessed(probe)) - before - 1).toBe(0);
      return Number((await probe.hget(keys.strategyStats("sum"), "trades")) ?? 0);
    };
    expect(await countersFor(2)).toBe(2);
    expect(await countersFor(40)).toBe(42);
    const stats = await cache.getStrategyCounters("sum");
    expect(stats).toMatchObject({ trades: 42, wins: 21, losses: 21 });
    // 21 × (+10 × qty) + 21 × (−10 × qty), fees included: the journal's P&L, summed exactly.
    const journalPnl = dm
      .getRecentTrades({ limit: 100, strategyId: "sum" })
      .reduce((a, t) => a + (t.pnl ?? 0), 0);
    expect(stats.pnl).toBeCloseTo(journalPnl, 6);
    const daily = await cache.getDailyStats();
    expect(daily.trades_closed).toBeGreaterThanOrEqual(42);
  });

  it("counts and logs a cache window it cannot write, once, and the next windows still go out", async () => {
    const cache = await RedisCache.connect(server.url);
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => lines.push(line) });
    dm = new DataManager({ journal: TradeJournal.open(journalPath()), cache, cacheFlushMs: 60_000, logger });
    const flush = () => (dm as unknown as { flushCache(): Promise<void> }).flushCache();
    const at = Date.now();
    // Indicator values the cache could not hold are refused at the call, naming the value.
    expect(() => dm?.storeIndicators("BAD", { rsi_14: Number.NaN }, at)).toThrow(
      expect.objectContaining({ field: "indicators.rsi_14" }),
    );
    // A signal with a price the cache refuses spoils its window (twice: logged once).
    const signal = {
      strategy_id: "rsi_agg",
      symbol: "BAD",
      kind: "entry" as const,
      action: "BUY" as const,
      price: Number.NaN,
      timestamp: at,
      reason: "test",
      indicators: {},
      confidence: 0.5,
      settings: {},
    };
    for (let i = 0; i < 2; i++) {
      dm.recordSignal(signal);
      await expect(flush()).resolves.toBeUndefined();
    }
    expect(dm.stats().cacheWriteErrors).toBe(2);
    const logged = lines.map((line) => JSON.parse(line) as { msg: string; err: string });
    expect(logged).toEqual([
      expect.objectContaining({ msg: "cache window not written", err: expect.stringContaining("signals.0") }),
    ]);
    // The cache is not dead: the next window is written.
    dm.storeTick({ symbol: "GOOD", timestamp: at, open: 1, high: 1, low: 1, close: 1, volume: 1 });
    await flush();
    expect(await probe.hget(keys.stockPrice("GOOD"), "close")).toBe("1");
  });

  it("spreads the indicator hashes of many symbols over the windows, each symbol in its turn", async () => {
    const cache = await RedisCache.connect(server.url);
    dm = new DataManager({
      journal: TradeJournal.open(journalPath()),
      cache,
      cacheFlushMs: 20,
      // Long enough that even a first window cut late on a loaded machine takes only a share.
      cacheIndicatorsMs: 1_000,
    });
    const at = Date.now();
    const symbols = Array.from({ length: 100 }, (_, i) => `SPREAD${i}`);
    for (const symbol of symbols) {
      dm.storeTick({ symbol, timestamp: at, open: 1, high: 1, low: 1, close: 1, volume: 1 });
      dm.storeIndicators(symbol, { rsi_14: 50 }, at);
    }
    const written = async () => (await probe.keys(keys.stockIndicators("SPREAD*"))).length;
    // The first window carries every price but only its share of the indicator hashes: all 100
    // at once made one transaction Redis took many milliseconds to run.
    await until(async () => (await probe.hget(keys.stockPrice("SPREAD99"), "close")) === "1", 2_000);
    const first = await written();
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(symbols.length);
    // Within about one pace every symbol has its turn.
    await until(async () => (await written()) === symbols.length, 5_000);
  });

  it("sends indicator hashes at their own pace, prices with every window, and both at close", async () => {
    const cache = await RedisCache.connect(server.url);
    dm = new DataManager({
      journal: TradeJournal.open(journalPath()),
      cache,
      cacheFlushMs: 20,
      cacheIndicatorsMs: 60_000,
    });
    const at = Date.now();
    const tick = (symbol: string, close: number, ms: number) =>
      dm?.storeTick({ symbol, timestamp: ms, open: close, high: close, low: close, close, volume: 10 });
    // The first window takes the first indicators; later ones wait for the pace.
    tick("IND", 100, at);
    dm.storeIndicators("IND", { rsi_14: 40 }, at);
    await until(async () => (await probe.hget(keys.stockIndicators("IND"), "rsi_14")) === "40", 2_000);
    tick("IND", 101, at + 1);
    dm.storeIndicators("IND", { rsi_14: 41 }, at + 1);
    await until(async () => (await probe.hget(keys.stockPrice("IND"), "close")) === "101", 2_000);
    // Several windows later the price is there, the indicators still the first ones.
    await new Promise((r) => setTimeout(r, 100));
    expect(await probe.hget(keys.stockIndicators("IND"), "rsi_14")).toBe("40");
    await dm.close();
    dm = undefined;
    expect(await probe.hget(keys.stockIndicators("IND"), "rsi_14")).toBe("41");
  });

  /**
   * What Redis holds now, read by redis-cli while this process's event loop is blocked: no timer
   * and no reply of ours can run meanwhile, so only what was already sent can show.
   */
  const closeNow = (symbol: string) =>
    execFileSync("redis-cli", ["-p", String(server.port), "HGET", keys.stockPrice(symbol), "close"], {
      encoding: "utf8",
    }).trim();
  /** Blocks the event loop for `ms`: a busy source, behind which every timer fires late. */
  const busy = (ms: number) => {
    const until = performance.now() + ms;
    while (performance.now() < until) {}
  };
  const tickOf = (symbol: string, close: number) => ({
    symbol,
    timestamp: Date.now(),
    open: close,
    high: close,
    low: close,
    close,
    volume: 1,
  });

  it("sends a due window between two batches, though the event loop was too busy for its timer", async () => {
    const cache = await RedisCache.connect(server.url);
    dm = new DataManager({ journal: TradeJournal.open(journalPath()), cache, cacheFlushMs: 100 });
    dm.storeTick(tickOf("BUSY", 7));
    busy(150);
    expect(closeNow("BUSY")).toBe("");
    // The source's turn between batches; then only microtasks, no timer, before Redis is read.
    await dm.paced();
    await Promise.resolve();
    expect(closeNow("BUSY")).toBe("7");
  });

  it("sends windows without waiting for the last one's reply, at most four, and loses none", async () => {
    const cache = await RedisCache.connect(server.url);
    dm = new DataManager({ journal: TradeJournal.open(journalPath()), cache, cacheFlushMs: 50 });
    const pid = server.pid as number;
    process.kill(pid, "SIGSTOP");
    try {
      // Six windows' worth, one symbol each, while Redis answers nothing.
      for (const [i, symbol] of ["W1", "W2", "W3", "W4", "W5", "W6"].entries()) {
        dm.storeTick(tickOf(symbol, i + 1));
        busy(60);
        await dm.paced();
        await Promise.resolve();
      }
    } finally {
      process.kill(pid, "SIGCONT");
    }
    // Four windows were on the wire; the rest waits in the process, coalesced.
    busy(200);
    expect(["W1", "W2", "W3", "W4", "W5", "W6"].map(closeNow)).toEqual(["1", "2", "3", "4", "", ""]);
    // Once the replies are read, what waited goes out too.
    await until(async () => (await probe.hget(keys.stockPrice("W6"), "close")) === "6", 2_000);
    expect(await probe.hget(keys.stockPrice("W5"), "close")).toBe("5");
  });

  it("keeps journaling fills while Redis is killed, serves open positions from the journal, and re-warms within 2 s of its return", async () => {
    const cache = await RedisCache.connect(server.url);
    dm = new DataManager({ journal: TradeJournal.open(journalPath()), cache, cacheFlushMs: 50 });
    await dm.openPosition({ trade: trade("A", { symbol: "AAA" }) });
    await dm.openPosition({ trade: trade("B", { symbol: "BBB" }) });
    // The cache hears of a fill once the journal has committed it.
    await dm.settle();
    expect(await probe.hexists(keys.activePositions("AAA"), "rsi_agg")).toBe(1);

    await server.kill();
    await until(() => !cache.connected, 2_000);

    // Trading goes on: fills are journaled, nothing throws.
    await dm.openPosition({ trade: trade("C", { symbol: "CCC", strategy_id: "supertrend" }) });
    await dm.closePosition("A", { exit: { exit_time: T0 + 5, exit_price: 101, exit_reason: "stop" } });
    dm.updatePositionSnapshot("B", 103, T0 * 1000 + 7_000);
    await dm.updateTrailingStop({ trade_id: "B", ts: T0 + 7, stop: 98, highest_price: 103, sl_type: "atr" });
    await dm.settle();
    expect((await dm.getOpenPositions()).map((p) => p.trade_id).sort()).toEqual(["B", "C"]);
    // The fills' own writes, and the next cache window (B's stop move), are skipped and counted.
    await until(() => (dm?.stats().cacheWritesSkipped ?? 0) >= 3, 1_000);
    expect(dm.stats().cacheReadFallbacks).toBeGreaterThanOrEqual(1);

    // A new, empty server on the same port: the cache must be rebuilt from the journal.
    await server.launch();
    const waited = await until(async () => {
      try {
        return (await probe.exists(keys.activePositions("BBB"), keys.activePositions("CCC"))) === 2;
      } catch {
        return false;
      }
    }, 2_000);
    expect(waited).toBeLessThan(2_000);
    expect(await probe.exists(keys.activePositions("AAA"))).toBe(0);
    const b = JSON.parse((await probe.hget(keys.activePositions("BBB"), "rsi_agg")) ?? "{}");
    expect(b).toMatchObject({ trade_id: "B", entry_price: 100, current_price: 103, stop_loss: 98 });
    expect(await probe.hget(keys.stopState("B"), "current_sl")).toBe("98");
    expect(await probe.ttl(keys.activePositions("CCC"))).toBeGreaterThan(86_000);
  });

  it("starts while Redis is down and fills the cache when it appears", async () => {
    const port = server.port;
    await server.kill();
    const cache = RedisCache.create(`redis://127.0.0.1:${port}`);
    dm = new DataManager({ journal: TradeJournal.open(journalPath()), cache });
    await dm.openPosition({ trade: trade("D", { symbol: "DDD" }) });
    expect((await dm.getOpenPositions()).map((p) => p.trade_id)).toEqual(["D"]);
    expect((await dm.health()).redis).toMatchObject({ configured: true, up: false });

    await server.launch();
    await until(async () => {
      try {
        return (await probe.hexists(keys.activePositions("DDD"), "rsi_agg")) === 1;
      } catch {
        return false;
      }
    }, 3_000);
    expect((await dm.health()).redis.up).toBe(true);
  });
});

async function commandsProcessed(redis: Redis): Promise<number> {
  const info = await redis.info("stats");
  const match = /total_commands_processed:(\d+)/.exec(info);
  return Number(match?.[1]);
}

const skipVm = skipWithout(VICTORIA_METRICS, "DataManager tests with the InfluxDB write path");

describe.skipIf(skipVm)("DataManager with the InfluxDB write path (VictoriaMetrics)", () => {
  let vm: VictoriaMetrics;
  beforeAll(async () => {
    vm = await VictoriaMetrics.start();
  });
  afterAll(async () => {
    await vm.stop();
  });

  /** A DataManager with a journal and an InfluxWriter to this VictoriaMetrics. */
  function dataManagerWithSeries(): DataManager {
    const dir = mkdtempSync(join(tmpdir(), "velox-dm-vm-"));
    const series = new InfluxWriter({
      url: vm.url,
      org: "velox",
      bucket: "trading",
      spoolPath: join(dir, "spool.db"),
      flushIntervalMs: 50,
    });
    return new DataManager({ journal: TradeJournal.open(join(dir, "velox.db")), series });
  }

  it("records every measurement with the event's own timestamps and the trade_id on position snapshots", async () => {
    const dm = dataManagerWithSeries();
    const t = T0 * 1000;
    dm.storeTick({ symbol: "AAA", timestamp: t, open: 100, high: 101, low: 99, close: 100.5, volume: 10 });
    dm.storeIndicators("AAA", { rsi_14: 28.5 }, t, { rsi_14: 14 });
    await dm.openPosition({ trade: trade("V1", { symbol: "AAA", entry_time: T0 + 1 }) });
    dm.updatePositionSnapshot("V1", 104, t + 2_000);
    await dm.updateTrailingStop({ trade_id: "V1", ts: T0 + 3, stop: 99, highest_price: 104, sl_type: "atr" });
    await dm.closePosition("V1", { exit: { exit_time: T0 + 4, exit_price: 103, exit_reason: "signal" } });
    dm.recordStrategyMetrics(
      "rsi_agg",
      { positions_count: 0, signals_count: 2, pnl: 29, win_rate: 1 },
      t + 5_000,
    );
    await dm.close(); // flushes the writer

    const one = async (name: string) => {
      const found = await vm.exportSeries(`{__name__="${name}"}`);
      expect(found.length, `series ${name}`).toBeGreaterThan(0);
      return found;
    };
    expect((await one("ticks_close"))[0]).toMatchObject({
      metric: { symbol: "AAA", source: "simulator" },
      values: [100.5],
      timestamps: [t],
    });
    expect((await one("indicators_period"))[0]).toMatchObject({
      metric: { indicator_type: "rsi_14" },
      values: [14],
    });
    expect((await one("positions_unrealized_pnl"))[0]).toMatchObject({
      metric: { trade_id: "V1", strategy_id: "rsi_agg", symbol: "AAA" },
      values: [40],
      timestamps: [t + 2_000],
    });
    expect((await one("trailing_sl_current_sl"))[0]).toMatchObject({
      metric: { trade_id: "V1", sl_type: "atr" },
      values: [99],
      timestamps: [t + 3_000],
    });
    const trades = await one("trades_price");
    expect(trades.map((s) => [s.metric.action, s.values[0], s.timestamps[0]]).sort()).toEqual([
      ["BUY", 100, t + 1_000],
      ["SELL", 103, t + 4_000],
    ]);
    // (103 − 100) × 10 − 1 fee = 29
    expect((await one("trades_pnl"))[0]).toMatchObject({ metric: { action: "SELL" }, values: [29] });
    expect((await one("strategy_metrics_signals_count"))[0]).toMatchObject({
      values: [2],
      timestamps: [t + 5_000],
    });
  });

  it("writes each tick and indicator point with its own tags and fields, one after another", async () => {
    // The hot path refills one set of tag and field objects per point: no point may carry
    // another's symbol, value or period.
    const dm = dataManagerWithSeries();
    const t = T0 * 1000 + 60_000;
    dm.storeTick({
      symbol: "RFA",
      timestamp: t,
      open: 10,
      high: 11,
      low: 9,
      close: 10.5,
      volume: 1,
      bid: 10.4,
      ask: 10.6,
    });
    dm.storeTick({ symbol: "RFB", timestamp: t + 1, open: 20, high: 21, low: 19, close: 20.5, volume: 2 });
    dm.storeIndicators("RFA", { rsi_14: 31, macd: -0.25, ema_20: 10.2 }, t, { rsi_14: 14, ema_20: 20 });
    dm.storeIndicators("RFB", { macd: 0.75, rsi_14: 64 }, t + 1, { rsi_14: 14 });
    await dm.close();

    const value = async (query: string) => {
      const found = await vm.exportSeries(query);
      expect(found, query).toHaveLength(1);
      return found[0]?.values;
    };
    expect(await value('ticks_bid{symbol="RFA"}')).toEqual([10.4]);
    expect(await value('ticks_bid{symbol="RFB"}')).toEqual([20.5]); // no quote: quoted at its close
    expect(await value('ticks_volume{symbol="RFB"}')).toEqual([2]);
    expect(await value('indicators_value{symbol="RFA",indicator_type="macd"}')).toEqual([-0.25]);
    expect(await value('indicators_value{symbol="RFA",indicator_type="ema_20"}')).toEqual([10.2]);
    expect(await value('indicators_period{symbol="RFA",indicator_type="ema_20"}')).toEqual([20]);
    expect(await value('indicators_value{symbol="RFB",indicator_type="rsi_14"}')).toEqual([64]);
    expect(await value('indicators_value{symbol="RFB",indicator_type="macd"}')).toEqual([0.75]);
    // MACD has no period; one written right after a point with a period must not carry it.
    expect(await vm.exportSeries('indicators_period{indicator_type="macd"}')).toEqual([]);
  });
});
