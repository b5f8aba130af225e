import { createHash, randomBytes } from "node:crypto";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { API_ROUTES } from "../../src/api/app.js";
import { GRAFANA_ROUTES } from "../../src/api/grafana.js";
import { type ApiServer, startApiServer } from "../../src/api/server.js";
import { DataManager } from "../../src/storage/data-manager.js";
import { TradeJournal } from "../../src/storage/trade-journal.js";
import { API_STRATEGIES, seedApiTrades } from "../helpers/api.js";
import { memoryLogger } from "../helpers/memory-logger.js";
import { tempJournalPath } from "../helpers/trades.js";

/**
 * The API's guards: the bearer token (every route but /api/health, the WebSocket too, never in a
 * log line), CORS for configured origins only, the per-client rate limit, and a barrage of hostile
 * requests that must all end in a JSON 4xx without touching the journal.
 */

/** A fresh token per run (hex: within the allowed characters). */
const TOKEN = randomBytes(16).toString("hex");
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** Every route with concrete parameters, and how to call it. */
const CALLS: { path: string; method: "GET" | "POST"; body?: unknown }[] = [
  ...Object.values(API_ROUTES).map((route) => ({
    path: route.replace(":id", "T1").replace(":symbol", "RELIANCE"),
    method: "GET" as const,
  })),
  { path: GRAFANA_ROUTES.root, method: "GET" },
  { path: GRAFANA_ROUTES.metrics, method: "POST", body: {} },
  { path: GRAFANA_ROUTES.query, method: "POST", body: { targets: [] } },
  { path: GRAFANA_ROUTES.variable, method: "POST", body: { payload: { target: "strategies" } } },
];

