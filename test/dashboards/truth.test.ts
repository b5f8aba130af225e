import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRAFANA_ROUTES } from "../../src/api/grafana.js";
import { TRADE_STATS_SQL, type TradeStatName } from "../../src/grafana/trade-analysis.js";
import { DATASOURCES } from "../../src/schema/grafana.js";
import { SCRAPE_JOB } from "../../src/schema/metrics.js";
import { computeStrategyStats } from "../../src/storage/trade-stats.js";
import { skipWithout } from "../helpers/backend.js";
import {
  dashboard,
  interpolate,
  leftoverReferences,
  type Panel,
  panelsOf,
  sqliteText,
  type Target,
  targetsOn,
  type VariableValues,
  variablesOf,
} from "../helpers/dashboards.js";
import { PROMETHEUS, type Prometheus } from "../helpers/prometheus.js";
import { type ScrapedRun, startScrapedRun } from "../helpers/scraped-run.js";
import { VICTORIA_METRICS } from "../helpers/victoria-metrics.js";

/**
 * Every panel proven against data that really flows: one `velox run` with Redis (cache and event
 * stream) and VictoriaMetrics (the InfluxDB write path) on, scraped by a real Prometheus.
 * - PromQL: every Prometheus target and variable query, with Grafana's variables filled in as
 *   Grafana fills them, returns at least one series.
 * - SQL: after the run, every SQLite target and variable query — macros expanded as
 *   frser-sqlite-datasource expands them, variables formatted as Grafana formats them — runs on
 *   the run's journal and returns rows with the columns its panel needs; the statistics equal
 *   computeStrategyStats over the same trades.
 * The InfluxDB (Flux) panels are checked in flux.test.ts: no InfluxDB 2 query engine runs here.
 */

const skip =
  skipWithout(PROMETHEUS, "dashboard queries against real backends") ||
  skipWithout("redis-server", "dashboard queries against real backends") ||
  skipWithout(VICTORIA_METRICS, "dashboard queries against real backends");

/** Grafana's built-ins for a 1 s scrape interval (its $__rate_interval is at least 4 scrapes). */
const PROM_BUILTINS = { __rate_interval: "15s", __range: "2m", __interval: "2s" };
/** job = velox; instance = All, which Grafana sends as the variable's allValue. */
const PROM_VALUES: VariableValues = { job: SCRAPE_JOB, instance: ".+" };

interface Column {
  name: string;
}

