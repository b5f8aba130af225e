import { stringify } from "csv-stringify/sync";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { z } from "zod";
import { errorMessage, NotFoundError, StoreUnavailableError, ValidationError } from "../domain/errors.js";
import { assertId, assertSymbol, parseOrThrow } from "../domain/identifiers.js";
import type { StoredSlUpdate } from "../domain/trade.js";
import { API_REJECT_REASONS, type ApiRejectCounts, type ApiRejectReason } from "../schema/metrics.js";
import type { DataManager } from "../storage/data-manager.js";
import type { RedisCache } from "../storage/redis-cache.js";
import { mountGrafanaRoutes } from "./grafana.js";

/**
 * The read-only HTTP API over the DataManager (seed 002, task 4.5), as an Express app that is not
 * listening yet: `startApiServer` listens and attaches the WebSocket feed.
 *
 * Every answer is JSON except the CSV export. Bad input is a 400 naming the field, an unknown route
 * a 404, a store that cannot answer a 503; nothing that goes wrong inside reaches the client beyond
 * a one-line message, and no request can take the process down.
 *
 * The Grafana JSON datasource routes (src/api/grafana.ts, GRAFANA_ROUTES) are mounted here too:
 * they take their query in a POST body, as the plugin sends it, but read like every other route.
 */

/** What the API shows of a configured strategy; extra fields are passed through as its config. */
export interface StrategyInfo {
  id: string;
  type: string;
  symbols: readonly string[];
}

export interface ApiDeps {
  data: DataManager;
  /** Serves `/api/indicators/:symbol`; absent means Redis is not configured. */
  cache?: RedisCache | undefined;
  /** The configured strategies, read on every `/api/strategies` request. */
  strategies: () => readonly StrategyInfo[];
  /** Engine counters for `/api/status`. */
  status?: (() => Record<string, unknown>) | undefined;
  logger?: Logger | undefined;
  /**
   * Called once per finished request with the route pattern (`/api/trades/:id`, or `unmatched` when
   * no route was reached), the method, the status code and the duration in seconds.
   */
  observeRequest?: ((route: string, method: string, status: number, seconds: number) => void) | undefined;
}

export type ApiApp = Express & {
  /** Requests answered with an error since start, by reason (every reason present, zeros included). */
  rejected(): ApiRejectCounts;
};

/** Route patterns, also the `route` label of `observeRequest` (with GRAFANA_ROUTES). */
export const API_ROUTES = {
  health: "/api/health",
  status: "/api/status",
  positions: "/api/positions",
  strategies: "/api/strategies",
  trade: "/api/trades/:id",
  tradeExport: "/api/trades/:id/export",
  indicators: "/api/indicators/:symbol",
} as const;

/** The `route` label of requests that reached no route (unknown paths, bodies refused before routing). */
export const UNMATCHED_ROUTE = "unmatched";

export const MAX_BODY_BYTES = 16 * 1024;

const DEFAULT_DAYS = 30;
const daysSchema = z
  .string()
  .regex(/^\d{1,4}$/, "must be a whole number of days from 1 to 3650")
  .transform(Number)
  .pipe(z.number().int().min(1, "must be at least 1").max(3650, "must be at most 3650"));

/** Methods outside this list are labelled OTHER, so the label stays bounded. */
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Flux bookkeeping columns that say nothing about the position. */
const FLUX_COLUMNS = new Set(["result", "table", "_start", "_stop", "_measurement"]);

const SL_COLUMNS = ["time", "ts", "stop", "highest_price", "sl_type"] as const;

type Handler = (req: Request, res: Response) => Promise<void> | void;