function call(api: ApiServer, c: (typeof CALLS)[number], headers: Record<string, string> = {}) {
  return fetch(`${api.url}${c.path}`, {
    method: c.method,
    headers: { ...(c.body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(c.body === undefined ? {} : { body: JSON.stringify(c.body) }),
  });
}

/** A digest of every row of the journal's tables: equal digests, unchanged journal. */
function journalDigest(path: string): string {
  const db = new Database(path, { readonly: true });
  try {
    const hash = createHash("sha256");
    for (const table of ["trades", "signal_conditions", "sl_updates"]) {
      for (const row of db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all())
        hash.update(JSON.stringify(row));
    }
    return hash.digest("hex");
  } finally {
    db.close();
  }
}

describe("API with a bearer token", () => {
  const path = tempJournalPath("velox-guards-");
  const { logger, entries } = memoryLogger();
  let dm: DataManager;
  let api: ApiServer;

  beforeAll(async () => {
    dm = new DataManager({ journal: TradeJournal.open(path) });
    await seedApiTrades(dm);
    await dm.settle();
    api = await startApiServer({
      port: 0,
      data: dm,
      strategies: () => API_STRATEGIES,
      logger,
      security: { token: TOKEN },
    });
  });
  afterAll(async () => {
    await api?.close();
    await dm?.close();
  });

  it("answers 401 (JSON, WWW-Authenticate) on every route but /api/health without the token or with a wrong one", async () => {
    const wrong: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${TOKEN}x` },
      { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
      { authorization: TOKEN },
      { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString("base64")}` },
      { authorization: "Bearer" },
    ];
    let checked = 0;
    for (const c of CALLS) {
      for (const headers of wrong) {
        const res = await call(api, c, headers);
        if (c.path === API_ROUTES.health) {
          expect(res.status, c.path).toBe(200);
        } else {
          expect(res.status, `${c.method} ${c.path} ${JSON.stringify(headers)}`).toBe(401);
          expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
          expect(await res.json()).toMatchObject({ error: expect.stringMatching(/token/) });
          checked++;
        }
      }
      // With the token the route answers as it would without a token configured.
      const ok = await call(api, c, AUTH);
      expect(ok.status, c.path).not.toBe(401);
      // Indicators come from Redis, which this API has not got: 503, as without a token.
      if (c.path.startsWith("/api/indicators/")) expect(ok.status, c.path).toBe(503);
      else expect(ok.status, c.path).toBeLessThan(500);
    }
    expect(checked).toBeGreaterThanOrEqual((CALLS.length - 1) * wrong.length);
  });

  it("refuses a WebSocket without the token (401) and takes it as a header or a subprotocol", async () => {
    const url = `${api.url.replace("http", "ws")}/ws`;
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(url);
      ws.on("unexpected-response", (_req, res) => resolve(res.statusCode ?? 0));
      ws.on("open", () => resolve(101));
    });
    expect(refused).toBe(401);
    for (const ws of [
      new WebSocket(url, { headers: AUTH }),
      new WebSocket(url, ["velox", `velox.bearer.${TOKEN}`]),
    ]) {
      const first = await new Promise<string>((resolve, reject) => {
        ws.once("message", (m) => resolve(String(m)));
        ws.once("error", reject);
      });
      expect(JSON.parse(first).type).toBe("positions");
      // The token-bearing subprotocol is never echoed back.
      expect(ws.protocol === "" || ws.protocol === "velox").toBe(true);
      ws.close();
    }
  });

  it("never writes the token into a log line", () => {
    expect(entries.length).toBeGreaterThan(20);
    expect(JSON.stringify(entries)).not.toContain(TOKEN);
    // Request lines are there, with an id, and the header masked.
    const logged = entries.find(
      (e) => (e.req as { headers?: { authorization?: string } })?.headers?.authorization,
    );
    expect(logged).toBeDefined();
    const req = logged?.req as { id?: string; headers: { authorization?: string } } | undefined;
    expect(req?.headers.authorization).toBe("***");
    expect(req?.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("withstands 200+ hostile requests: each a JSON 4xx, none a 5xx, the journal unchanged", async () => {
    const before = journalDigest(path);
    const injections = [
      "' OR 1=1 --",
      "1; DROP TABLE trades;",
      '") |> drop() //',
      'r._measurement == "x" or true',
      "$" + "{jndi:ldap://x}", // a log4j-style lookup, spelled so no template is implied
      "<script>alert(1)</script>",
      "../../etc/passwd",
      "..%2F..%2Fetc%2Fpasswd",
      "%00",
      "é".repeat(40),
      "💥".repeat(20),
      "A".repeat(6_000),
      "T1\r\nSet-Cookie: x=1",
      "T1' UNION SELECT * FROM trades --",
      'x |> yield(name: "leak")',
      "\u0000",
    ];
    const requests: { path: string; init?: RequestInit }[] = [];
    for (const bad of injections) {
      const e = encodeURIComponent(bad);
      requests.push(
        { path: `/api/trades/${e}` },
        { path: `/api/trade/${e}` },
        { path: `/api/trades/${e}/export` },
        { path: `/api/trade/${e}/export` },
        { path: `/api/indicators/${e}` },
        { path: `/api/trades?strategy=${e}` },
        { path: `/api/trades?symbol=${e}` },
        { path: `/api/trades?status=${e}` },
        { path: `/api/trades?cursor=${e}` },
        { path: `/api/trades?limit=${e}` },
        { path: `/api/strategies?days=${e}` },
        {
          path: GRAFANA_ROUTES.query,
          init: {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ targets: [{ target: bad }] }),
          },
        },
        {
          path: GRAFANA_ROUTES.variable,
          init: {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ payload: { target: bad } }),
          },
        },
      );
    }
    const json = { "content-type": "application/json" };
    requests.push(
      // Wrong types and repeated parameters.
      { path: "/api/trades?limit=0" },
      { path: "/api/trades?limit=-1" },
      { path: "/api/trades?limit=1.5" },
      { path: "/api/trades?limit=100000" },
      { path: "/api/trades?limit=1&limit=2" },
      { path: "/api/trades?status=open&status=closed" },
      { path: "/api/trades?strategy=a&strategy=b" },
      { path: "/api/strategies?days=0" },
      { path: "/api/strategies?days=1e3" },
      { path: `/api/trades?cursor=${Buffer.from('[1,"../x"]').toString("base64url")}` },
      { path: `/api/trades?cursor=${Buffer.from('["x","T1"]').toString("base64url")}` },
      { path: `/api/trades?cursor=${"A".repeat(300)}` },
      // Malformed and oversized bodies, wrong content types, wrong methods.
      { path: GRAFANA_ROUTES.query, init: { method: "POST", headers: json, body: "{not json" } },
      { path: GRAFANA_ROUTES.query, init: { method: "POST", headers: json, body: '{"targets": "x"}' } },
      { path: GRAFANA_ROUTES.query, init: { method: "POST", headers: json, body: "[]" } },
      {
        path: GRAFANA_ROUTES.query,
        init: { method: "POST", headers: json, body: JSON.stringify({ pad: "x".repeat(40_000) }) },
      },
      {
        path: GRAFANA_ROUTES.query,
        init: { method: "POST", headers: { "content-type": "text/plain" }, body: "x".repeat(40_000) },
      },
      {
        path: GRAFANA_ROUTES.query,
        init: { method: "POST", headers: { "content-type": "application/json; charset=latin9" }, body: "{}" },
      },
      {
        path: GRAFANA_ROUTES.query,
        init: { method: "POST", headers: { ...json, "content-encoding": "br" }, body: "{}" },
      },
      { path: "/api/positions", init: { method: "POST" } },
      { path: "/api/positions", init: { method: "DELETE" } },
      { path: "/api/trades/T1", init: { method: "PUT", headers: json, body: "{}" } },
      { path: "/api/trades/T1", init: { method: "PATCH" } },
      { path: "/api/trades/..%5C..%5Cwindows%5Cwin.ini" },
      { path: "/api/%E0%A4%A" },
      { path: "/.git/config" },
      { path: "/%2e%2e/%2e%2e/etc/passwd" },
      { path: "/api/nothing" },
      // Bad headers: a wrong token in several shapes.
      { path: "/api/positions", init: { headers: { authorization: "Bearer ' OR 1=1" } } },
      { path: "/api/positions", init: { headers: { authorization: `Bearer ${"x".repeat(4000)}` } } },
      { path: "/api/positions", init: { headers: { authorization: "Bearer é".normalize() } } },
    );
    expect(requests.length).toBeGreaterThanOrEqual(200);
    const outcomes: string[] = [];
    for (const r of requests) {
      const headers = new Headers(r.init?.headers);
      if (!headers.has("authorization")) headers.set("authorization", AUTH.authorization);
      let res: Response;
      try {
        res = await fetch(`${api.url}${r.path}`, { ...r.init, headers });
      } catch (err) {
        // fetch itself refuses some header values (e.g. non-Latin-1): nothing reached the server.
        outcomes.push(`client-refused ${r.path.slice(0, 40)} ${(err as Error).message}`);
        continue;
      }
      const text = await res.text();
      const label = `${r.init?.method ?? "GET"} ${r.path.slice(0, 80)} → ${res.status}`;
      expect(res.status, label).toBeGreaterThanOrEqual(400);
      expect(res.status, label).toBeLessThan(500);
      expect(res.headers.get("content-type"), label).toMatch(/^application\/json/);
      expect(JSON.parse(text), label).toMatchObject({ error: expect.any(String) });
      outcomes.push(String(res.status));
    }
    // Nearly all reached the server (fetch refuses only unencodable headers).
    expect(outcomes.filter((o) => /^\d+$/.test(o)).length).toBeGreaterThanOrEqual(200);
    expect(journalDigest(path)).toBe(before);
  }, 60_000);
});

