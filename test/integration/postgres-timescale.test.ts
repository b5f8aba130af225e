import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "libpg-query";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { PG_MIGRATIONS } from "../../src/schema/postgres.js";
import { PostgresHistory } from "../../src/storage/postgres-history.js";
import {
  DEFAULT_SCHEMA_SETTINGS,
  migratePostgres,
  timescaleAvailable,
} from "../../src/storage/postgres-migrate.js";
import { createTestDatabase, postgresAvailable, type TestDatabase } from "../helpers/postgres.js";

/**
 * The TimescaleDB mode. The extension is not in Debian, so it is not on this project's machines:
 * here its DDL is parsed by PostgreSQL 16's own parser (libpg-query, the server's parser built as
 * WebAssembly; the timescale/timescaledb image of the compose stack is PostgreSQL 16), and every
 * statement plain PostgreSQL can run is run, in order, inside a transaction that is rolled back.
 * Where the extension is installed, the whole mode runs for real; elsewhere that part skips, loudly.
 */

const available = await postgresAvailable("the TimescaleDB schema tests");
const TIMESCALE_ONLY =
  /create_hypertable|add_continuous_aggregate_policy|add_compression_policy|timescaledb\./;

const databases: TestDatabase[] = [];
afterEach(async () => {
  for (const db of databases.splice(0)) await db.drop();
});

/** The statements of one SQL text, each as written, by the parser's own locations. */
async function statements(sql: string): Promise<string[]> {
  const tree = (await parse(sql)) as { stmts: { stmt_location?: number; stmt_len?: number }[] };
  return tree.stmts.map((s) => {
    const start = s.stmt_location ?? 0;
    return (s.stmt_len ? sql.slice(start, start + s.stmt_len) : sql.slice(start)).trim();
  });
}

describe("TimescaleDB migrations", () => {
  it("parse with PostgreSQL's parser, every statement of every version", async () => {
    for (const migration of PG_MIGRATIONS) {
      const sql = migration.sql("timescale", DEFAULT_SCHEMA_SETTINGS);
      const list = await statements(sql);
      expect(list.length, `migration ${migration.version}`).toBeGreaterThan(1);
    }
    const all = (
      await Promise.all(PG_MIGRATIONS.map((m) => statements(m.sql("timescale", DEFAULT_SCHEMA_SETTINGS))))
    ).flat();
    // Hypertables for the three tables, the continuous aggregate, its refresh and the compression policy.
    expect(all.filter((s) => s.includes("create_hypertable")).length).toBe(3);
    expect(all.some((s) => /WITH \(timescaledb\.continuous\)/.test(s))).toBe(true);
    expect(all.some((s) => s.includes("add_continuous_aggregate_policy"))).toBe(true);
    expect(all.some((s) => s.includes("add_compression_policy"))).toBe(true);
    // A syntax error would have been caught: the parser is strict.
    await expect(parse("CREATE TABLE (")).rejects.toThrow(/syntax error/);
  });

  it("takes the chunk interval only as whole days", () => {
    expect(PG_MIGRATIONS[0]?.sql("timescale", { chunkDays: 7, compressAfterDays: 7 })).toContain(
      "INTERVAL '7 days'",
    );
    expect(() => PG_MIGRATIONS[0]?.sql("timescale", { chunkDays: 1.5, compressAfterDays: 7 })).toThrow(
      RangeError,
    );
  });

  it.skipIf(!available)("run, as far as plain PostgreSQL can, in a transaction rolled back", async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query("BEGIN");
      let ran = 0;
      for (const migration of PG_MIGRATIONS) {
        for (const statement of await statements(migration.sql("timescale", DEFAULT_SCHEMA_SETTINGS))) {
          if (TIMESCALE_ONLY.test(statement)) continue;
          await client.query(statement);
          ran++;
        }
      }
      expect(ran).toBeGreaterThanOrEqual(5);
      // The plain tables have the keys seed 003 names.
      const { rows } = await client.query(
        `SELECT conrelid::regclass::text AS t, pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE contype = 'p' AND connamespace = 'public'::regnamespace ORDER BY 1`,
      );
      expect(rows).toEqual([
        { t: "metrics_data", def: 'PRIMARY KEY (metric_name, "timestamp", labels)' },
        { t: "price_data", def: 'PRIMARY KEY (symbol, "timestamp")' },
        { t: "trade_data", def: 'PRIMARY KEY (order_id, "timestamp")' },
        { t: "velox_archive_state", def: "PRIMARY KEY (name)" },
      ]);
    } finally {
      await client.query("ROLLBACK").catch(() => undefined);
      await client.end();
    }
  });
});

describe.skipIf(!available)("TimescaleDB mode on a server that has the extension", async () => {
  const probe = available ? await createTestDatabase() : undefined;
  let has = false;
  if (probe) {
    const client = new pg.Client({ connectionString: probe.url });
    await client.connect();
    has = await timescaleAvailable(client);
    await client.end();
    await probe.drop();
  }
  if (!has) {
    console.warn(
      "\n*** SKIPPING the TimescaleDB mode: the timescaledb extension is not installed on this PostgreSQL (it is not in Debian); its DDL is parsed and partly run above ***\n",
    );
  }

  it.skipIf(!has)("migrates to hypertables with a continuous aggregate and writes through them", async () => {
    const db = await createTestDatabase();
    databases.push(db);
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      expect((await migratePostgres(client)).mode).toBe("timescale");
      const { rows } = await client.query(
        "SELECT hypertable_name FROM timescaledb_information.hypertables ORDER BY 1",
      );
      expect(rows.map((r) => r.hypertable_name)).toEqual(["metrics_data", "price_data", "trade_data"]);
    } finally {
      await client.end();
    }
    const h = new PostgresHistory({
      url: db.url,
      spoolDir: mkdtempSync(join(tmpdir(), "velox-ts-")),
      maxSpoolRows: 1_000,
    });
    h.writePrice({
      symbol: "TS",
      timestamp: Date.now(),
      open: 1,
      high: 1,
      low: 1,
      close: 1,
      volume: 1,
      source: "simulator",
    });
    await h.flush();
    expect(h.stats()).toMatchObject({ mode: "timescale", rowsWritten: { price_data: 1 } });
    await h.close();
  });
});
