import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { HISTORY_TABLES } from "../../src/schema/postgres.js";
import { LineSpool } from "../../src/storage/line-spool.js";
import { historySpoolFile } from "../../src/storage/postgres-history.js";
import { createTestDatabase, postgresAvailable, type TestDatabase } from "../helpers/postgres.js";
import { hasPgBinaries, PostgresServer } from "../helpers/postgres-server.js";
import { freePort } from "../helpers/redis-server.js";
import { runSummary, startVelox } from "../helpers/velox-process.js";
import { until } from "../helpers/wait.js";

/**
 * `velox run` with the PostgreSQL history store on, in a child process, against real PostgreSQL
 * servers: the machine's (a database per test) and, for the outage, one the test owns (initdb and
 * pg_ctl) so it can stop it for 30 s mid-run.
 */

const available = await postgresAvailable("the PostgreSQL end-to-end runs");
if (!hasPgBinaries() && process.env.CI === "true") throw new Error("CI=true: initdb/pg_ctl not found");

const START = Date.parse("2026-11-03T14:00:00Z");
const databases: TestDatabase[] = [];
afterAll(async () => {
  for (const db of databases) await db.drop();
});

function dirs() {
  const root = mkdtempSync(join(tmpdir(), "velox-pg-e2e-"));
  return { data: join(root, "data"), logs: join(root, "logs") };
}

async function counts(url: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const one = async (sql: string) => Number((await client.query(sql)).rows[0]?.n ?? 0);
    return {
      prices: await one("SELECT count(*) AS n FROM price_data"),
      distinctPrices: await one("SELECT count(DISTINCT (symbol, timestamp)) AS n FROM price_data"),
      fills: await one("SELECT count(*) AS n FROM trade_data"),
      distinctFills: await one("SELECT count(DISTINCT order_id) AS n FROM trade_data"),
      metrics: await one("SELECT count(*) AS n FROM metrics_data"),
    };
  } finally {
    await client.end();
  }
}

interface HistorySummary {
  rowsWritten: Record<string, number>;
  rowsDuplicate: number;
  spoolRows: number;
  batchesSpooled: number;
  batchesReplayed: number;
  droppedRows: number;
}

