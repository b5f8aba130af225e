import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { SchemaVersionError } from "../../src/domain/errors.js";
import type { Tick } from "../../src/domain/tick.js";
import { utcDay } from "../../src/domain/time.js";
import { PG_MIGRATIONS, PG_SCHEMA_VERSION, PG_TABLES, partitionName } from "../../src/schema/postgres.js";
import { HistoryArchiver } from "../../src/storage/history-archiver.js";
import { PostgresHistory } from "../../src/storage/postgres-history.js";
import { currentPgSchema, migratePostgres } from "../../src/storage/postgres-migrate.js";
import { TradeJournal } from "../../src/storage/trade-journal.js";
import { memoryLogger } from "../helpers/memory-logger.js";
import { ADMIN_URL, createTestDatabase, postgresAvailable, type TestDatabase } from "../helpers/postgres.js";
import { hasPgBinaries, PostgresServer } from "../helpers/postgres-server.js";
import { makeTrade, tempJournalPath } from "../helpers/trades.js";

/**
 * The history store against the machine's real PostgreSQL 15 (plain, without TimescaleDB: the
 * native mode), each test in a database of its own.
 */

const available = await postgresAvailable("the PostgreSQL history store tests");
const DAY = 86_400_000;

const databases: TestDatabase[] = [];
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  for (const db of databases.splice(0)) await db.drop();
});

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

async function withClient<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Columns, constraints, indexes, partitioning and views: what a migration path must end in. */
async function schemaOf(db: TestDatabase): Promise<string> {
  const columns = await db.query(
    `SELECT table_name, column_name, data_type, is_nullable, column_default
       FROM information_schema.columns WHERE table_schema = 'public' AND table_name NOT LIKE '%\\_p2%'
      ORDER BY table_name, column_name`,
  );
  const indexes = await db.query(
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
  );
  const partitioned = await db.query(
    "SELECT c.relname, p.partstrat FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid ORDER BY 1",
  );
  const views = await db.query(
    "SELECT matviewname, definition FROM pg_matviews WHERE schemaname = 'public' ORDER BY 1",
  );
  return JSON.stringify({ columns, indexes, partitioned, views });
}

function history(
  db: TestDatabase,
  spoolDir: string,
  overrides: Partial<ConstructorParameters<typeof PostgresHistory>[0]> = {},
) {
  const h = new PostgresHistory({
    url: db.url,
    spoolDir,
    maxSpoolRows: 100_000,
    flushIntervalMs: 60_000,
    aggregateRefreshMs: 60_000,
    ...overrides,
  });
  closers.push(() => h.close());
  return h;
}

const tick = (symbol: string, timestamp: number, close = 100): Tick => ({
  symbol,
  timestamp,
  open: close,
  high: close + 1,
  low: close - 1,
  close,
  volume: 10,
  source: "simulator",
});

