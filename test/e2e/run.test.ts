import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../src/schema/redis-keys.js";
import { InfluxWriter } from "../../src/storage/influx-writer.js";
import { INFLUX_SPOOL_FILE } from "../../src/storage/line-spool.js";
import { skipWithout } from "../helpers/backend.js";
import { freePort, RedisServer } from "../helpers/redis-server.js";
import { runSummary, startVelox } from "../helpers/velox-process.js";
import { VICTORIA_METRICS, VictoriaMetrics } from "../helpers/victoria-metrics.js";

/**
 * The main job end to end, as `velox run` / `velox replay` in a child process against a real
 * redis-server, a real VictoriaMetrics (the InfluxDB write path) and a temp SQLite journal.
 */

const START = Date.parse("2026-11-02T09:00:00Z");

interface TradeRow {
  trade_id: string;
  strategy_id: string;
  symbol: string;
  side: string;
  entry_time: number;
  entry_price: number;
  exit_price: number | null;
  quantity: number;
  pnl: number | null;
  exit_reason: string | null;
  created_at: number;
  updated_at: number;
}

function trades(dbPath: string): TradeRow[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare("SELECT * FROM trades ORDER BY entry_time, trade_id").all() as TradeRow[];
  } finally {
    db.close();
  }
}

function dirs() {
  const root = mkdtempSync(join(tmpdir(), "velox-e2e-"));
  return { data: join(root, "data"), logs: join(root, "logs") };
}

const skip =
  skipWithout("redis-server", "end-to-end runs") || skipWithout(VICTORIA_METRICS, "end-to-end runs");

