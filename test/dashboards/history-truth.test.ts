import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTicksCsv } from "../../scripts/generate-sample-csv.js";
import { generateTicks } from "../../src/market/simulator.js";
import { DATASOURCES } from "../../src/schema/grafana.js";
import { skipWithout } from "../helpers/backend.js";
import {
  dashboard,
  leftoverReferences,
  panelsOf,
  postgresText,
  type VariableValues,
  variablesOf,
} from "../helpers/dashboards.js";
import { createTestDatabase, postgresAvailable, type TestDatabase } from "../helpers/postgres.js";
import { RedisServer } from "../helpers/redis-server.js";
import { runSummary, startVelox } from "../helpers/velox-process.js";

/**
 * The History dashboard against a real run: `velox run` with the PostgreSQL history store (the
 * machine's PostgreSQL 15, native mode) and Redis on, then every History target and variable query,
 * with Grafana's variables and PostgreSQL macros expanded as Grafana expands them, runs on that
 * database and returns rows with the columns its panel needs. No Grafana server runs here; the
 * expansion is restated from Grafana's documentation (test/helpers/dashboards.ts).
 */

const available =
  (await postgresAvailable("the History dashboard's queries")) &&
  !skipWithout("redis-server", "the History dashboard's queries");

const START = Date.parse("2026-11-04T10:00:00Z");
const RUN_SECONDS = 150;
/**
 * From the replay's first tick to a minute from now: the ticks and fills carry the replay's event
 * time, the archived figures the time of the archival pass.
 */
const RANGE = { fromMs: START - 60_000, toMs: Date.now() + 600_000 };

describe.skipIf(!available)("History dashboard queries return data from a real run", () => {
  let db: TestDatabase;
  let redis: RedisServer;
  let client: pg.Client;

  beforeAll(async () => {
    [db, redis] = await Promise.all([createTestDatabase(), RedisServer.start()]);
    const root = mkdtempSync(join(tmpdir(), "velox-history-truth-"));
    // 150 s of event time at 40 ticks/s (3 symbols): three 1-minute bars per symbol, replayed as
    // fast as it goes.
    const csv = join(root, "ticks.csv");
    await writeTicksCsv(csv, generateTicks({ seed: 9, rate: 40, ticks: RUN_SECONDS * 40, startTime: START }));
    const run = await startVelox(["replay", csv, "--speed", "max"], {
      VELOX_DATA_DIR: join(root, "data"),
      VELOX_LOG_DIR: join(root, "logs"),
      VELOX_POSTGRES_URL: db.url,
      VELOX_POSTGRES_ARCHIVE_SECONDS: "1",
      VELOX_REDIS_URL: redis.url,
    });
    expect(await run.exited, run.output()).toBe(0);
    expect(runSummary(join(root, "logs")).ticks).toBe(RUN_SECONDS * 40);
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  }, 240_000);

  afterAll(async () => {
    await client?.end();
    await Promise.all([db?.drop(), redis?.stop()]);
  });

  const history = dashboard("history");
  const query = async (sql: string) => (await client.query(sql)).rows as Record<string, unknown>[];

  /** Each variable's values as its query returns them; All = every value (Grafana's expansion without allValue). */
  async function variableValues(): Promise<VariableValues> {
    const values: VariableValues = {};
    for (const v of variablesOf(history)) {
      expect(v.datasource?.uid, v.name).toBe(DATASOURCES.postgres.uid);
      const rows = await query(postgresText({ rawSql: String(v.query) }, values, RANGE));
      const list = rows.map((r) => String(Object.values(r)[0]));
      expect(list.length, `variable ${v.name}`).toBeGreaterThan(0);
      values[v.name] = list;
    }
    return values;
  }

  it("fills every variable from the store", async () => {
    const values = await variableValues();
    expect(values.symbol).toEqual(["AAPL", "GOOGL", "MSFT"]);
    expect(values.strategy).toEqual(["rsi_mr", "supertrend"]);
  });

  it("runs every target and returns rows with the columns its panel reads", async () => {
    const values = await variableValues();
    const targets = panelsOf(history).flatMap((panel) =>
      (panel.targets ?? []).map((target) => ({ panel, target })),
    );
    expect(targets.length).toBeGreaterThan(8);
    for (const { panel, target } of targets) {
      expect(target.datasource?.uid, panel.title).toBe(DATASOURCES.postgres.uid);
      const sql = postgresText(target, values, RANGE);
      expect(leftoverReferences(sql), panel.title).toEqual([]);
      const rows = await query(sql);
      expect(rows.length, `${panel.title}: ${sql}`).toBeGreaterThan(0);
      if (target.format === "time_series") {
        expect(Object.keys(rows[0] ?? {}), panel.title).toContain("time");
        // Grafana needs time ascending in a time series.
        const times = rows.map((r) => Number(r.time instanceof Date ? r.time.getTime() : r.time));
        expect(times, panel.title).toEqual([...times].sort((a, b) => a - b));
      }
    }
  });

  it("shows the run's figures: every tick in the 1-minute view, every fill, the archived counters", async () => {
    const values = await variableValues();
    const run = async (title: string) => {
      const panel = panelsOf(history).find((p) => p.title === title);
      const target = panel?.targets?.[0];
      if (!target) throw new Error(`no panel ${title}`);
      return query(postgresText(target, values, RANGE));
    };
    const bars = await run("Latest 1-minute bars");
    expect(bars.reduce((n, r) => n + Number(r.ticks), 0)).toBe(RUN_SECONDS * 40);
    const [fills] = await run("Fills");
    const [{ n } = { n: 0 }] = await query("SELECT count(*)::int AS n FROM trade_data");
    expect(Number(fills?.fills)).toBe(n);
    expect(n).toBeGreaterThan(0);
    const counters = await run("Strategy trades (archived from Redis)");
    expect(new Set(counters.map((r) => r.metric))).toEqual(new Set(["rsi_mr", "supertrend"]));
  });
});