export function createApiApp(deps: ApiDeps): ApiApp {
  const { data, cache, logger: log } = deps;
  const rejectedCounts = Object.fromEntries(API_REJECT_REASONS.map((r) => [r, 0])) as ApiRejectCounts;
  const startedAt = Date.now();

  const reject = (res: Response, status: number, reason: ApiRejectReason, body: Record<string, unknown>) => {
    rejectedCounts[reason]++;
    res.status(status).json(body);
  };

  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.set("json escape", true);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    let observed = false;
    const observe = () => {
      if (observed) return;
      observed = true;
      if (!deps.observeRequest) return;
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : UNMATCHED_ROUTE;
      const method = KNOWN_METHODS.has(req.method) ? req.method : "OTHER";
      try {
        deps.observeRequest(route, method, res.statusCode, seconds);
      } catch (err) {
        log?.warn({ err: errorMessage(err) }, "request observer failed");
      }
    };
    res.once("finish", observe);
    res.once("close", observe);
    res.set({
      "X-Content-Type-Options": "nosniff",
      "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
      "Referrer-Policy": "no-referrer",
      "Cache-Control": "no-store",
    });
    next();
  });

  // Only the Grafana routes read a body (JSON); any body is refused above the limit whatever its type.
  app.use(express.json({ limit: MAX_BODY_BYTES }));
  app.use(express.raw({ limit: MAX_BODY_BYTES, type: () => true }));

  /** Registers `handler` for one method (GET also answers HEAD); any other method is a 405. */
  const route = (path: string, handler: Handler, method: "GET" | "POST" = "GET") => {
    const allow = method === "GET" ? ["GET", "HEAD"] : [method];
    const r = app.route(path);
    (method === "GET" ? r.get(handler) : r.post(handler)).all((req, res) => {
      res.set("Allow", allow.join(", "));
      reject(res, 405, "method_not_allowed", { error: `method ${req.method} not allowed`, allow });
    });
  };

  route(API_ROUTES.health, async (_req, res) => {
    const health = await data.health();
    const redisDegraded = health.redis.configured && !health.redis.up;
    const status = !health.sqlite.up ? "down" : redisDegraded ? "degraded" : "ok";
    res.status(health.sqlite.up ? 200 : 503).json({ status, stores: health });
  });

  route(API_ROUTES.status, (_req, res) => {
    res.json({
      uptime_seconds: (Date.now() - startedAt) / 1000,
      engine: deps.status?.() ?? {},
      data_manager: data.stats(),
      api: { rejected: { ...rejectedCounts } },
    });
  });

  route(API_ROUTES.positions, async (_req, res) => {
    res.json(await data.getOpenPositions());
  });

  route(API_ROUTES.strategies, async (req, res) => {
    const days =
      req.query.days === undefined ? DEFAULT_DAYS : parseOrThrow(daysSchema, req.query.days, "days");
    const strategies = deps.strategies();
    const result = await Promise.all(
      strategies.map(async (config) => {
        const { stats, counters } = await data.getStrategyPerformance(config.id, days);
        return { id: config.id, config, days, stats, counters };
      }),
    );
    res.json(result);
  });

  route(API_ROUTES.trade, async (req, res) => {
    const id = assertId(req.params.id, "trade_id");
    const details = await data.getTradeDetails(id);
    if (!details) throw new NotFoundError("trade", id);
    res.json(details);
  });

  route(API_ROUTES.tradeExport, async (req, res) => {
    const id = assertId(req.params.id, "trade_id");
    const details = await data.getTradeDetails(id);
    if (!details) throw new NotFoundError("trade", id);
    const history = details.position_history;
    const fromHistory = history !== null && history.length > 0;
    const csv = fromHistory ? historyCsv(history) : slTimelineCsv(details.sl_timeline);
    // The id matched [A-Za-z0-9._-]{1,64} above: nothing in the name can break out of the quotes.
    res.set({
      "Content-Type": "text/csv; charset=utf-8",
      "Content-Disposition": `attachment; filename="trade_${id}.csv"`,
    });
    res.set("X-Export-Source", fromHistory ? "position_history" : "sl_timeline");
    res.send(csv);
  });

  route(API_ROUTES.indicators, async (req, res) => {
    const symbol = assertSymbol(req.params.symbol, "symbol");
    if (!cache) {
      throw new StoreUnavailableError(
        "redis",
        "not configured (set VELOX_REDIS_URL); indicators are served from Redis",
      );
    }
    if (!cache.connected)
      throw new StoreUnavailableError("redis", "not connected; indicators are served from Redis");
    const indicators = await cache.getIndicators(symbol);
    if (!indicators) throw new NotFoundError("indicators for", symbol);
    res.json({ symbol, ...indicators });
  });

  mountGrafanaRoutes(
    {
      get: (path, handler) => route(path, handler),
      post: (path, handler) => route(path, handler, "POST"),
    },
    deps,
  );

  app.use((req, res) => {
    reject(res, 404, "unknown_route", { error: `no route ${req.method} ${req.path}` });
  });

  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      // Too late for an error answer: end the connection so the client sees a truncated response.
      log?.warn({ err: errorMessage(err), path: req.path }, "request failed after the answer started");
      next(err);
      return;
    }
    if (err instanceof ValidationError) {
      reject(res, 400, "invalid_input", { error: err.message, field: err.field });
    } else if (err instanceof NotFoundError) {
      reject(res, 404, "not_found", { error: err.message });
    } else if (err instanceof StoreUnavailableError) {
      log?.warn({ store: err.store, err: err.message, path: req.path }, "store unavailable for request");
      reject(res, 503, "store_unavailable", { error: err.message, store: err.store });
    } else if (isHttpError(err, "entity.too.large")) {
      reject(res, 413, "body_too_large", { error: `request body larger than ${MAX_BODY_BYTES} bytes` });
    } else if (isHttpError(err, "entity.parse.failed")) {
      reject(res, 400, "malformed_body", { error: "request body is not valid JSON", field: "body" });
    } else if (err instanceof URIError) {
      reject(res, 400, "invalid_input", { error: "malformed percent-encoding in the path", field: "path" });
    } else if (isClientError(err)) {
      // Other refusals of the body parser (unsupported charset or encoding, aborted upload).
      reject(res, err.status, "malformed_body", { error: err.message });
    } else {
      log?.error({ err, path: req.path, method: req.method }, "request failed");
      reject(res, 500, "internal_error", { error: "internal error" });
    }
  });

  return Object.assign(app, { rejected: (): ApiRejectCounts => ({ ...rejectedCounts }) });
}

