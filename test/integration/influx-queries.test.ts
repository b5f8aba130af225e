/**
 * Every catalogue query run for real against InfluxDB 2, in `prelude` mode (what InfluxDB OSS
 * needs), after writing a few points with the client library's plain WriteApi.
 *
 * Runs only when VELOX_INFLUX_URL and VELOX_INFLUX_TOKEN point at an InfluxDB 2 (VELOX_INFLUX_ORG
 * and VELOX_INFLUX_BUCKET default to velox / trading, as in src/config.ts); otherwise the suite is
 * skipped with a message saying how to run it. Unlike the other backend tests it does not fail under
 * CI=true when unset: InfluxDB 2 is a server that `npm run test:deps` cannot install, and the
 * machine these tests are developed on has none. To run it:
 *
 *   docker compose up -d influxdb      # or: docker run -d -p 8086:8086 influxdb:2.7 with DOCKER_INFLUXDB_INIT_*
 *   VELOX_INFLUX_URL=http://localhost:8086 VELOX_INFLUX_TOKEN=<all-access token> \
 *   VELOX_INFLUX_ORG=velox VELOX_INFLUX_BUCKET=trading npx vitest run test/integration/influx-queries.test.ts
 *
 * Each run tags its points with fresh ids, so runs never see each other's data; the points stay in
 * the bucket (deleting needs the separate @influxdata/influxdb-client-apis package).
 */
import { InfluxDB, Point } from "@influxdata/influxdb-client";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/domain/errors.js";
import {
  type FieldName,
  INFLUX_SCHEMA,
  type MeasurementName,
  type TagName,
} from "../../src/schema/influx.js";
import { InfluxQueryClient, QUERY_DEFINITIONS, type QueryRow } from "../../src/storage/influx-queries.js";

const url = process.env.VELOX_INFLUX_URL;
const token = process.env.VELOX_INFLUX_TOKEN;
const org = process.env.VELOX_INFLUX_ORG || "velox";
const bucket = process.env.VELOX_INFLUX_BUCKET || "trading";
const skip = !url || !token;

if (skip) {
  console.warn(
    [
      "",
      "*** SKIPPING test/integration/influx-queries.test.ts: no InfluxDB 2 configured. ***",
      "*** Start one (docker compose up -d influxdb) and set VELOX_INFLUX_URL, VELOX_INFLUX_TOKEN, ***",
      "*** VELOX_INFLUX_ORG and VELOX_INFLUX_BUCKET to run every Flux query against it.            ***",
      "",
    ].join("\n"),
  );
}

/** A point of measurement `m`, each field written with the type INFLUX_SCHEMA fixes for it. */
function point<M extends MeasurementName>(
  m: M,
  tags: Record<TagName<M>, string>,
  fields: Partial<Record<FieldName<M>, number>>,
  timeMs: number,
): Point {
  const types: Readonly<Record<string, string>> = INFLUX_SCHEMA[m].fields;
  const p = new Point(m).timestamp(new Date(timeMs));
  for (const [tag, value] of Object.entries<string>(tags)) p.tag(tag, value);
  for (const [field, value] of Object.entries(fields) as [string, number][]) {
    if (types[field] === "integer") p.intField(field, value);
    else p.floatField(field, value);
  }
  return p;
}