describe.skipIf(skip)("velox run, end to end", () => {
  let redis: RedisServer;
  let vm: VictoriaMetrics;
  let probe: Redis;

  beforeAll(async () => {
    [redis, vm] = await Promise.all([RedisServer.start(), VictoriaMetrics.start()]);
    probe = new Redis(redis.port, "127.0.0.1");
  });
  afterAll(async () => {
    probe.disconnect();
    await Promise.all([redis.stop(), vm.stop()]);
  });

  it("runs 10 s at 2000 ticks/s into Redis, InfluxDB and the journal, and the same seed trades the same twice", async () => {
    const first = dirs();
    const args = ["run", "--duration", "10", "--rate", "2000", "--seed", "7", "--start", String(START)];
    const run = await startVelox([...args, "--run-id", "a"], {
      VELOX_DATA_DIR: first.data,
      VELOX_LOG_DIR: first.logs,
      VELOX_REDIS_URL: redis.url,
      VELOX_INFLUX_URL: vm.url,
      VELOX_INFLUX_TOKEN: "unused-by-victoria-metrics",
    });
    expect(await run.exited, run.output()).toBe(0);
    const summary = runSummary(first.logs);
    expect(summary.ticks).toBe(20_000);

    // The journal: trades with their entry/exit conditions and stop-loss history.
    const dbPath = join(first.data, "velox.db");
    const journaled = trades(dbPath);
    expect(journaled.length).toBeGreaterThan(10);
    const closed = journaled.filter((t) => t.exit_price !== null);
    expect(closed.length).toBe(summary.trades_closed);
    const db = new Database(dbPath, { readonly: true });
    const conditions = db
      .prepare(
        "SELECT signal_type, COUNT(DISTINCT trade_id) AS n FROM signal_conditions GROUP BY signal_type",
      )
      .all() as { signal_type: string; n: number }[];
    expect(Object.fromEntries(conditions.map((c) => [c.signal_type, c.n]))).toEqual({
      entry: journaled.length,
      exit: closed.length,
    });
    const withStops = db.prepare("SELECT COUNT(DISTINCT trade_id) AS n FROM sl_updates").get() as {
      n: number;
    };
    expect(withStops.n).toBe(journaled.length);
    db.close();

    // Redis: latest ticks, indicators and open positions, with their TTLs.
    for (const symbol of ["AAPL", "MSFT", "GOOGL"]) {
      expect(Number(await probe.hget(keys.stockPrice(symbol), "close"))).toBeGreaterThan(0);
      expect(await probe.ttl(keys.stockPrice(symbol))).toBeGreaterThan(30);
      expect(await probe.ttl(keys.stockPrice(symbol))).toBeLessThanOrEqual(60);
      expect(await probe.hexists(keys.stockIndicators(symbol), "rsi_14")).toBe(1);
      expect(await probe.ttl(keys.stockIndicators(symbol))).toBeGreaterThan(240);
    }
    const open = journaled.filter((t) => t.exit_price === null);
    for (const trade of open) {
      const cached = JSON.parse(
        (await probe.hget(keys.activePositions(trade.symbol), trade.strategy_id)) ?? "{}",
      );
      expect(cached.trade_id).toBe(trade.trade_id);
      expect(await probe.ttl(keys.activePositions(trade.symbol))).toBeGreaterThan(86_000);
    }
    expect(Number(await probe.hget(keys.systemState(), "ticks_processed"))).toBe(20_000);

    // The time series: every tick and every closing trade reached the InfluxDB write path.
    const ticks = await vm.exportSeries('{__name__="ticks_close"}');
    expect(ticks.reduce((n, s) => n + s.values.length, 0)).toBe(20_000);
    const exits = await vm.exportSeries('{__name__="trades_pnl"}');
    expect(exits.reduce((n, s) => n + s.values.length, 0)).toBe(closed.length);
    expect((await vm.exportSeries('{__name__="positions_unrealized_pnl"}')).length).toBeGreaterThan(0);
    expect((await vm.exportSeries('{__name__="trailing_sl_current_sl"}')).length).toBeGreaterThan(0);
    expect((await vm.exportSeries('{__name__="strategy_metrics_pnl"}')).length).toBe(2);

    // The same seed on embedded defaults: the same trades, to the last digit.
    const second = dirs();
    const again = await startVelox([...args, "--run-id", "b"], {
      VELOX_DATA_DIR: second.data,
      VELOX_LOG_DIR: second.logs,
    });
    expect(await again.exited, again.output()).toBe(0);
    const strip = (rows: TradeRow[]) =>
      rows.map(({ trade_id, created_at, updated_at, ...rest }) => ({ ...rest, seq: trade_id.slice(2) }));
    expect(strip(trades(join(second.data, "velox.db")))).toEqual(strip(journaled));
  }, 120_000);

  it("on SIGTERM, flushes the journal, the cache window and the spool before exiting 0", async () => {
    const run1 = dirs();
    const deadPort = await freePort(); // InfluxDB unreachable: every point must end up in the spool
    const run = await startVelox(
      ["run", "--rate", "1000", "--seed", "3", "--start", String(START), "--run-id", "t"],
      {
        VELOX_DATA_DIR: run1.data,
        VELOX_LOG_DIR: run1.logs,
        VELOX_REDIS_URL: redis.url,
        VELOX_INFLUX_URL: `http://127.0.0.1:${deadPort}`,
        VELOX_INFLUX_TOKEN: "t",
      },
    );
    await new Promise((r) => setTimeout(r, 4_000));
    run.child.kill("SIGTERM");
    expect(await run.exited, run.output()).toBe(0);
    const summary = runSummary(run1.logs) as {
      ticks: number;
      fills: number;
      influx: { bufferedPoints: number; spoolPoints: number; droppedPoints: number };
    };
    expect(summary.ticks).toBeGreaterThan(1_000);
    expect(summary.influx.droppedPoints).toBe(0);

    // Journal: every fill the engine made is there (an entry or an exit of a trade).
    const journaled = trades(join(run1.data, "velox.db"));
    const fills = journaled.length + journaled.filter((t) => t.exit_price !== null).length;
    expect(fills).toBe(summary.fills);

    // Redis: the last coalesced window was flushed — the cached latest tick is the last one processed.
    const lastTick = Number(await probe.hget(keys.stockPrice("AAPL"), "timestamp"));
    expect(lastTick).toBeGreaterThan(START);

    // Spool: a fresh writer pointed at a live InfluxDB (VictoriaMetrics) delivers every tick.
    const writer = new InfluxWriter({
      url: vm.url,
      org: "velox",
      bucket: "trading",
      spoolPath: join(run1.data, INFLUX_SPOOL_FILE),
      flushIntervalMs: 50,
    });
    const deadline = Date.now() + 30_000;
    while (writer.stats().spoolPoints > 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    await writer.close();
    const seed3 = await vm.exportSeries('{__name__="ticks_close"}', { start: START / 1000 });
    const delivered = seed3.reduce((n, s) => n + s.timestamps.filter((t) => t >= START).length, 0);
    // The first test's run wrote 20,000 ticks at the same START; these are the SIGTERM run's on top.
    expect(delivered - 20_000).toBe(summary.ticks);
    const aapl = seed3.find((s) => s.metric.symbol === "AAPL");
    expect(aapl?.timestamps).toContain(lastTick);
  }, 120_000);
});

describe.skipIf(skip)("velox replay, end to end", () => {
  let vm: VictoriaMetrics;
  beforeAll(async () => {
    vm = await VictoriaMetrics.start();
  });
  afterAll(async () => {
    await vm.stop();
  });

  it("replays a CSV with bad rows to the end, counting each by reason, its ticks tagged source=replay", async () => {
    const run1 = dirs();
    const csv = join(mkdtempSync(join(tmpdir(), "velox-csv-")), "ticks.csv");
    const rows = ["timestamp,symbol,open,high,low,close,volume"];
    for (let i = 0; i < 400; i++) {
      const t = START + i * 1000;
      const p = (100 + Math.sin(i / 10) * 5).toFixed(2);
      if (i % 20 === 5) rows.push(`${t},AAPL,${p},${p},${p},NaN,10`);
      else if (i % 20 === 15) rows.push(`${t},aapl bad,${p},${p},${p},${p},10`);
      else rows.push(`${t},AAPL,${p},${p},${p},${p},10`);
    }
    writeFileSync(csv, `${rows.join("\n")}\n`);
    const run = await startVelox(["replay", csv, "--run-id", "r"], {
      VELOX_DATA_DIR: run1.data,
      VELOX_LOG_DIR: run1.logs,
      VELOX_INFLUX_URL: vm.url,
      VELOX_INFLUX_TOKEN: "not checked by VictoriaMetrics",
    });
    expect(await run.exited, run.output()).toBe(0);
    const summary = runSummary(run1.logs) as { ticks: number; rejected: Record<string, number> };
    // 400 rows, every 20th from row 5 has a NaN close and every 20th from row 15 a bad symbol.
    expect(summary.ticks).toBe(360);
    expect(summary.rejected).toMatchObject({ not_a_number: 20, bad_symbol: 20 });
    // Replayed ticks say so: the validator of a replay is the replay's, not the simulator's.
    const replayed = await vm.exportSeries(`ticks_close{symbol="AAPL"}`);
    expect(replayed.map((s) => s.metric.source)).toEqual(["replay"]);
    expect(replayed[0]?.values).toHaveLength(360);
  }, 60_000);
});