/** Position snapshots from InfluxDB: `_time` first, then every other column in first-seen order. */
/** CSV of a trade's position history as the Flux client returns it (bookkeeping columns dropped). */
export function historyCsv(rows: readonly Record<string, unknown>[]): string {
  const columns: string[] = [];
  const seen = new Set<string>(FLUX_COLUMNS);
  if (rows.some((row) => "_time" in row)) {
    columns.push("_time");
    seen.add("_time");
  }
  for (const row of rows) {
    for (const key of Object.keys(row)) {
      if (seen.has(key)) continue;
      seen.add(key);
      columns.push(key);
    }
  }
  return toCsv(columns, rows);
}

function slTimelineCsv(updates: readonly StoredSlUpdate[]): string {
  const rows = updates.map((u) => ({
    time: new Date(u.ts * 1000).toISOString(),
    ts: u.ts,
    stop: u.stop,
    highest_price: u.highest_price,
    sl_type: u.sl_type,
  }));
  return toCsv([...SL_COLUMNS], rows);
}

function toCsv(columns: string[], rows: readonly Record<string, unknown>[]): string {
  return stringify(rows as Record<string, unknown>[], {
    header: true,
    columns,
    cast: {
      // A cell starting like a formula is made inert for spreadsheets.
      string: (value) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value),
      date: (value) => value.toISOString(),
      boolean: (value) => (value ? "true" : "false"),
    },
  });
}

interface HttpError {
  status: number;
  type?: string;
  message: string;
}

function isClientError(err: unknown): err is HttpError {
  if (typeof err !== "object" || err === null) return false;
  const status = (err as { status?: unknown }).status;
  return typeof status === "number" && status >= 400 && status < 500;
}

function isHttpError(err: unknown, type: string): err is HttpError {
  return isClientError(err) && err.type === type;
}
