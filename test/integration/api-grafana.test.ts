import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GRAFANA_ROUTES, GRAFANA_TABLE_COLUMNS } from "../../src/api/grafana.js";
import { type ApiServer, startApiServer } from "../../src/api/server.js";
import type { Trade } from "../../src/domain/trade.js";
import { GRAFANA_API_TARGETS, GRAFANA_API_VARIABLES } from "../../src/schema/grafana.js";
import { DataManager } from "../../src/storage/data-manager.js";
import { RedisCache } from "../../src/storage/redis-cache.js";
import type { TradeJournal } from "../../src/storage/trade-journal.js";
import { computeStrategyStats } from "../../src/storage/trade-stats.js";
import {
  API_STRATEGIES,
  apiJournal,
  apiTrade,
  type Body,
  getJson,
  postJson,
  seedApiTrades,
  API_T0 as T0,
} from "../helpers/api.js";
import { skipWithout } from "../helpers/backend.js";
import { RedisServer } from "../helpers/redis-server.js";
import { until } from "../helpers/wait.js";

const DAY = 86_400;
/** Forty days before T0: outside the test's default range, inside the "old" one. */
const OLD = T0 - 40 * DAY;

const STRATEGIES = [
  ...API_STRATEGIES,
  { id: "supertrend", type: "supertrend", symbols: ["INFY"] },
  { id: "idle", type: "rsi_mean_reversion", symbols: ["HDFC"] },
];

const { openPositions, strategyStats, recentTrades } = GRAFANA_API_TARGETS;

/** Every trade id the fixture writes. */
const TRADE_IDS = ["T1", "T2", "T4", "OLD1", "S1", "M1", "M2"];

/**
 * The API fixture (T1 closed +98, T2 open) plus: T4 closed −52 (rsi_agg), OLD1 closed +199 forty
 * days ago (rsi_agg), S1 an open short of supertrend with a moved stop, M1 closed +58 and M2 open
 * for manual_desk, a strategy only the journal knows. T2 is marked at 210 and S1 at 45.
 */
