import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DATASOURCES } from "../../src/schema/grafana.js";
import { INFLUX_SCHEMA, MEASUREMENTS, msToNs } from "../../src/schema/influx.js";
import { InfluxWriter } from "../../src/storage/influx-writer.js";
import { skipWithout } from "../helpers/backend.js";
import { interpolate, targetsOn } from "../helpers/dashboards.js";
import { INFLUXD, InfluxDB1, V2WriteAdapter } from "../helpers/influxdb1.js";
import { memoryLogger } from "../helpers/memory-logger.js";
import { runSummary, startVelox } from "../helpers/velox-process.js";

/**
 * The InfluxDB write path and the InfluxQL panels on a real InfluxDB storage engine (Debian's
 * influxdb 1.6): a `velox run` writes through the client's `/api/v2/write`, bridged to InfluxDB's
 * `/write` by the adapter, and InfluxDB parses and stores every line — a malformed line or a field
 * type conflict would be a 400 here, where VictoriaMetrics answers 204.
 */

const START = Date.parse("2026-11-02T09:00:00Z");
const DURATION_S = 8;
const DB = "trading";

const skip = skipWithout(INFLUXD, "the InfluxDB write path and InfluxQL panels");

describe.skipIf(skip)("a real run into a real InfluxDB", () => {
  let influx: InfluxDB1;
  let adapter: V2WriteAdapter;
  let root: string;
  let summary: Record<string, unknown>;

  beforeAll(async () => {
    influx = await InfluxDB1.start();
    await influx.createDatabase(DB);
    adapter = await V2WriteAdapter.start(influx.url);
    root = mkdtempSync(join(tmpdir(), "velox-influxdb1-"));
    const run = await startVelox(
      ["run", "--duration", String(DURATION_S), "--rate", "1000", "--seed", "7", "--start", String(START)],
      {
        VELOX_DATA_DIR: join(root, "data"),
        VELOX_LOG_DIR: join(root, "logs"),
        VELOX_INFLUX_URL: adapter.url,
        VELOX_INFLUX_BUCKET: DB,
        VELOX_INFLUX_TOKEN: "not checked by InfluxDB 1.6",
        // The adapter is on this host, where `auto` sends bodies as they are; gzip on, so the
        // strict engine parses what a remote InfluxDB would get.
        VELOX_INFLUX_GZIP: "on",
      },
    );
    expect(await run.exited, run.output()).toBe(0);
    summary = runSummary(join(root, "logs"));
  }, 60_000);

  afterAll(async () => {
    await adapter?.stop();
    await influx?.stop();
  });

  describe("write path", () => {
    it("stores exactly the points the run reports written, none refused, gzip on the wire", async () => {
      const stats = summary.influx as { pointsWritten: number; failedPoints: number; spoolPoints: number };
      expect(stats.failedPoints).toBe(0);
      expect(stats.spoolPoints).toBe(0);
      expect(stats.pointsWritten).toBeGreaterThan(DURATION_S * 1000);
      expect(adapter.forwarded.every((f) => f.status === 204)).toBe(true);
      expect(adapter.forwarded.some((f) => f.gzip)).toBe(true);

      const counts: Record<string, number> = {};
      for (const m of MEASUREMENTS) counts[m] = await influx.countPoints(DB, m);
      for (const m of MEASUREMENTS) expect(counts[m], `points in ${m}`).toBeGreaterThan(0);
      expect(counts.ticks).toBe(summary.ticks);
      const stored = Object.values(counts).reduce((a, b) => a + b, 0);
      // Two points of one series at one timestamp would be one stored point: the sums must agree.
      expect(stored).toBe(stats.pointsWritten);
    });

    it("stores every field with the type the schema declares", async () => {
      const types = await influx.fieldTypes(DB);
      expect(Object.keys(types).sort()).toEqual([...MEASUREMENTS].sort());
      for (const m of MEASUREMENTS) {
        const declared: Readonly<Record<string, string>> = INFLUX_SCHEMA[m].fields;
        for (const [field, type] of Object.entries(types[m] ?? {})) {
          expect(declared[field], `${m}.${field} is not in the schema`).toBeDefined();
          expect(type, `${m}.${field}`).toBe(declared[field]);
        }
      }
    });

    it("passes InfluxDB's 400 for a malformed line back through the adapter", async () => {
      const res = await fetch(`${adapter.url}/api/v2/write?bucket=${DB}&precision=ns`, {
        method: "POST",
        body: "ticks,symbol=BAD close= 1700000000000000000",
      });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain("missing field value");
    });

    it("drops and logs a batch InfluxDB refuses for a field type conflict, as the writer's 4xx policy says", async () => {
      const db = "conflict";
      await influx.createDatabase(db);
      const t = START + 1000;
      // The shard first learns pnl as an integer; the writer then sends the schema's float.
      const seed = await fetch(`${influx.url}/write?db=${db}&precision=ms`, {
        method: "POST",
        body: `strategy_metrics,strategy_id=s pnl=1i ${t}`,
      });
      expect(seed.status).toBe(204);
      const { logger, entries } = memoryLogger();
      const writer = new InfluxWriter({
        url: adapter.url,
        org: "velox",
        bucket: db,
        spoolPath: join(root, "conflict-spool.db"),
        logger,
      });
      try {
        writer.write({
          measurement: "strategy_metrics",
          tags: { strategy_id: "s" },
          fields: { pnl: 2.5 },
          timestampNs: msToNs(t + 1000),
        });
        await writer.flush();
        expect(writer.stats()).toMatchObject({
          failedPoints: 1,
          pointsWritten: 0,
          retries: 0,
          spoolPoints: 0,
        });
        const logged = entries.find((e) => e.msg === "influx refused a batch: dropped, not retried");
        expect(logged).toMatchObject({ status: 400, points: 1 });
        expect(String(logged?.err)).toContain("field type conflict");
      } finally {
        await writer.close();
      }
    });
  });

  describe("InfluxQL panels", () => {
    it("every InfluxQL panel query, with Grafana's macros and variables filled in, returns series from the run", async () => {
      const journal = new Database(join(root, "data", "velox.db"), { readonly: true });
      const trade = journal
        .prepare(
          `SELECT t.trade_id, t.symbol FROM trades t
           WHERE t.status = 'closed' AND EXISTS (SELECT 1 FROM sl_updates s WHERE s.trade_id = t.trade_id)
           ORDER BY t.entry_time LIMIT 1`,
        )
        .get() as { trade_id: string; symbol: string } | undefined;
      journal.close();
      if (!trade) throw new Error("the run closed no trade that moved its stop");

      const targets = targetsOn(DATASOURCES.influxql.uid, ["influxql"]);
      expect(targets.length).toBe(4);
      for (const { panel, target } of targets) {
        const query = interpolate(target.query ?? "", trade, {
          builtins: {
            // What Grafana's InfluxQL datasource puts for the panel's range and resolution.
            timeFilter: `time >= ${START}ms and time <= ${START + DURATION_S * 1000 + 1000}ms`,
            __interval: "1s",
          },
        });
        const series = await influx.query(query, DB);
        const points = series.reduce((n, s) => n + s.values.length, 0);
        expect(points, `${panel.title}: ${query}`).toBeGreaterThan(0);
      }
    });
  });
});