describe.skipIf(!available)("velox run with the PostgreSQL history store", () => {
  it("writes one price_data row per tick and one trade_data row per fill", async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const d = dirs();
    const run = await startVelox(
      ["run", "--duration", "6", "--rate", "1000", "--seed", "7", "--start", String(START)],
      {
        VELOX_DATA_DIR: d.data,
        VELOX_LOG_DIR: d.logs,
        VELOX_POSTGRES_URL: db.url,
        VELOX_POSTGRES_ARCHIVE_SECONDS: "2",
      },
    );
    expect(await run.exited, run.output()).toBe(0);
    const summary = runSummary(d.logs) as { ticks: number; fills: number; history: HistorySummary };
    expect(summary.ticks).toBe(6_000);
    const c = await counts(db.url);
    expect(c.prices).toBe(summary.ticks);
    expect(c.distinctPrices).toBe(summary.ticks);
    expect(summary.fills).toBeGreaterThan(10);
    expect(c.fills).toBe(summary.fills);
    expect(c.distinctFills).toBe(summary.fills);
    expect(summary.history).toMatchObject({ spoolRows: 0, droppedRows: 0 });
  }, 60_000);

  it.skipIf(!hasPgBinaries())(
    "loses nothing and duplicates nothing when its PostgreSQL stops for 30 s mid-run",
    async () => {
      const server = await PostgresServer.start();
      try {
        const d = dirs();
        const run = await startVelox(
          [
            "run",
            "--duration",
            "50",
            "--rate",
            "200",
            "--seed",
            "3",
            "--start",
            String(START),
            "--status-interval",
            "1",
          ],
          { VELOX_DATA_DIR: d.data, VELOX_LOG_DIR: d.logs, VELOX_POSTGRES_URL: server.url },
        );
        await new Promise((resolve) => setTimeout(resolve, 8_000));
        await server.halt();
        await new Promise((resolve) => setTimeout(resolve, 30_000));
        await server.launch();
        expect(await run.exited, run.output()).toBe(0);
        const summary = runSummary(d.logs) as { ticks: number; fills: number; history: HistorySummary };
        expect(summary.ticks).toBe(10_000);
        // It went through the spool, and came back out of it.
        expect(summary.history.batchesSpooled).toBeGreaterThan(0);
        expect(summary.history.batchesReplayed).toBe(summary.history.batchesSpooled);
        expect(summary.history).toMatchObject({ spoolRows: 0, droppedRows: 0 });
        const c = await counts(server.url);
        expect(c.prices).toBe(summary.ticks);
        expect(c.distinctPrices).toBe(summary.ticks);
        expect(c.fills).toBe(summary.fills);
        expect(c.distinctFills).toBe(summary.fills);
      } finally {
        await server.stop();
      }
    },
    120_000,
  );

  it("delivers what a SIGKILLed run left spooled, once", async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const d = dirs();
    const metricsPort = await freePort();
    // A server that is not there: everything goes to the spool.
    const killed = await startVelox(
      ["run", "--duration", "600", "--rate", "500", "--seed", "5", "--start", String(START)],
      {
        VELOX_DATA_DIR: d.data,
        VELOX_LOG_DIR: d.logs,
        VELOX_POSTGRES_URL: `postgres://postgres@127.0.0.1:${await freePort()}/none`,
        VELOX_POSTGRES_FLUSH_MS: "200",
        VELOX_METRICS_PORT: String(metricsPort),
      },
    );
    const spooled = async () => {
      const text = await fetch(`http://127.0.0.1:${metricsPort}/metrics`).then(
        (r) => r.text(),
        () => "",
      );
      return Number(/^velox_history_spool_rows (\d+)/m.exec(text)?.[1] ?? 0);
    };
    await until(async () => (await spooled()) > 3_000, 30_000);
    killed.child.kill("SIGKILL");
    await killed.exited;
    const left: Record<string, number> = {};
    for (const table of HISTORY_TABLES) {
      const spool = new LineSpool(join(d.data, historySpoolFile(table)), { maxPoints: 2_000_000 });
      left[table] = spool.points();
      spool.close();
    }
    const spooledPrices = left.price_data ?? 0;
    expect(spooledPrices).toBeGreaterThan(1_000);
    // The fills the journal holds: each trade's entry, and the exit of each closed one.
    const journal = new Database(join(d.data, "velox.db"), { readonly: true });
    const journalFills = journal
      .prepare("SELECT count(*) + count(exit_time) AS n FROM trades")
      .pluck()
      .get() as number;
    journal.close();
    expect(journalFills).toBeGreaterThan(0);

    // A new run on the same data directory, with PostgreSQL there, and ticks of another day.
    const next = await startVelox(
      ["run", "--duration", "1", "--rate", "100", "--seed", "6", "--start", String(START + 86_400_000)],
      { VELOX_DATA_DIR: d.data, VELOX_LOG_DIR: join(d.logs, "next"), VELOX_POSTGRES_URL: db.url },
    );
    expect(await next.exited, next.output()).toBe(0);
    const summary = runSummary(join(d.logs, "next")) as { history: HistorySummary };
    expect(summary.history).toMatchObject({ spoolRows: 0, droppedRows: 0 });
    const [prices] = await db.query<{ n: string; distinct_n: string }>(
      "SELECT count(*) AS n, count(DISTINCT (symbol, timestamp)) AS distinct_n FROM price_data WHERE timestamp < $1",
      [new Date(START + 86_400_000)],
    );
    expect(Number(prices?.n)).toBe(spooledPrices);
    expect(Number(prices?.distinct_n)).toBe(spooledPrices);
    // The killed run's fills: those it spooled, and the rest from the journal by the archiver, once each.
    const [fills] = await db.query<{ n: string; distinct_n: string }>(
      "SELECT count(*) AS n, count(DISTINCT order_id) AS distinct_n FROM trade_data WHERE timestamp < $1",
      [new Date(START + 86_400_000)],
    );
    expect(Number(fills?.n)).toBe(journalFills);
    expect(Number(fills?.distinct_n)).toBe(journalFills);
    expect(journalFills).toBeGreaterThanOrEqual(left.trade_data ?? 0);
  }, 90_000);
});