describe.skipIf(skip)("dashboard queries return data from a real run", () => {
  let run: ScrapedRun;
  let prometheus: Prometheus;

  beforeAll(async () => {
    // 5 s bars and a 2 s screener, so the market-context row has data within seconds (1 m bars
    // would need minutes of run before the first ranked candidate).
    const strategies = join(mkdtempSync(join(tmpdir(), "velox-truth-")), "strategies.yaml");
    writeFileSync(
      strategies,
      readFileSync("config/strategies.yaml", "utf8").replace(
        "position_snapshot_interval_ms: 1000\n",
        "position_snapshot_interval_ms: 1000\n\nmarket:\n  timeframes: [5s, 1m]\n  screener:\n    interval_seconds: 2\n    timeframe: 5s\n    lookback_bars: 5\n",
      ),
    );
    run = await startScrapedRun([
      "run",
      "--rate",
      "1000",
      "--seed",
      "11",
      "--run-id",
      "g",
      "--config",
      strategies,
    ]);
    ({ prometheus } = run);
  }, 60_000);

  afterAll(async () => {
    await run?.stop();
  });

  it("every Prometheus target and variable query returns a series", async () => {
    const queries = [
      ...targetsOn(DATASOURCES.prometheus.uid, ["flux"]).map(({ panel, target }) => ({
        where: `${panel.title} (${target.refId})`,
        expr: target.expr ?? "",
      })),
      // label_values(metric, label): Grafana asks for the label's values among the metric's series.
      ...variablesOf(dashboard("system-overview"))
        .filter((v) => v.datasource?.uid === DATASOURCES.prometheus.uid)
        .map((v) => {
          const m = /^label_values\((.+), (\w+)\)$/.exec(String(v.query));
          if (!m) throw new Error(`variable ${v.name}: unexpected query ${String(v.query)}`);
          return { where: `variable ${v.name}`, expr: `count by (${m[2]}) (${m[1]})` };
        }),
    ].map((q) => ({
      ...q,
      expr: interpolate(q.expr, PROM_VALUES, { builtins: PROM_BUILTINS, defaultFormat: "regex" }),
    }));
    expect(queries.length).toBeGreaterThan(20);

    const empty = new Set(queries.map((q) => q.where));
    // Rates need two samples and trade counters a first closed trade: poll until every query answers.
    await prometheus
      .waitFor(
        "every dashboard query to return a series",
        async () => {
          for (const q of queries) {
            if (!empty.has(q.where)) continue;
            if ((await prometheus.query(q.expr)).length > 0) empty.delete(q.where);
          }
          return empty.size === 0 ? true : undefined;
        },
        60_000,
      )
      .catch(() => undefined);
    expect([...empty], "queries without a series").toEqual([]);
  }, 90_000);

  it("every JSON-API target, posted to the running API's /grafana/query, returns the rows its panel needs", async () => {
    const targets = targetsOn(DATASOURCES.api.uid, ["flux"]);
    expect(targets.length).toBeGreaterThan(0);
    const now = Date.now();
    for (const { panel, target } of targets) {
      const body = {
        range: { from: new Date(now - 3_600_000).toISOString(), to: new Date(now).toISOString() },
        intervalMs: 15_000,
        maxDataPoints: 500,
        targets: [{ refId: target.refId, target: target.target, payload: target.payload }],
      };
      // The run opens and closes positions all the time: ask until one is open.
      const answer = await prometheus.waitFor(
        `${panel.title}: a row from ${GRAFANA_ROUTES.query}`,
        async () => {
          const res = await fetch(`${run.apiUrl}${GRAFANA_ROUTES.query}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body),
          });
          expect(res.status).toBe(200);
          const tables = (await res.json()) as {
            type: string;
            columns: { text: string }[];
            rows: unknown[][];
          }[];
          return tables[0] && tables[0].rows.length > 0 ? tables : undefined;
        },
        20_000,
      );
      expect(answer).toHaveLength(1);
      const [table] = answer;
      expect(table?.type).toBe("table");
      const columns = table?.columns.map((c) => c.text) ?? [];
      for (const needed of neededColumns(panel, target)) expect(columns, panel.title).toContain(needed);
      for (const row of table?.rows ?? []) expect(row).toHaveLength(columns.length);
    }
  }, 60_000);

  describe("SQL on the run's journal", () => {
    let db: Database.Database;
    let range: { fromMs: number; toMs: number };
    let analysisValues: VariableValues;
    let detailValues: VariableValues;
    let tradeId: string;

    beforeAll(async () => {
      // Stop the run so every query sees the same journal.
      run.velox.child.kill("SIGTERM");
      expect(await run.velox.exited).toBe(0);
      db = new Database(run.journalPath, { readonly: true, fileMustExist: true });
      const span = db.prepare("SELECT MIN(entry_time) AS lo, MAX(entry_time) AS hi FROM trades").get() as {
        lo: number;
        hi: number;
      };
      range = { fromMs: Math.floor(span.lo * 1000) - 1000, toMs: Math.ceil(span.hi * 1000) + 1000 };
      const column = (sql: string) => db.prepare(sql).pluck().all() as string[];
      analysisValues = {
        // "All" of a variable without an allValue: Grafana sends every value.
        strategy: column("SELECT DISTINCT strategy_id FROM trades ORDER BY 1"),
        symbol: column("SELECT DISTINCT symbol FROM trades ORDER BY 1"),
        status: "all",
      };
      // The newest closed trade that moved its stop: every Trade Detail panel has rows for it.
      const chosen = db
        .prepare(
          `SELECT t.trade_id, t.symbol FROM trades t
           WHERE t.status = 'closed' AND EXISTS (SELECT 1 FROM sl_updates s WHERE s.trade_id = t.trade_id)
           ORDER BY t.entry_time DESC LIMIT 1`,
        )
        .get() as { trade_id: string; symbol: string } | undefined;
      if (!chosen) throw new Error("the run closed no trade with a stop-loss update");
      tradeId = chosen.trade_id;
      detailValues = { trade_id: chosen.trade_id, symbol: chosen.symbol };
    }, 30_000);

    afterAll(() => db?.close());

    const runSql = (target: Target, values: VariableValues) => {
      const sql = sqliteText(target, values, range);
      expect(leftoverReferences(sql), sql).toEqual([]);
      const statement = db.prepare(sql);
      return { rows: statement.all() as Record<string, unknown>[], columns: statement.columns() as Column[] };
    };

    const valuesFor = (name: string) => (name === "trade-detail" ? detailValues : analysisValues);

    it("the journal holds closed trades from several strategies", () => {
      const closed = db
        .prepare("SELECT COUNT(*) FROM trades WHERE status = 'closed'")
        .pluck()
        .get() as number;
      expect(closed).toBeGreaterThan(5);
      expect((analysisValues.strategy as string[]).length).toBeGreaterThan(1);
    });

    it("every SQLite variable query returns one column of values", () => {
      for (const name of ["trade-analysis", "trade-detail"] as const) {
        for (const v of variablesOf(dashboard(name)).filter(
          (x) => x.datasource?.uid === DATASOURCES.sqlite.uid,
        )) {
          const { rows, columns } = runSql({ rawQueryText: String(v.query) }, valuesFor(name));
          // frser-sqlite-datasource refuses a variable query with more than one column.
          expect(columns, `variable ${v.name}`).toHaveLength(1);
          expect(rows.length, `variable ${v.name}`).toBeGreaterThan(0);
        }
      }
      const ids = runSql(
        { rawQueryText: String(variablesOf(dashboard("trade-detail"))[0]?.query) },
        detailValues,
      ).rows;
      expect(ids.map((r) => r.trade_id)).toContain(tradeId);
    });

    it("every SQLite target returns rows with the columns its panel needs", () => {
      const targets = targetsOn(DATASOURCES.sqlite.uid, ["flux"]);
      expect(targets.length).toBeGreaterThan(20);
      for (const { dashboard: name, panel, target } of targets) {
        const where = `${name} / ${panel.title} (${target.refId})`;
        const { rows, columns } = runSql(target, valuesFor(name));
        expect(rows.length, `${where} returned no row`).toBeGreaterThan(0);
        const names = columns.map((c) => c.name);
        for (const needed of neededColumns(panel, target)) expect(names, where).toContain(needed);
        if (target.queryType === "time series") {
          const times = rows.map((r) => r.time as number);
          expect(
            times.every((t) => typeof t === "number" && t > 1e9),
            `${where}: time is unix seconds`,
          ).toBe(true);
          expect(
            [...times].sort((a, b) => a - b),
            `${where}: time ascending`,
          ).toEqual(times);
          expect(names.length, `${where}: a value beside time`).toBeGreaterThan(1);
        }
        if (panel.type === "stat") expect(names, where).toHaveLength(1);
      }
    });

    it("the statistics equal computeStrategyStats over the same trades, for all and for a subset", () => {
      const closedOf = (strategies: string[], symbols: string[]) =>
        (
          db
            .prepare(
              "SELECT strategy_id, symbol, pnl, duration_seconds, exit_time FROM trades WHERE status = 'closed' ORDER BY rowid",
            )
            .all() as {
            strategy_id: string;
            symbol: string;
            pnl: number;
            duration_seconds: number;
            exit_time: number;
          }[]
        ).filter((t) => strategies.includes(t.strategy_id) && symbols.includes(t.symbol));

      const strategies = analysisValues.strategy as string[];
      const symbols = analysisValues.symbol as string[];
      const selections: [string[], string[]][] = [
        [strategies, symbols],
        [strategies.slice(0, 1), symbols],
        [strategies, symbols.slice(-1)],
      ];
      for (const [strategy, symbol] of selections) {
        const expected = computeStrategyStats(closedOf(strategy, symbol));
        expect(expected.total_trades).toBeGreaterThan(0);
        for (const name of Object.keys(TRADE_STATS_SQL) as TradeStatName[]) {
          const { rows } = runSql(
            { rawQueryText: TRADE_STATS_SQL[name] },
            { strategy, symbol, status: "all" },
          );
          const value = rows[0]?.[name];
          const want = expected[name];
          if (want === null) expect(value, name).toBeNull();
          else
            expect(value as number, `${name} for ${strategy.join(",")} / ${symbol.join(",")}`).toBeCloseTo(
              want,
              6,
            );
        }
      }
      // The stat panels run exactly these texts.
      const statTexts = panelsOf(dashboard("trade-analysis"))
        .filter((p) => p.type === "stat")
        .map((p) => p.targets?.[0]?.rawQueryText);
      expect(statTexts.sort()).toEqual(Object.values(TRADE_STATS_SQL).sort());
    });

    it("the status variable selects open or closed trades, and a quote in a value cannot widen a query", () => {
      const list = targetsOn(DATASOURCES.sqlite.uid, ["flux"]).find(
        (t) => t.panel.title === "Trade list",
      )?.target;
      if (!list) throw new Error("no trade list");
      for (const status of ["open", "closed"]) {
        const { rows } = runSql(list, { ...analysisValues, status });
        expect(
          rows.every((r) => r.status === status),
          status,
        ).toBe(true);
      }
      const all = runSql(list, analysisValues).rows.length;
      expect(all).toBeGreaterThan(0);
      const hostile = runSql(list, { ...analysisValues, strategy: ["x' OR '1'='1", "') OR 1=1 --"] }).rows;
      expect(hostile).toEqual([]);
    });

    it("the trade list's link carries the trade id and a time range around the trade", () => {
      const list = targetsOn(DATASOURCES.sqlite.uid, ["flux"]).find(
        (t) => t.panel.title === "Trade list",
      )?.target;
      if (!list) throw new Error("no trade list");
      const row = runSql(list, { ...analysisValues, status: "closed" }).rows[0] as {
        entry_time: number;
        exit_time: number;
        link_from: number;
        link_to: number;
      };
      expect(row.link_from).toBeLessThan(row.entry_time * 1000);
      expect(row.link_to).toBeGreaterThan(row.exit_time * 1000);
      expect(Number.isInteger(row.link_from) && Number.isInteger(row.link_to)).toBe(true);
    });
  });
});

/**
 * The columns a panel reads: fields its overrides and links name, a bar chart's x field, and the
 * data-link inputs (`${__data.fields.X}`).
 */
function neededColumns(panel: Panel, target: Target): string[] {
  const needed = new Set<string>();
  for (const o of panel.fieldConfig?.overrides ?? []) {
    if (o.matcher.id === "byName") needed.add(o.matcher.options);
  }
  for (const m of JSON.stringify(panel.fieldConfig ?? {}).matchAll(/__data\.fields\.([A-Za-z0-9_]+)/g))
    needed.add(m[1] ?? "");
  const xField = (panel as { options?: { xField?: string } }).options?.xField;
  if (xField) needed.add(xField);
  for (const c of target.timeColumns ?? []) needed.add(c);
  return [...needed];
}