describe.skipIf(skip)("Flux queries against InfluxDB 2", () => {
  const run = Date.now().toString(36);
  const symbol = `IT${run.toUpperCase()}`;
  const tradeId = `it-trade-${run}`;
  const strategyId = `it-strategy-${run}`;
  const indicatorType = "rsi_14";
  const base = Date.now() - 10 * 60_000;
  const times = [base, base + 1_000, base + 2_000];
  const window = { start: base - 60_000, stop: Date.now() + 60_000 };
  const inputs = {
    tickRange: { symbol, ...window },
    indicators: { symbol, indicatorType, ...window },
    positionHistory: { tradeId, ...window },
    slTimeline: { tradeId, ...window },
    strategyPerformance: { strategyId, ...window },
  } as const;

  let influx: InfluxDB;

  beforeAll(async () => {
    influx = new InfluxDB({ url: url as string, token: token as string });
    const writeApi = influx.getWriteApi(org, bucket, "ms");
    times.forEach((t, i) => {
      writeApi.writePoints([
        point(
          "ticks",
          { symbol, source: "it" },
          { open: 100 + i, high: 101 + i, low: 99 + i, close: 100.5 + i, volume: 10, bid: 100, ask: 101 },
          t,
        ),
        point("indicators", { symbol, indicator_type: indicatorType }, { value: 55 + i, period: 14 }, t),
        point(
          "positions",
          { strategy_id: strategyId, symbol, trade_id: tradeId },
          { price: 100 + i, quantity: 10, unrealized_pnl: i * 5, unrealized_pnl_pct: i * 0.5 },
          t,
        ),
        point(
          "trailing_sl",
          { strategy_id: strategyId, symbol, trade_id: tradeId, sl_type: "atr" },
          { current_sl: 95 + i, highest_price: 100 + i },
          t,
        ),
        point(
          "strategy_metrics",
          { strategy_id: strategyId },
          { positions_count: 1, signals_count: 3 + i, pnl: i * 5, win_rate: 0.5 },
          t,
        ),
      ]);
    });
    await writeApi.close();
  });

  const client = (mode: "api" | "prelude") => new InfluxQueryClient({ influx, org, bucket, mode });
  const sortByTime = (rows: QueryRow[]) =>
    [...rows].sort((a, b) => String(a._time).localeCompare(String(b._time)));

  it("runs every catalogue query (there are five)", () => {
    expect(Object.keys(inputs).sort()).toEqual(QUERY_DEFINITIONS.map((d) => d.name).sort());
  });

  it("tickRange: one pivoted row per tick", async () => {
    const rows = sortByTime(await client("prelude").query("tickRange", inputs.tickRange));
    expect(rows.map((r) => r.close)).toEqual([100.5, 101.5, 102.5]);
    for (const r of rows) expect(r).toMatchObject({ symbol, source: "it", _measurement: "ticks" });
  });

  it("indicators: one row per field value of the chosen indicator", async () => {
    const rows = await client("prelude").query("indicators", inputs.indicators);
    const values = sortByTime(rows.filter((r) => r._field === "value")).map((r) => r._value);
    expect(values).toEqual([55, 56, 57]);
    expect(rows.filter((r) => r._field === "period").map((r) => r._value)).toEqual([14, 14, 14]);
    for (const r of rows) expect(r).toMatchObject({ symbol, indicator_type: indicatorType });
  });

  it("positionHistory: the trade's snapshots, by trade_id", async () => {
    const rows = sortByTime(await client("prelude").query("positionHistory", inputs.positionHistory));
    expect(rows.map((r) => r.unrealized_pnl)).toEqual([0, 5, 10]);
    for (const r of rows) expect(r).toMatchObject({ trade_id: tradeId, strategy_id: strategyId, symbol });
  });

  it("slTimeline: the trade's stop-loss updates", async () => {
    const rows = sortByTime(await client("prelude").query("slTimeline", inputs.slTimeline));
    expect(rows.map((r) => r.current_sl)).toEqual([95, 96, 97]);
    for (const r of rows) expect(r).toMatchObject({ trade_id: tradeId, sl_type: "atr" });
  });

  it("strategyPerformance: the strategy's metric samples", async () => {
    const rows = sortByTime(await client("prelude").query("strategyPerformance", inputs.strategyPerformance));
    expect(rows.map((r) => r.signals_count)).toEqual([3, 4, 5]);
    for (const r of rows) expect(r).toMatchObject({ strategy_id: strategyId, win_rate: 0.5 });
  });

  it("nothing outside the window or for another id", async () => {
    const before = { start: base - 120_000, stop: base - 60_000 };
    expect(await client("prelude").query("tickRange", { symbol, ...before })).toEqual([]);
    expect(await client("prelude").query("slTimeline", { tradeId: `${tradeId}-other`, ...window })).toEqual(
      [],
    );
  });

  it("api mode: the same rows (InfluxDB Cloud) or a ConfigError pointing at prelude (OSS)", async () => {
    const prelude = await client("prelude").query("slTimeline", inputs.slTimeline);
    try {
      const api = await client("api").query("slTimeline", inputs.slTimeline);
      expect(sortByTime(api)).toEqual(sortByTime(prelude));
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
    }
  });
});
