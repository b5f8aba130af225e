import { EventEmitter } from "node:events";
import { connect as tcpConnect } from "node:net";
import { PassThrough } from "node:stream";
import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type ApiServer, startApiServer } from "../../src/api/server.js";
import { writeTradeCsv } from "../../src/api/trade-export.js";
import type { PositionChangeListener } from "../../src/api/websocket.js";
import { DataManager } from "../../src/storage/data-manager.js";
import { type PositionChange, RedisCache } from "../../src/storage/redis-cache.js";
import {
  getJson,
  apiJournal as journal,
  API_STRATEGIES as STRATEGIES,
  seedApiTrades as seed,
  API_T0 as T0,
  apiTrade as trade,
} from "../helpers/api.js";
import { skipWithout } from "../helpers/backend.js";
import { RedisServer } from "../helpers/redis-server.js";

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 1_000): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await condition()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

interface Message {
  type: string;
  data?: unknown;
  error?: string;
}

/** A `ws` client that keeps every message, for waiting on one that matches. */
class FeedClient {
  readonly messages: Message[] = [];
  private constructor(readonly ws: WebSocket) {
    ws.on("message", (raw) => this.messages.push(JSON.parse(String(raw)) as Message));
  }

  static open(api: ApiServer, path = "/ws"): Promise<FeedClient> {
    const ws = new WebSocket(`${api.url.replace(/^http/, "ws")}${path}`);
    const client = new FeedClient(ws);
    return new Promise((resolve, reject) => {
      ws.once("open", () => resolve(client));
      ws.once("error", reject);
    });
  }

  async next(match: (m: Message) => boolean, timeoutMs = 1_000): Promise<Message> {
    let found: Message | undefined;
    await until(() => {
      found = this.messages.find(match);
      return found !== undefined;
    }, timeoutMs);
    return found as Message;
  }

  close(): void {
    this.ws.close();
  }
}