describe("API CORS and rate limit", () => {
  let dm: DataManager;
  let api: ApiServer;
  beforeAll(async () => {
    dm = new DataManager({ journal: TradeJournal.open(tempJournalPath("velox-cors-")) });
    api = await startApiServer({
      port: 0,
      data: dm,
      strategies: () => [],
      security: { corsOrigins: ["http://grafana.example:3000"], rateLimitPerMinute: 8 },
    });
  });
  afterAll(async () => {
    await api?.close();
    await dm?.close();
  });

  it("sends CORS headers to a configured origin only", async () => {
    const allowed = await fetch(`${api.url}/api/positions`, {
      method: "OPTIONS",
      headers: { origin: "http://grafana.example:3000", "access-control-request-method": "GET" },
    });
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("http://grafana.example:3000");
    const other = await fetch(`${api.url}/api/positions`, { headers: { origin: "http://evil.example" } });
    expect(other.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("answers a JSON 429 past the per-client limit, counted; /api/health is not limited", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) statuses.push((await fetch(`${api.url}/api/positions`)).status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    const limited = await fetch(`${api.url}/api/positions`);
    expect(limited.status).toBe(429);
    expect(await limited.json()).toMatchObject({ error: expect.stringMatching(/requests a minute/) });
    expect(limited.headers.get("ratelimit-policy") ?? limited.headers.get("ratelimit")).toBeTruthy();
    expect((await fetch(`${api.url}/api/health`)).status).toBe(200);
    expect(api.stats().rejected.rate_limited).toBeGreaterThan(0);
  });

  it("without configured origins no CORS header is ever sent", async () => {
    const dm2 = new DataManager({ journal: TradeJournal.open(tempJournalPath("velox-nocors-")) });
    const plain = await startApiServer({ port: 0, data: dm2, strategies: () => [] });
    try {
      const res = await fetch(`${plain.url}/api/health`, {
        headers: { origin: "http://grafana.example:3000" },
      });
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await plain.close();
      await dm2.close();
    }
  });
});