describe.skipIf(!available)("PostgreSQL history store", () => {
  it("migrates an empty database to the latest version, natively partitioned by day", async () => {
    const db = await database();
    const result = await withClient(db.url, (c) => migratePostgres(c));
    expect(result).toEqual({ from: 0, to: PG_SCHEMA_VERSION, mode: "native" });
    const partitioned = await db.query<{ relname: string }>(
      "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid ORDER BY 1",
    );
    expect(partitioned.map((r) => r.relname)).toEqual(["metrics_data", "price_data", "trade_data"]);
    const versions = await db.query(`SELECT version, mode FROM ${PG_TABLES.schemaVersion} ORDER BY version`);
    expect(versions).toEqual(PG_MIGRATIONS.map((m) => ({ version: m.version, mode: "native" })));
    // Running again is a no-op.
    expect(await withClient(db.url, (c) => migratePostgres(c))).toMatchObject({
      from: PG_SCHEMA_VERSION,
      to: PG_SCHEMA_VERSION,
    });
  });

  it("reaches the same schema from every earlier version", async () => {
    const fresh = await database();
    await withClient(fresh.url, (c) => migratePostgres(c));
    const expected = await schemaOf(fresh);
    for (let version = 0; version < PG_SCHEMA_VERSION; version++) {
      const db = await database();
      await withClient(db.url, (c) => migratePostgres(c, { target: version }));
      expect((await withClient(db.url, (c) => currentPgSchema(c))).version).toBe(version);
      const result = await withClient(db.url, (c) => migratePostgres(c));
      expect(result).toMatchObject({ from: version, to: PG_SCHEMA_VERSION });
      expect(await schemaOf(db), `from version ${version}`).toBe(expected);
    }
  });

  it("refuses a database migrated by a newer build", async () => {
    const db = await database();
    await withClient(db.url, (c) => migratePostgres(c));
    await db.query(`INSERT INTO ${PG_TABLES.schemaVersion} (version, mode) VALUES ($1, 'native')`, [
      PG_SCHEMA_VERSION + 1,
    ]);
    await expect(withClient(db.url, (c) => migratePostgres(c))).rejects.toBeInstanceOf(SchemaVersionError);
  });

  it("creates partitions ahead and puts each row into its day's partition; a batch sent twice adds nothing", async () => {
    const db = await database();
    const h = history(db, mkdtempSync(join(tmpdir(), "velox-pg-")));
    const now = Date.now();
    const old = Date.parse("2025-03-14T10:00:00Z");
    const ticks = [tick("AAA", old), tick("AAA", old + DAY), tick("BBB", old + DAY + 1), tick("AAA", now)];
    for (const t of ticks) h.writePrice(t);
    await h.flush();
    // Today and three days ahead exist for every table, before any row needs them.
    for (let ahead = 0; ahead <= 3; ahead++) {
      const day = utcDay(now + ahead * DAY);
      for (const table of ["price_data", "trade_data", "metrics_data"] as const) {
        const [row] = await db.query<{ present: boolean }>("SELECT to_regclass($1) IS NOT NULL AS present", [
          partitionName(table, day),
        ]);
        expect(row?.present, `${table} ${day}`).toBe(true);
      }
    }
    const rows = await db.query<{ symbol: string; part: string; ts: Date }>(
      "SELECT symbol, tableoid::regclass::text AS part, timestamp AS ts FROM price_data ORDER BY timestamp, symbol",
    );
    expect(rows.map((r) => [r.symbol, r.part, r.ts.getTime()])).toEqual(
      ticks.map((t) => [t.symbol, partitionName("price_data", utcDay(t.timestamp)), t.timestamp]),
    );
    // The same rows again (a replay after a crash): nothing new.
    for (const t of ticks) h.writePrice(t);
    await h.flush();
    expect((await db.query("SELECT 1 FROM price_data")).length).toBe(ticks.length);
    expect(h.stats()).toMatchObject({
      rowsWritten: { price_data: 4 },
      rowsDuplicate: 4,
      up: true,
      mode: "native",
    });
  });

  it("keeps text with tabs, newlines and backslashes intact through COPY", async () => {
    const db = await database();
    const h = history(db, mkdtempSync(join(tmpdir(), "velox-pg-")));
    const labels = { note: "tab\there\nnew line \\ back\\slash \r end" };
    h.writeMetrics([{ metric_name: "odd.name", timestamp: Date.now(), value: 1.5, labels }]);
    await h.flush();
    const [row] = await db.query<{ labels: unknown; value: number }>(
      "SELECT labels, value FROM metrics_data",
    );
    expect(row).toEqual({ labels, value: 1.5 });
  });

  it("spools while PostgreSQL is unreachable, and a later process delivers the spool once", async () => {
    const db = await database();
    const spoolDir = mkdtempSync(join(tmpdir(), "velox-pg-"));
    // Nothing listens on port 1: every attempt fails at once.
    const down = new PostgresHistory({
      url: "postgres://postgres@127.0.0.1:1/none",
      spoolDir,
      maxSpoolRows: 1_000,
      flushIntervalMs: 60_000,
    });
    const t0 = Date.parse("2026-01-05T09:30:00Z");
    for (let i = 0; i < 250; i++) down.writePrice(tick("SPL", t0 + i));
    await down.flush();
    expect(down.stats()).toMatchObject({ up: false, spoolRows: 250, bufferedRows: 0 });
    expect(down.stats().writeErrors).toBeGreaterThan(0);
    await down.close();
    const up = history(db, spoolDir);
    await up.flush();
    expect(up.stats()).toMatchObject({
      spoolRows: 0,
      batchesReplayed: 1,
      rowsWritten: { price_data: 250 },
      rowsDuplicate: 0,
    });
    expect((await db.query("SELECT DISTINCT timestamp FROM price_data")).length).toBe(250);
  });

  it("names VELOX_POSTGRES_URL in one error line when the database does not exist, and spools meanwhile", async () => {
    const { logger, entries } = memoryLogger();
    const missing = new URL(ADMIN_URL);
    missing.pathname = "/velox_no_such_database";
    const h = new PostgresHistory({
      url: missing.toString(),
      spoolDir: mkdtempSync(join(tmpdir(), "velox-pg-")),
      maxSpoolRows: 1_000,
      flushIntervalMs: 60_000,
      logger,
    });
    closers.push(() => h.close());
    h.writePrice(tick("MISS", Date.now()));
    await h.flush();
    await h.flush();
    const errors = entries.filter((e) => e.level === 50);
    expect(errors).toHaveLength(1);
    expect(String(errors[0]?.msg)).toMatch(
      /^VELOX_POSTGRES_URL: database "velox_no_such_database" does not exist \(create the database/,
    );
    expect(h.stats()).toMatchObject({ up: false, spoolRows: 1 });
  });

  it("refreshes the 1-minute OHLCV view from price_data", async () => {
    const db = await database();
    const h = history(db, mkdtempSync(join(tmpdir(), "velox-pg-")));
    const t0 = Date.parse("2026-02-02T10:00:00Z");
    for (const [i, close] of [101, 99, 104, 102].entries())
      h.writePrice(tick("OHLC", t0 + i * 10_000, close));
    h.writePrice(tick("OHLC", t0 + 60_000, 110));
    await h.flush();
    await h.refreshNow();
    await h.refreshNow(); // the second one runs CONCURRENTLY
    const bars = await db.query<Record<string, unknown>>(
      `SELECT bucket, open, high, low, close, volume, ticks::int AS ticks FROM ${PG_TABLES.price1m} ORDER BY bucket`,
    );
    expect(bars).toEqual([
      { bucket: new Date(t0), open: 101, high: 105, low: 98, close: 102, volume: 40, ticks: 4 },
      { bucket: new Date(t0 + 60_000), open: 110, high: 111, low: 109, close: 110, volume: 10, ticks: 1 },
    ]);
    expect(h.stats().aggregateRefreshes).toBe(2);
  });

  it("archives the journal's fills from where the last pass stopped", async () => {
    const db = await database();
    const journal = TradeJournal.open(tempJournalPath("velox-archive-"));
    closers.push(async () => journal.close());
    const h = history(db, mkdtempSync(join(tmpdir(), "velox-pg-")));
    const t0 = 1_767_000_000;
    journal.insertTrade(makeTrade("A1", t0, { fees: 1 }));
    journal.insertTrade(makeTrade("A2", t0 + 1));
    journal.closeTrade("A1", { exit_time: t0 + 60, exit_price: 110, exit_reason: "target", exit_fees: 1 });
    const archiver = new HistoryArchiver({ target: h, journal, intervalMs: 3_600_000 });
    closers.push(() => archiver.close());
    await archiver.runOnce();
    const fills = async () =>
      db.query<Record<string, unknown>>(
        "SELECT order_id, side, price, fees, pnl FROM trade_data ORDER BY order_id",
      );
    expect(await fills()).toEqual([
      { order_id: "A1:entry", side: "buy", price: 100, fees: 2, pnl: null },
      { order_id: "A1:exit", side: "sell", price: 110, fees: 2, pnl: 98 },
      { order_id: "A2:entry", side: "buy", price: 100, fees: 0, pnl: null },
    ]);
    // A second archiver (a restart) resumes from the saved cursor: only A2's exit is new.
    journal.closeTrade("A2", { exit_time: t0 + 90, exit_price: 95, exit_reason: "stop_loss" });
    const again = new HistoryArchiver({ target: h, journal, intervalMs: 3_600_000 });
    closers.push(() => again.close());
    const duplicatesBefore = h.stats().rowsDuplicate;
    await again.runOnce();
    expect(again.stats()).toMatchObject({ passes: 1, failedPasses: 0, tradesArchived: 1 });
    // Only A2 was read again (its entry a duplicate, its exit new).
    expect(h.stats().rowsDuplicate - duplicatesBefore).toBe(1);
    expect((await fills()).map((f) => f.order_id)).toEqual(["A1:entry", "A1:exit", "A2:entry", "A2:exit"]);
  });
});

describe.skipIf(!available || !hasPgBinaries())("the compose stack's read-only Grafana role", () => {
  it("can read every history table VELOX creates afterwards, partitions and the 1-minute view included, and write none", async () => {
    // Roles belong to a cluster: a server of the test's own, set up as the timescaledb image sets up
    // its POSTGRES_USER (a superuser owning POSTGRES_DB), then the init script.
    const server = await PostgresServer.start();
    closers.push(() => server.stop());
    await withClient(server.url, async (c) => {
      await c.query("CREATE ROLE velox SUPERUSER LOGIN");
      await c.query("CREATE DATABASE velox OWNER velox");
    });
    const secrets = mkdtempSync(join(tmpdir(), "velox-pg-secret-"));
    writeFileSync(join(secrets, "postgres_grafana_password"), "a-test-password-of-the-role\n");
    const init = spawnSync("sh", ["postgres/init/velox-grafana-role.sh"], {
      env: {
        PATH: process.env.PATH,
        POSTGRES_USER: "velox",
        POSTGRES_DB: "velox",
        PGHOST: "127.0.0.1",
        PGPORT: String(server.port),
        POSTGRES_GRAFANA_PASSWORD_FILE: join(secrets, "postgres_grafana_password"),
      },
      encoding: "utf8",
    });
    expect(init.status, init.stderr).toBe(0);
    const at = (user: string) => `postgres://${user}@127.0.0.1:${server.port}/velox`;
    const h = new PostgresHistory({
      url: at("velox"),
      spoolDir: mkdtempSync(join(tmpdir(), "velox-pg-")),
      maxSpoolRows: 1_000,
    });
    closers.push(() => h.close());
    h.writePrice(tick("ROLE", Date.parse("2024-06-01T12:00:00Z")));
    h.writeFill({
      order_id: "R1:entry",
      timestamp: Date.now(),
      trade_id: "R1",
      strategy_id: "s",
      symbol: "ROLE",
      side: "buy",
      price: 1,
      quantity: 1,
      fees: 0,
      pnl: null,
    });
    await h.flush();
    await h.refreshNow();
    await withClient(at("velox_grafana"), async (grafana) => {
      for (const table of [
        PG_TABLES.priceData,
        PG_TABLES.tradeData,
        PG_TABLES.metricsData,
        PG_TABLES.price1m,
        partitionName("price_data", "2024-06-01"),
      ]) {
        await expect(grafana.query(`SELECT count(*) FROM ${table}`), table).resolves.toBeDefined();
      }
      await expect(
        grafana.query(
          "INSERT INTO trade_data (order_id, timestamp, trade_id, strategy_id, symbol, side, price, quantity, fees) VALUES ('x', now(), 'x', 's', 'X', 'buy', 1, 1, 0)",
        ),
      ).rejects.toThrow(/permission denied/);
      await expect(grafana.query("DELETE FROM price_data")).rejects.toThrow(/permission denied/);
      await expect(grafana.query("CREATE TABLE intruder (x int)")).rejects.toThrow(/permission denied/);
    });
  }, 60_000);
});

describe.skipIf(!available)("PostgreSQL history store under a slow server", () => {
  it("loses no batch that goes to the spool while a send is waiting on PostgreSQL", async () => {
    const db = await database();
    const h = history(db, mkdtempSync(join(tmpdir(), "velox-pg-")), { batchRows: 10 });
    const t0 = Date.parse("2026-03-02T10:00:00Z");
    h.writePrice(tick("SLOW", t0));
    await h.flush(); // migrated, partitions made
    // Another session holds price_data: the next send waits on its lock.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query("BEGIN");
    await blocker.query("LOCK TABLE price_data IN ACCESS EXCLUSIVE MODE");
    for (let i = 1; i <= 10; i++) h.writePrice(tick("SLOW", t0 + i));
    const waiting = h.flush();
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Meanwhile more than four batches pile up: they go to the spool.
    for (let i = 11; i <= 70; i++) h.writePrice(tick("SLOW", t0 + i));
    expect(h.stats().spoolRows).toBeGreaterThan(0);
    await blocker.query("COMMIT");
    await blocker.end();
    await waiting;
    await h.flush();
    expect(h.stats()).toMatchObject({ spoolRows: 0, bufferedRows: 0 });
    expect((await db.query("SELECT 1 FROM price_data")).length).toBe(71);
  });
});