async function seed(dm: DataManager): Promise<void> {
  await seedApiTrades(dm);
  await dm.openPosition({ trade: apiTrade("T4", { entry_time: T0 + 30 }) });
  // (95 − 100) × 10 − 2 fees
  await dm.closePosition("T4", {
    exit: { exit_time: T0 + 90, exit_price: 95, exit_fees: 1, exit_reason: "stop_loss" },
  });
  await dm.openPosition({ trade: apiTrade("OLD1", { entry_time: OLD }) });
  // (120 − 100) × 10 − 1 fee
  await dm.closePosition("OLD1", { exit: { exit_time: OLD + 60, exit_price: 120, exit_reason: "target" } });
  await dm.openPosition({
    trade: apiTrade("S1", {
      strategy_id: "supertrend",
      symbol: "INFY",
      action: "SELL",
      side: "short",
      entry_time: T0 + 40,
      entry_price: 50,
      quantity: 4,
      stop_loss_initial: 55,
    }),
  });
  await dm.updateTrailingStop({
    trade_id: "S1",
    ts: T0 + 45,
    stop: 53,
    highest_price: 50,
    sl_type: "trailing",
  });
  const manual = { strategy_id: "manual_desk", symbol: "WIPRO" };
  await dm.openPosition({
    trade: apiTrade("M1", { ...manual, entry_time: T0 + 50, entry_price: 300, quantity: 2 }),
  });
  // (330 − 300) × 2 − 2 fees
  await dm.closePosition("M1", {
    exit: { exit_time: T0 + 110, exit_price: 330, exit_fees: 1, exit_reason: "manual" },
  });
  await dm.openPosition({
    trade: apiTrade("M2", {
      ...manual,
      entry_time: T0 + 120,
      entry_price: 310,
      quantity: 1,
      stop_loss_initial: undefined,
    }),
  });
  dm.updatePositionSnapshot("T2", 210, (T0 + 200) * 1000);
  dm.updatePositionSnapshot("S1", 45, (T0 + 200) * 1000);
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

/** From a day before T0 to a minute from now: every trade but OLD1. */
const RANGE = { from: iso(T0 - DAY), to: iso(Date.now() / 1000 + 60) };

function queryBody(targets: unknown[], range: unknown = RANGE): Record<string, unknown> {
  // Shaped as the plugin sends it, extra fields included.
  return {
    app: "dashboard",
    requestId: "Q1",
    range: { ...(range as object), raw: { from: "now-24h", to: "now" } },
    rangeRaw: { from: "now-24h", to: "now" },
    interval: "15s",
    intervalMs: 15_000,
    maxDataPoints: 1_000,
    scopedVars: {},
    targets,
  };
}

/** The journal's rows for the fixture's trades. */
function journalTrades(journal: TradeJournal): Trade[] {
  return TRADE_IDS.map((id) => {
    const t = journal.getTrade(id);
    if (!t) throw new Error(`fixture trade ${id} missing`);
    return t;
  });
}

/** Stats the journal's formulas give for `strategyId` over its trades closed in [from, to]. */
function expectedStats(journal: TradeJournal, strategyId: string, from: number, to: number) {
  const closed = journalTrades(journal).filter(
    (t) => t.strategy_id === strategyId && t.exit_time !== null && t.exit_time >= from && t.exit_time <= to,
  );
  const s = computeStrategyStats(
    closed.map((t) => ({
      pnl: t.pnl as number,
      duration_seconds: t.duration_seconds as number,
      exit_time: t.exit_time as number,
    })),
  );
  return [
    strategyId,
    s.total_trades,
    s.winners,
    s.losers,
    s.win_rate,
    s.total_pnl,
    s.avg_pnl,
    s.profit_factor,
    s.expectancy,
    s.max_drawdown,
    s.avg_duration_seconds,
  ];
}

/** A recent_trades row built from the journal's record. */
function tradeRow(t: Trade) {
  return [
    t.trade_id,
    t.strategy_id,
    t.symbol,
    t.side,
    t.status,
    Math.round(t.entry_time * 1000),
    t.exit_time === null ? null : Math.round(t.exit_time * 1000),
    t.entry_price,
    t.exit_price,
    t.pnl,
    t.pnl_pct,
    t.exit_reason,
  ];
}

const names = (columns: readonly { text: string }[]) => columns.map((c) => c.text);

describe("Grafana JSON datasource over the journal (no Redis)", () => {
  let journal: TradeJournal;
  let dm: DataManager;
  let api: ApiServer;
  const observed: { route: string; method: string; status: number }[] = [];

  beforeAll(async () => {
    journal = apiJournal();
    dm = new DataManager({ journal });
    await seed(dm);
    api = await startApiServer({
      port: 0,
      data: dm,
      strategies: () => STRATEGIES,
      observeRequest: (route, method, status) => observed.push({ route, method, status }),
    });
  });
  afterAll(async () => {
    await api?.close();
    await dm?.close();
  });

  const query = async (targets: unknown[], range?: unknown) => {
    const { status, body } = await postJson(api, GRAFANA_ROUTES.query, queryBody(targets, range));
    expect(status, JSON.stringify(body)).toBe(200);
    return body as Body[];
  };

  it("GET /grafana/ (and /grafana, as the plugin's URL may be set) answers 200 for Save & test", async () => {
    for (const path of ["/grafana/", "/grafana"]) {
      const { status, body, res } = await getJson(api, path);
      expect(status, path).toBe(200);
      expect(body).toEqual({ status: "ok" });
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("cache-control")).toBe("no-store");
    }
  });

  it("POST /grafana/metrics lists exactly the three targets, each labelled", async () => {
    const expected = Object.values(GRAFANA_API_TARGETS);
    for (const body of [{ metric: "", payload: {} }, { metric: strategyStats }, undefined]) {
      const res =
        body === undefined
          ? await getJson(api, GRAFANA_ROUTES.metrics, { method: "POST" })
          : await postJson(api, GRAFANA_ROUTES.metrics, body);
      expect(res.status).toBe(200);
      expect(res.body.map((m: Body) => m.value)).toEqual(expected);
      for (const metric of res.body) {
        expect(Object.keys(metric).sort()).toEqual(["label", "payloads", "value"]);
        expect(metric.label).toMatch(/\w{4,}/);
        expect(metric.label).not.toBe(metric.value);
        expect(metric.payloads).toEqual([]);
      }
    }
  });

  it("POST /grafana/query: one table per target, in order, with each target's columns", async () => {
    const tables = await query([
      { refId: "A", target: openPositions, datasource: { type: "simpod-json-datasource", uid: "velox-api" } },
      { refId: "B", target: strategyStats, payload: "" },
      { refId: "C", target: recentTrades, payload: { limit: 2 } },
    ]);
    expect(tables.map((t) => [t.type, t.refId])).toEqual([
      ["table", "A"],
      ["table", "B"],
      ["table", "C"],
    ]);
    expect(tables[0].columns).toEqual([
      { text: "trade_id", type: "string" },
      { text: "strategy_id", type: "string" },
      { text: "symbol", type: "string" },
      { text: "side", type: "string" },
      { text: "entry_time", type: "time" },
      { text: "entry_price", type: "number" },
      { text: "quantity", type: "number" },
      { text: "current_price", type: "number" },
      { text: "unrealized_pnl", type: "number" },
      { text: "unrealized_pnl_pct", type: "number" },
      { text: "stop_loss", type: "number" },
    ]);
    expect(tables[1].columns).toEqual([
      { text: "strategy_id", type: "string" },
      ...[
        "total_trades",
        "winners",
        "losers",
        "win_rate",
        "total_pnl",
        "avg_pnl",
        "profit_factor",
        "expectancy",
        "max_drawdown",
        "avg_duration_seconds",
      ].map((text) => ({ text, type: "number" })),
    ]);
    expect(tables[2].columns).toEqual([
      { text: "trade_id", type: "string" },
      { text: "strategy_id", type: "string" },
      { text: "symbol", type: "string" },
      { text: "side", type: "string" },
      { text: "status", type: "string" },
      { text: "entry_time", type: "time" },
      { text: "exit_time", type: "time" },
      { text: "entry_price", type: "number" },
      { text: "exit_price", type: "number" },
      { text: "pnl", type: "number" },
      { text: "pnl_pct", type: "number" },
      { text: "exit_reason", type: "string" },
    ]);
    // The exported column lists are the ones served.
    for (const [i, target] of [openPositions, strategyStats, recentTrades].entries()) {
      expect(names(tables[i].columns)).toEqual(names(GRAFANA_TABLE_COLUMNS[target]));
      for (const row of tables[i].rows) expect(row).toHaveLength(tables[i].columns.length);
    }
    expect(tables[2].rows).toHaveLength(2);
  });

  it("open_positions: the DataManager's open positions with their marks, P&L % by side", async () => {
    const [table] = await query([{ refId: "A", target: openPositions }]);
    // Newest entry first; P&L by hand: T2 long (210 − 200) × 5 = 50 on 1000; S1 short (50 − 45) × 4 = 20 on 200.
    expect(table.rows).toEqual([
      ["M2", "manual_desk", "WIPRO", "long", (T0 + 120) * 1000, 310, 1, null, null, null, null],
      ["S1", "supertrend", "INFY", "short", (T0 + 40) * 1000, 50, 4, 45, 20, 10, 53],
      ["T2", "rsi_agg", "TCS", "long", (T0 + 20) * 1000, 200, 5, 210, 50, 5, 95],
    ]);
    const held = await dm.getOpenPositions();
    expect(table.rows).toEqual(
      held.map((p) => [
        p.trade_id,
        p.strategy_id,
        p.symbol,
        p.side,
        Math.round(p.entry_time * 1000),
        p.entry_price,
        p.quantity,
        p.current_price,
        p.unrealized_pnl,
        p.unrealized_pnl_pct,
        p.stop_loss,
      ]),
    );
  });

  it("strategy_stats: configured strategies then journal-only ones, over trades closed in the range", async () => {
    const [table] = await query([{ refId: "B", target: strategyStats }]);
    const ids = ["rsi_agg", "supertrend", "idle", "manual_desk"];
    expect(table.rows.map((r: Body[]) => r[0])).toEqual(ids);
    const from = Date.parse(RANGE.from) / 1000;
    const to = Date.parse(RANGE.to) / 1000;
    expect(table.rows).toEqual(ids.map((id) => expectedStats(journal, id, from, to)));
    // By hand: rsi_agg closed T1 (+98) and T4 (−52) in range; OLD1 (+199) is outside it.
    expect(table.rows[0].slice(0, 7)).toEqual(["rsi_agg", 2, 1, 1, 0.5, 46, 23]);
    expect(table.rows[0][7]).toBeCloseTo(98 / 52, 12);
    expect(table.rows[3].slice(0, 6)).toEqual(["manual_desk", 1, 1, 0, 1, 58]);
    expect(table.rows[3][7]).toBeNull(); // no losing trade: profit factor undefined
    expect(table.rows[2]).toEqual(["idle", 0, 0, 0, 0, 0, 0, null, 0, 0, 0]);

    // Another range, another window: only OLD1.
    const old = { from: iso(OLD - 3600), to: iso(OLD + 3600) };
    const [oldTable] = await query([{ target: strategyStats }], old);
    expect(oldTable.refId).toBeUndefined();
    expect(oldTable.rows[0].slice(0, 6)).toEqual(["rsi_agg", 1, 1, 0, 1, 199]);
    expect(oldTable.rows).toEqual(ids.map((id) => expectedStats(journal, id, OLD - 3600, OLD + 3600)));
  });

  it("recent_trades: the journal's trades newest first, limited and filtered", async () => {
    const all = journalTrades(journal).sort(
      (a, b) => b.entry_time - a.entry_time || (a.trade_id < b.trade_id ? 1 : -1),
    );
    const [table] = await query([{ refId: "C", target: recentTrades }]);
    expect(table.rows.map((r: Body[]) => r[0])).toEqual(["M2", "M1", "S1", "T4", "T2", "T1", "OLD1"]);
    expect(table.rows).toEqual(all.map(tradeRow));
    const t1 = table.rows.find((r: Body[]) => r[0] === "T1");
    expect(t1).toEqual([
      "T1",
      "rsi_agg",
      "RELIANCE",
      "long",
      "closed",
      T0 * 1000,
      (T0 + 10) * 1000,
      100,
      110,
      98,
      9.8,
      "target",
    ]);
    const t2 = table.rows.find((r: Body[]) => r[0] === "T2");
    expect(t2.slice(4)).toEqual(["open", (T0 + 20) * 1000, null, 200, null, null, null, null]);

    const ids = async (payload: unknown) =>
      (await query([{ target: recentTrades, payload }]))[0].rows.map((r: Body[]) => r[0]);
    expect(await ids({ limit: 2 })).toEqual(["M2", "M1"]);
    expect(await ids({ limit: "3" })).toEqual(["M2", "M1", "S1"]);
    expect(await ids({ strategy: "rsi_agg" })).toEqual(["T4", "T2", "T1", "OLD1"]);
    expect(await ids({ symbol: "WIPRO" })).toEqual(["M2", "M1"]);
    expect(await ids({ strategy: "rsi_agg", symbol: "TCS" })).toEqual(["T2"]);
    expect(await ids({ strategy: "supertrend", symbol: "TCS" })).toEqual([]);
    expect(await ids({ strategy: "", symbol: "" })).toHaveLength(TRADE_IDS.length);
  });

  it("POST /grafana/variable: strategies, and symbols filtered by strategy", async () => {
    const values = async (payload: unknown) => {
      const { status, body } = await postJson(api, GRAFANA_ROUTES.variable, {
        payload,
        range: RANGE,
      });
      expect(status, JSON.stringify(body)).toBe(200);
      for (const v of body) expect(v.__text).toBe(v.__value);
      return body.map((v: Body) => v.__value);
    };
    const { strategies, symbols } = GRAFANA_API_VARIABLES;
    expect(await values({ target: strategies })).toEqual(["rsi_agg", "supertrend", "idle", "manual_desk"]);
    expect(await values({ target: symbols })).toEqual(["HDFC", "INFY", "RELIANCE", "TCS", "WIPRO"]);
    expect(await values({ target: symbols, strategy: "rsi_agg" })).toEqual(["RELIANCE", "TCS"]);
    expect(await values({ target: symbols, strategy: "manual_desk" })).toEqual(["WIPRO"]);
    expect(await values({ target: symbols, strategy: "idle" })).toEqual(["HDFC"]);
    expect(await values({ target: symbols, strategy: "nope" })).toEqual([]);
    expect(await values({ target: symbols, strategy: "" })).toHaveLength(5);
  });

  it("bad bodies: 400 (413 when oversized) with JSON {error, field}, counted, never a 5xx", async () => {
    const before = api.stats().rejected;
    const target = (extra: object) => queryBody([{ refId: "A", target: recentTrades, ...extra }]);
    const cases: [string, unknown, string][] = [
      [GRAFANA_ROUTES.query, {}, "body.range"],
      [GRAFANA_ROUTES.query, [], "body"],
      [
        GRAFANA_ROUTES.query,
        { ...queryBody([]), range: { from: "yesterday", to: RANGE.to } },
        "body.range.from",
      ],
      [GRAFANA_ROUTES.query, { ...queryBody([]), range: { from: RANGE.to, to: RANGE.from } }, "body.range"],
      [GRAFANA_ROUTES.query, { ...queryBody([]), range: { from: 0, to: 1 } }, "body.range.from"],
      [GRAFANA_ROUTES.query, { ...queryBody([]), targets: "open_positions" }, "body.targets"],
      [
        GRAFANA_ROUTES.query,
        queryBody(Array.from({ length: 21 }, () => ({ target: openPositions }))),
        "body.targets",
      ],
      [GRAFANA_ROUTES.query, queryBody([{ refId: "A", target: "drop_tables" }]), "body.targets.0.target"],
      [GRAFANA_ROUTES.query, queryBody([{ target: openPositions }, { refId: "B" }]), "body.targets.1.target"],
      [GRAFANA_ROUTES.query, queryBody([{ refId: 7, target: openPositions }]), "body.targets.0.refId"],
      [GRAFANA_ROUTES.query, { ...queryBody([]), intervalMs: "15s" }, "body.intervalMs"],
      [GRAFANA_ROUTES.query, { ...queryBody([]), maxDataPoints: -1 }, "body.maxDataPoints"],
      [GRAFANA_ROUTES.query, target({ payload: { limit: 0 } }), "body.targets.0.payload.limit"],
      [GRAFANA_ROUTES.query, target({ payload: { limit: 501 } }), "body.targets.0.payload.limit"],
      [GRAFANA_ROUTES.query, target({ payload: { limit: 1.5 } }), "body.targets.0.payload.limit"],
      [GRAFANA_ROUTES.query, target({ payload: { limit: "ten" } }), "body.targets.0.payload.limit"],
      [GRAFANA_ROUTES.query, target({ payload: { strategy: "a b" } }), "body.targets.0.payload.strategy"],
      [
        GRAFANA_ROUTES.query,
        target({ payload: { strategy: "x' OR 1=1; DROP TABLE trades; --" } }),
        "body.targets.0.payload.strategy",
      ],
      [GRAFANA_ROUTES.query, target({ payload: { symbol: "reliance" } }), "body.targets.0.payload.symbol"],
      [GRAFANA_ROUTES.query, target({ payload: { symbol: ["TCS"] } }), "body.targets.0.payload.symbol"],
      [GRAFANA_ROUTES.query, target({ payload: { limt: 5 } }), "body.targets.0.payload"],
      [GRAFANA_ROUTES.query, target({ payload: "{limit: 5" }), "body.targets.0.payload"],
      [
        GRAFANA_ROUTES.query,
        queryBody([{ target: openPositions, payload: { strategy: "rsi_agg" } }]),
        "body.targets.0.payload",
      ],
      [GRAFANA_ROUTES.metrics, { metric: 5 }, "body.metric"],
      [GRAFANA_ROUTES.metrics, { payload: "x" }, "body.payload"],
      [GRAFANA_ROUTES.variable, {}, "body.payload"],
      [GRAFANA_ROUTES.variable, { payload: { target: "users" } }, "body.payload.target"],
      [
        GRAFANA_ROUTES.variable,
        { payload: { target: "symbols", strategy: "../etc" } },
        "body.payload.strategy",
      ],
      [GRAFANA_ROUTES.variable, { payload: { target: "symbols", extra: 1 } }, "body.payload"],
      [GRAFANA_ROUTES.variable, { payload: "strategies" }, "body.payload"],
    ];
    for (const [path, body, field] of cases) {
      const { status, body: answer, res } = await postJson(api, path, body);
      const label = `${path} ${JSON.stringify(body).slice(0, 120)}`;
      expect(status, label).toBe(400);
      expect(res.headers.get("content-type"), label).toMatch(/^application\/json/);
      expect(answer, label).toEqual({ error: expect.any(String), field });
    }
    // Not JSON, wrong type, no body at all.
    const malformed = await postJson(api, GRAFANA_ROUTES.query, '{"range": {');
    expect(malformed.status).toBe(400);
    expect(malformed.body).toEqual({ error: expect.any(String), field: "body" });
    const text = await postJson(api, GRAFANA_ROUTES.query, JSON.stringify(queryBody([])), "text/plain");
    expect(text.status).toBe(400);
    expect(text.body).toMatchObject({ field: "body" });
    const empty = await getJson(api, GRAFANA_ROUTES.variable, { method: "POST" });
    expect(empty.status).toBe(400);
    expect(empty.body).toMatchObject({ field: "body" });
    // Over the 16 kB limit.
    const big = queryBody([{ refId: "A", target: recentTrades, payload: { pad: "x".repeat(20 * 1024) } }]);
    const oversized = await postJson(api, GRAFANA_ROUTES.query, big);
    expect(oversized.status).toBe(413);
    expect(oversized.body.error).toMatch(/larger than 16384 bytes/);

    const after = api.stats().rejected;
    expect(after.invalid_input - before.invalid_input).toBe(cases.length + 2);
    expect(after.malformed_body - before.malformed_body).toBe(1);
    expect(after.body_too_large - before.body_too_large).toBe(1);
    expect(after.internal_error).toBe(0);
    expect(observed.every((o) => o.status < 500)).toBe(true);
    // The journal is untouched by what was sent.
    expect(journal.recentTrades({ limit: 100 })).toHaveLength(TRADE_IDS.length);
  });

  it("wrong methods: 405 naming the allowed one", async () => {
    const get = await getJson(api, GRAFANA_ROUTES.query);
    expect(get.status).toBe(405);
    expect(get.res.headers.get("allow")).toBe("POST");
    expect(get.body).toEqual({ error: "method GET not allowed", allow: ["POST"] });
    const post = await postJson(api, GRAFANA_ROUTES.root, {});
    expect(post.status).toBe(405);
    expect(post.res.headers.get("allow")).toBe("GET, HEAD");
    const unknown = await postJson(api, "/grafana/annotations", {});
    expect(unknown.status).toBe(404);
  });

  it("observes Grafana requests by route pattern only", async () => {
    await getJson(api, "/grafana/");
    await postJson(api, GRAFANA_ROUTES.metrics, {});
    await postJson(api, GRAFANA_ROUTES.query, queryBody([{ target: recentTrades, payload: { limit: 1 } }]));
    await postJson(api, GRAFANA_ROUTES.query, queryBody([{ target: "nope" }]));
    await postJson(api, GRAFANA_ROUTES.variable, { payload: { target: "users" } });
    await until(() => observed.some((o) => o.route === GRAFANA_ROUTES.variable && o.status === 400));
    const patterns = new Set<string>([...Object.values(GRAFANA_ROUTES), "unmatched"]);
    const grafana = observed.filter((o) => o.route.startsWith("/grafana") || o.route === "unmatched");
    expect(grafana.every((o) => patterns.has(o.route))).toBe(true);
    expect(observed).toContainEqual({ route: GRAFANA_ROUTES.query, method: "POST", status: 200 });
    expect(observed).toContainEqual({ route: GRAFANA_ROUTES.query, method: "POST", status: 400 });
    expect(observed).toContainEqual({ route: GRAFANA_ROUTES.metrics, method: "POST", status: 200 });
    expect(observed).toContainEqual({ route: GRAFANA_ROUTES.root, method: "GET", status: 200 });
  });
});