describe("API over the journal alone (no Redis)", () => {
  let dm: DataManager;
  let api: ApiServer;
  const observed: { route: string; method: string; status: number; seconds: number }[] = [];
  const changes = new EventEmitter();

  beforeAll(async () => {
    dm = new DataManager({ journal: journal() });
    await seed(dm);
    api = await startApiServer({
      port: 0,
      data: dm,
      strategies: () => STRATEGIES,
      status: () => ({ ticks_processed: 42 }),
      observeRequest: (route, method, status, seconds) => observed.push({ route, method, status, seconds }),
      onPositionChange: (listener: PositionChangeListener) => {
        changes.on("change", listener);
        return () => changes.off("change", listener);
      },
      websocket: { statusIntervalMs: 100 },
    });
  });
  afterAll(async () => {
    await api?.close();
    await dm?.close();
  });

  it("listens on loopback by default", () => {
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it("GET /api/health: 200 with every store's state", async () => {
    const { status, body } = await getJson(api, "/api/health");
    expect(status).toBe(200);
    expect(body).toEqual({
      status: "ok",
      stores: {
        sqlite: { up: true },
        redis: { configured: false, up: false, latencyMs: null },
        influx: { configured: false },
      },
    });
  });

  it("GET /api/status: engine counters, store counters and rejections", async () => {
    const { status, body } = await getJson(api, "/api/status");
    expect(status).toBe(200);
    expect(body.engine).toEqual({ ticks_processed: 42 });
    expect(body.data_manager).toHaveProperty("cacheReadFallbacks");
    expect(body.api.rejected).toHaveProperty("invalid_input");
    expect(body.uptime_seconds).toBeGreaterThanOrEqual(0);
  });

  it("GET /api/positions: the open trades from the journal", async () => {
    const { status, body } = await getJson(api, "/api/positions");
    expect(status).toBe(200);
    expect(body).toEqual([
      expect.objectContaining({
        trade_id: "T2",
        symbol: "TCS",
        side: "long",
        entry_price: 200,
        stop_loss: 95,
      }),
    ]);
  });

  it("GET /api/strategies: config and performance per strategy, ?days validated", async () => {
    const { status, body } = await getJson(api, "/api/strategies");
    expect(status).toBe(200);
    expect(body).toHaveLength(1);
    expect(body[0]).toMatchObject({ id: "rsi_agg", config: STRATEGIES[0], days: 30, counters: null });
    // (110 − 100) × 10 − 2 fees
    expect(body[0].stats).toMatchObject({ total_trades: 1, winners: 1, total_pnl: 98 });

    expect((await getJson(api, "/api/strategies?days=7")).body[0].days).toBe(7);
    for (const bad of ["0", "3651", "abc", "1.5", "-1"]) {
      const { status, body } = await getJson(api, `/api/strategies?days=${bad}`);
      expect(status, bad).toBe(400);
      expect(body.field).toBe("days");
    }
    const repeated = await getJson(api, "/api/strategies?days=1&days=2");
    expect(repeated.status).toBe(400);
    expect(repeated.body.field).toBe("days");
  });

  it("GET /api/trades/:id: the trade, its conditions and its stop history", async () => {
    const { status, body } = await getJson(api, "/api/trades/T1");
    expect(status).toBe(200);
    expect(body.trade).toMatchObject({ trade_id: "T1", status: "closed", pnl: 98 });
    expect(body.entry_conditions[0].conditions).toEqual({ rsi: 28.5, threshold: 30 });
    expect(body.exit_conditions[0].conditions).toEqual({ rsi: 71 });
    expect(body.sl_timeline.map((u: { stop: number }) => u.stop)).toEqual([98, 101]);
    expect(body.position_history).toBeNull();
  });

  it("404 for an unknown trade, on the details and on the export", async () => {
    for (const path of ["/api/trades/NOPE", "/api/trades/NOPE/export"]) {
      const { status, body } = await getJson(api, path);
      expect(status, path).toBe(404);
      expect(body.error).toMatch(/NOPE not found/);
    }
  });

  it("400 naming the field for ids and symbols that break the shared patterns", async () => {
    const cases: [string, string][] = [
      [`/api/trades/${encodeURIComponent("a b")}`, "trade_id"],
      [`/api/trades/${encodeURIComponent('x") |> drop()')}`, "trade_id"],
      [`/api/trades/${encodeURIComponent("a/b")}/export`, "trade_id"],
      [`/api/trades/${"x".repeat(65)}`, "trade_id"],
      ["/api/trades/%zz", "path"],
      [`/api/indicators/${encodeURIComponent("RELIANCE*")}`, "symbol"],
      ["/api/indicators/reliance", "symbol"],
    ];
    for (const [path, field] of cases) {
      const { status, body, res } = await getJson(api, path);
      expect(status, path).toBe(400);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(body, path).toMatchObject({ field, error: expect.any(String) });
    }
  });

  it("exports the stop-loss updates as CSV when InfluxDB is not there, under both route names", async () => {
    const res = await fetch(`${api.url}/api/trades/T1/export`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe('attachment; filename="trade_T1.csv"');
    expect(res.headers.get("x-position-history")).toBe("unavailable");
    const text = await res.text();
    const rows = parse(text, { columns: true, cast: true }) as { stop: number }[];
    expect(rows).toEqual([
      {
        kind: "stop_loss",
        time: new Date((T0 + 5) * 1000).toISOString(),
        stop: 98,
        highest_price: 103,
        sl_type: "trailing",
      },
      {
        kind: "stop_loss",
        time: new Date((T0 + 9) * 1000).toISOString(),
        stop: 101,
        highest_price: 106,
        sl_type: "trailing",
      },
    ]);
    // The journal's values exactly, as the JSON route gives them.
    const details = (await getJson(api, "/api/trade/T1")).body;
    expect(rows.map((r) => r.stop)).toEqual(details.sl_timeline.map((u: { stop: number }) => u.stop));
    // Seed 002's name for the export: the same bytes.
    expect(await (await fetch(`${api.url}/api/trade/T1/export`)).text()).toBe(text);
  });

  it("unknown routes and methods: JSON 404 and 405", async () => {
    const unknown = await getJson(api, "/api/nothing-here");
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: "no route GET /api/nothing-here" });
    const hidden = await getJson(api, "/.env");
    expect(hidden.status).toBe(404);
    const post = await getJson(api, "/api/positions", { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.res.headers.get("allow")).toBe("GET, HEAD");
  });

  it("413 JSON for a body over 16 kB, whatever its type; 400 for malformed JSON", async () => {
    const big = JSON.stringify({ pad: "x".repeat(20 * 1024) });
    for (const type of ["application/json", "text/plain"]) {
      const { status, body } = await getJson(api, "/api/positions", {
        method: "POST",
        headers: { "content-type": type },
        body: big,
      });
      expect(status, type).toBe(413);
      expect(body.error).toMatch(/larger than 16384 bytes/);
    }
    const bad = await getJson(api, "/api/positions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ field: "body" });
  });

  it("minimal security headers, no x-powered-by", async () => {
    const { res } = await getJson(api, "/api/health");
    expect(res.headers.get("x-powered-by")).toBeNull();
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
  });

  it("GET /api/indicators/:symbol: 503 with a clear message when Redis is not configured", async () => {
    const { status, body } = await getJson(api, "/api/indicators/RELIANCE");
    expect(status).toBe(503);
    expect(body).toMatchObject({ store: "redis", error: expect.stringMatching(/not configured/) });
  });

  it("observes every request by route pattern, never by raw URL", async () => {
    await getJson(api, "/api/trades/T1");
    await getJson(api, "/api/trades/T2/export");
    await getJson(api, "/api/no/such/route");
    await until(() => observed.some((o) => o.route === "unmatched" && o.status === 404));
    expect(observed).toContainEqual(
      expect.objectContaining({ route: "/api/trades/:id", method: "GET", status: 200 }),
    );
    expect(observed).toContainEqual(
      expect.objectContaining({ route: "/api/trades/:id/export", method: "GET", status: 200 }),
    );
    expect(observed).toContainEqual(expect.objectContaining({ route: "/api/health", status: 200 }));
    expect(observed.every((o) => !/T1|T2|no\/such/.test(o.route))).toBe(true);
    expect(observed.every((o) => o.seconds >= 0 && o.seconds < 5)).toBe(true);
  });

  it("counts rejected requests by reason", () => {
    const { rejected } = api.stats();
    expect(rejected.invalid_input).toBeGreaterThanOrEqual(7);
    expect(rejected.body_too_large).toBe(2);
    expect(rejected.malformed_body).toBe(1);
    expect(rejected.unknown_route).toBeGreaterThanOrEqual(2);
    expect(rejected.method_not_allowed).toBeGreaterThanOrEqual(1);
    expect(rejected.not_found).toBeGreaterThanOrEqual(2);
    expect(rejected.store_unavailable).toBeGreaterThanOrEqual(1);
    expect(rejected.internal_error).toBe(0);
  });

  it("WebSocket: snapshot on connect, then in-process changes and periodic status", async () => {
    const client = await FeedClient.open(api);
    try {
      const snapshot = await client.next((m) => m.type === "positions");
      expect(snapshot.data).toEqual([expect.objectContaining({ trade_id: "T2" })]);
      expect(client.messages[0]?.type).toBe("positions");

      const change: PositionChange = {
        type: "updated",
        strategy_id: "rsi_agg",
        symbol: "TCS",
        trade_id: "T2",
        entry_price: 200,
        quantity: 5,
        entry_time: (T0 + 20) * 1000,
        current_price: 204,
      };
      changes.emit("change", change);
      const pushed = await client.next((m) => m.type === "position_change");
      expect(pushed.data).toEqual(change);

      const status = await client.next((m) => m.type === "status");
      expect(status.data).toMatchObject({
        engine: { ticks_processed: 42 },
        stores: { sqlite: { up: true } },
      });
    } finally {
      client.close();
    }
  });

  it("WebSocket: other paths and foreign browser origins are refused", async () => {
    await expect(FeedClient.open(api, "/elsewhere")).rejects.toThrow(/404/);
    const url = `${api.url.replace(/^http/, "ws")}/ws`;
    const opened = (origin: string) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(url, { origin });
        ws.once("open", () => {
          ws.close();
          resolve("open");
        });
        ws.once("error", (err) => resolve(err.message));
      });
    expect(await opened("https://evil.example")).toMatch(/403/);
    expect(await opened("http://localhost:3000")).toBe("open");
  });
});

describe("API bounds and failures", () => {
  it("caps WebSocket connections and refuses the next with 503", async () => {
    const dm = new DataManager({ journal: journal() });
    const api = await startApiServer({
      port: 0,
      data: dm,
      strategies: () => [],
      websocket: { maxClients: 1 },
    });
    try {
      const first = await FeedClient.open(api);
      await first.next((m) => m.type === "positions");
      await expect(FeedClient.open(api)).rejects.toThrow(/503/);
      expect(api.stats().websocket).toMatchObject({ clients: 1, connectionsRefused: 1 });
      first.close();
      await until(() => api.stats().websocket.clients === 0);
      const again = await FeedClient.open(api);
      again.close();
    } finally {
      await api.close();
      await dm.close();
    }
  });

  it("drops a client that stops reading instead of buffering for it", async () => {
    const dm = new DataManager({ journal: journal() });
    const changes = new EventEmitter();
    const api = await startApiServer({
      port: 0,
      data: dm,
      strategies: () => [],
      onPositionChange: (listener) => {
        changes.on("change", listener);
      },
      websocket: { maxBufferedBytes: 256 * 1024 },
    });
    const socket = tcpConnect(api.port, "127.0.0.1");
    try {
      await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
      socket.write(
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
      socket.once("data", () => socket.pause()); // reads the handshake answer, then nothing more
      await until(() => api.stats().websocket.messagesSent >= 1); // the snapshot
      const big = { type: "closed", strategy_id: "s", symbol: "X", pad: "x".repeat(64 * 1024) };
      // ~40 MB offered: far beyond what the kernel's socket buffers absorb.
      for (let i = 0; i < 600 && api.stats().websocket.slowClientsDropped === 0; i++) {
        changes.emit("change", big as unknown as PositionChange);
      }
      expect(api.stats().websocket).toMatchObject({ slowClientsDropped: 1, clients: 0 });
    } finally {
      socket.destroy();
      await api.close();
      await dm.close();
    }
  });

  it("health is 503 and requests fail with a bare 500 (no stack) once the journal is gone", async () => {
    const dm = new DataManager({ journal: journal() });
    const api = await startApiServer({ port: 0, data: dm, strategies: () => STRATEGIES });
    try {
      await dm.close();
      const health = await getJson(api, "/api/health");
      expect(health.status).toBe(503);
      expect(health.body).toMatchObject({ status: "down", stores: { sqlite: { up: false } } });

      const positions = await getJson(api, "/api/positions");
      expect(positions.status).toBe(500);
      expect(positions.body).toEqual({ error: "internal error" });
      expect(api.stats().rejected.internal_error).toBe(1);
      // Still serving.
      expect((await getJson(api, "/api/status")).status).toBe(200);
    } finally {
      await api.close();
    }
  });

  it("writes position history and stops into one CSV, without Flux's bookkeeping columns, formulas made inert", async () => {
    // Rows shaped as the Flux client returns them (pivoted). No InfluxDB 2 runs here, so the
    // export route's InfluxDB branch is covered by this conversion and by the queries' own tests.
    const history = [
      {
        result: "_result",
        table: 0,
        _start: "x",
        _stop: "y",
        _measurement: "positions",
        _time: "2025-05-09T08:40:01Z",
        trade_id: "T9",
        price: 104,
        unrealized_pnl: 40,
      },
      { _time: "2025-05-09T08:40:02Z", trade_id: "T9", price: 96, unrealized_pnl: -40, note: "=1+1" },
    ];
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (c: Buffer) => chunks.push(c));
    await writeTradeCsv(
      {
        trade: {} as never,
        entry_conditions: [],
        exit_conditions: [],
        position_history: history,
        sl_timeline: [
          { id: 1, trade_id: "T9", ts: 1_746_780_001, stop: 95, highest_price: 104, sl_type: "trailing" },
        ],
      },
      out,
    );
    expect(Buffer.concat(chunks).toString("utf8").trimEnd().split("\n")).toEqual([
      "kind,time,trade_id,price,unrealized_pnl,note,stop,highest_price,sl_type",
      "position,2025-05-09T08:40:01.000Z,T9,104,40,,,,",
      "position,2025-05-09T08:40:02.000Z,T9,96,-40,'=1+1,,,",
      "stop_loss,2025-05-09T08:40:01.000Z,,,,,95,104,trailing",
    ]);
  });

  it("refuses to start on a port in use, and closes twice without error", async () => {
    const dm = new DataManager({ journal: journal() });
    const api = await startApiServer({ port: 0, data: dm, strategies: () => [] });
    await expect(startApiServer({ port: api.port, data: dm, strategies: () => [] })).rejects.toThrow(
      /EADDRINUSE/,
    );
    await Promise.all([api.close(), api.close()]);
    await dm.close();
  });
});

const skip = skipWithout("redis-server", "API tests with Redis");

describe.skipIf(skip)("API with a real Redis", () => {
  let server: RedisServer;
  let cache: RedisCache;
  let dm: DataManager;
  let api: ApiServer;

  beforeAll(async () => {
    server = await RedisServer.start();
    cache = await RedisCache.connect(server.url);
    dm = new DataManager({ journal: journal(), cache, cacheFlushMs: 20 });
    await seed(dm);
    api = await startApiServer({ port: 0, data: dm, cache, strategies: () => STRATEGIES });
  });
  afterAll(async () => {
    await api?.close();
    await dm?.close();
    await server?.stop();
  });

  it("GET /api/indicators/:symbol from Redis; 404 for a symbol without any", async () => {
    const at = Date.now();
    dm.storeIndicators("RELIANCE", { rsi_14: 31.5, ema_20: 101.25 }, at);
    await until(async () => (await cache.getIndicators("RELIANCE")) !== null);
    const { status, body } = await getJson(api, "/api/indicators/RELIANCE");
    expect(status).toBe(200);
    expect(body).toEqual({ symbol: "RELIANCE", values: { rsi_14: 31.5, ema_20: 101.25 }, timestamp: at });

    const none = await getJson(api, "/api/indicators/INFY");
    expect(none.status).toBe(404);
  });

  it("GET /api/strategies carries the Redis counters", async () => {
    const { body } = await getJson(api, "/api/strategies");
    expect(body[0].counters).toMatchObject({ trades: 1, wins: 1, pnl: 98 });
  });

  it("WebSocket: a position opened through the DataManager arrives within 1 s", async () => {
    expect(api.stats().websocket.redisSubscribed).toBe(true);
    const client = await FeedClient.open(api);
    try {
      const snapshot = await client.next((m) => m.type === "positions");
      expect(snapshot.data).toEqual([expect.objectContaining({ trade_id: "T2" })]);

      const started = Date.now();
      await dm.openPosition({ trade: trade("T3", { symbol: "INFY", entry_price: 50 }) });
      const opened = await client.next((m) => m.type === "position_change", 1_000);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(opened.data).toMatchObject({
        type: "opened",
        strategy_id: "rsi_agg",
        symbol: "INFY",
        trade_id: "T3",
      });

      await dm.closePosition("T3", { exit: { exit_time: T0 + 30, exit_price: 55, exit_reason: "target" } });
      const closed = await client.next(
        (m) => m.type === "position_change" && (m.data as PositionChange).type === "closed",
      );
      expect(closed.data).toEqual({ type: "closed", strategy_id: "rsi_agg", symbol: "INFY" });
    } finally {
      client.close();
    }
  });

  it("Redis down: /api/indicators is 503, positions and health still answer from the journal", async () => {
    await server.kill();
    await until(() => !cache.connected, 5_000);

    const indicators = await getJson(api, "/api/indicators/RELIANCE");
    expect(indicators.status).toBe(503);
    expect(indicators.body).toMatchObject({
      store: "redis",
      error: expect.stringMatching(/redis unavailable/),
    });

    const positions = await getJson(api, "/api/positions");
    expect(positions.status).toBe(200);
    expect(positions.body).toEqual([expect.objectContaining({ trade_id: "T2" })]);

    const health = await getJson(api, "/api/health");
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({
      status: "degraded",
      stores: { sqlite: { up: true }, redis: { configured: true, up: false } },
    });
  });
});