const skip = skipWithout("redis-server", "Grafana API tests with Redis");

describe.skipIf(skip)("Grafana JSON datasource with a real Redis", () => {
  let server: RedisServer;
  let cache: RedisCache;
  let other: RedisCache;
  let dm: DataManager;
  let api: ApiServer;

  beforeAll(async () => {
    server = await RedisServer.start();
    cache = await RedisCache.connect(server.url);
    other = await RedisCache.connect(server.url);
    dm = new DataManager({ journal: apiJournal(), cache, cacheFlushMs: 20 });
    await until(() => dm.stats().cacheRewarms >= 1);
    await seedApiTrades(dm);
    api = await startApiServer({ port: 0, data: dm, cache, strategies: () => API_STRATEGIES });
  });
  afterAll(async () => {
    await api?.close();
    await dm?.close();
    await other?.close();
    await server?.stop();
  });

  const openRows = async () => {
    const { status, body } = await postJson(
      api,
      GRAFANA_ROUTES.query,
      queryBody([{ refId: "A", target: openPositions }]),
    );
    expect(status).toBe(200);
    return body[0].rows as Body[][];
  };

  it("open_positions carries the marks Redis holds", async () => {
    dm.updatePositionSnapshot("T2", 210, Date.now());
    // Everything this process still had to write goes out first (the journal's publications and
    // the mark's cache window): a window cut after the other writer's mark below would overwrite it.
    await dm.settle();
    await (dm as unknown as { flushCache(final: boolean): Promise<void> }).flushCache(true);
    await until(async () => (await cache.getPosition("rsi_agg", "TCS"))?.current_price === 210);
    expect(await openRows()).toEqual([
      ["T2", "rsi_agg", "TCS", "long", (T0 + 20) * 1000, 200, 5, 210, 50, 5, 95],
    ]);

    // A mark written to Redis by another writer (not this process) shows up: Redis is read.
    await other.setPosition("rsi_agg", "TCS", {
      trade_id: "T2",
      side: "long",
      entry_price: 200,
      quantity: 5,
      entry_time: (T0 + 20) * 1000,
      current_price: 220,
      unrealized_pnl: 100,
      stop_loss: 96,
    });
    expect(await openRows()).toEqual([
      ["T2", "rsi_agg", "TCS", "long", (T0 + 20) * 1000, 200, 5, 220, 100, 10, 96],
    ]);
  });
});
