import { fileURLToPath } from "node:url";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { z } from "zod";
import { errorMessage, NotFoundError, StoreUnavailableError, ValidationError } from "../domain/errors.js";
import { assertId, assertSymbol, parseOrThrow } from "../domain/identifiers.js";
import { type SentimentRecord, sentimentInputSchema } from "../domain/sentiment.js";
import { tradeStatusSchema } from "../domain/trade.js";
import {
  API_REJECT_REASONS,
  type ApiRejectCounts,
  type ApiRejectReason,
  type SentimentResult,
} from "../schema/metrics.js";
import type { DataManager } from "../storage/data-manager.js";
import { type RedisCache, requireConnectedCache } from "../storage/redis-cache.js";
import { decodeCursor, encodeCursor } from "./cursor.js";
import { mountGrafanaRoutes } from "./grafana.js";
import {
  type ApiSecurity,
  apiHeaders,
  corsFor,
  pageHeaders,
  rateLimitFor,
  requestLogging,
  requireToken,
} from "./guards.js";
import { monitoringPackage } from "./monitoring-package.js";
import { writeTradeCsv } from "./trade-export.js";

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
  /** Token, CORS origins and rate limit (see guards.ts); absent: no token, no CORS, no limit. */
  security?: ApiSecurity | undefined;
  /** For `/api/services` (seed 001); absent: derived from the stores' health, Kafka false. */
  services?: (() => ServiceStates | Promise<ServiceStates>) | undefined;
  /** The bar timeframes, to split a symbol's indicators by timeframe in `/api/monitoring/:symbol`. */
  timeframes?: readonly string[] | undefined;
  /** Called once per sentiment record received, accepted or rejected. */
  observeSentiment?: ((result: SentimentResult) => void) | undefined;
}

/** Whether each backend is configured and answering (`/api/services`, seed 001). */
export interface ServiceStates {
  kafka: boolean;
  influxdb: boolean;
  redis: boolean;
  sqlite: boolean;
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
  services: "/api/services",
  trades: "/api/trades",
  trade: "/api/trades/:id",
  tradeExport: "/api/trades/:id/export",
  /** Seed 002's names for the same two handlers. */
  seedTrade: "/api/trade/:id",
  seedTradeExport: "/api/trade/:id/export",
  indicators: "/api/indicators/:symbol",
  /** Seed 004's decision package of one symbol. */
  monitoring: "/api/monitoring/:symbol",
  /** Sentiment in (POST, seed 004's stocks:sentiment:{symbol} shape). */
  sentiment: "/api/sentiment/:symbol",
} as const;

/** The live page and its assets (public/): static, no data, served without a token. */
export const PAGE_PATHS: ReadonlySet<string> = new Set(["/", "/index.html", "/live.js", "/live.css"]);
const PUBLIC_DIR = fileURLToPath(new URL("../../public/", import.meta.url));

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

const DEFAULT_PAGE = 100;
const pageLimitSchema = z
  .string()
  .regex(/^\d{1,4}$/, "must be a whole number from 1 to 1000")
  .transform(Number)
  .pipe(z.number().int().min(1, "must be at least 1").max(1000, "must be at most 1000"));

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
    res.set("Cache-Control", "no-store");
    next();
  });

  const security = deps.security ?? {};
  app.use(requestLogging(log));
  const page = pageHeaders();
  const api = apiHeaders();
  app.use((req, res, next) => (PAGE_PATHS.has(req.path) ? page(req, res, next) : api(req, res, next)));
  const guards = [
    corsFor(security.corsOrigins),
    rateLimitFor(security.rateLimitPerMinute, reject),
    requireToken(security.token, PAGE_PATHS, reject),
  ];
  for (const guard of guards) if (guard) app.use(guard);

  // The live page: static files, no build step (public/).
  app.use(
    express.static(PUBLIC_DIR, {
      index: "index.html",
      dotfiles: "ignore",
      redirect: false,
      fallthrough: true,
      setHeaders: (res) => res.setHeader("Cache-Control", "no-cache"),
    }),
  );

  // Only the Grafana routes and sentiment in read a body (JSON); any body is refused above the limit whatever its type.
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
    // The journal is asked a real query: a closed or unreadable journal is a 503.
    const health = await data.health();
    const redisDegraded = health.redis.configured && !health.redis.up;
    const status = !health.sqlite.up ? "down" : redisDegraded ? "degraded" : "ok";
    res.status(health.sqlite.up ? 200 : 503).json({ status, stores: health });
  });

  route(API_ROUTES.services, async (_req, res) => {
    if (deps.services) {
      res.json(await deps.services());
      return;
    }
    const health = await data.health();
    res.json({
      kafka: false,
      influxdb: health.influx.configured,
      redis: health.redis.up,
      sqlite: health.sqlite.up,
    } satisfies ServiceStates);
  });

  route(API_ROUTES.trades, (req, res) => {
    const query = req.query;
    const text = (name: string): string | undefined => {
      const value = query[name];
      if (value === undefined) return undefined;
      if (typeof value !== "string") throw new ValidationError(name, "must be given once, as text");
      return value;
    };
    const limit = text("limit");
    const cursor = text("cursor");
    const status = text("status");
    const page = data.getTradePage({
      limit: limit === undefined ? DEFAULT_PAGE : parseOrThrow(pageLimitSchema, limit, "limit"),
      strategyId: text("strategy"),
      symbol: text("symbol"),
      status: status === undefined ? undefined : parseOrThrow(tradeStatusSchema, status, "status"),
      after: cursor === undefined ? undefined : decodeCursor(cursor),
    });
    res.json({ trades: page.trades, next_cursor: page.next === null ? null : encodeCursor(page.next) });
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

  const tradeDetails: Handler = async (req, res) => {
    const id = assertId(req.params.id, "trade_id");
    const details = await data.getTradeDetails(id);
    if (!details) throw new NotFoundError("trade", id);
    res.json(details);
  };
  const tradeExport: Handler = async (req, res) => {
    const id = assertId(req.params.id, "trade_id");
    const details = await data.getTradeDetails(id);
    if (!details) throw new NotFoundError("trade", id);
    // The id matched [A-Za-z0-9._-]{1,64} above: nothing in the name can break out of the quotes.
    res.set({
      "Content-Type": "text/csv; charset=utf-8",
      "Content-Disposition": `attachment; filename="trade_${id}.csv"`,
      // Whether InfluxDB answered for the position history (else only the journal's stops).
      "X-Position-History": details.position_history === null ? "unavailable" : "included",
    });
    await writeTradeCsv(details, res);
  };
  route(API_ROUTES.trade, tradeDetails);
  route(API_ROUTES.seedTrade, tradeDetails);
  route(API_ROUTES.tradeExport, tradeExport);
  route(API_ROUTES.seedTradeExport, tradeExport);

  route(API_ROUTES.indicators, async (req, res) => {
    const symbol = assertSymbol(req.params.symbol, "symbol");
    const indicators = await requireConnectedCache(cache, "indicators are served from Redis").getIndicators(
      symbol,
    );
    if (!indicators) throw new NotFoundError("indicators for", symbol);
    res.json({ symbol, ...indicators });
  });

  route(API_ROUTES.monitoring, async (req, res) => {
    const symbol = assertSymbol(req.params.symbol, "symbol");
    res.json(await monitoringPackage(symbol, { data, cache, timeframes: deps.timeframes ?? [] }));
  });

  route(
    API_ROUTES.sentiment,
    async (req, res) => {
      let symbol: string;
      let record: SentimentRecord;
      try {
        symbol = assertSymbol(req.params.symbol, "symbol");
        record = parseOrThrow(sentimentInputSchema, req.body, "sentiment");
      } catch (err) {
        // A bad symbol is a rejected record too.
        deps.observeSentiment?.("rejected");
        throw err;
      }
      await data.storeSentiment(symbol, record);
      deps.observeSentiment?.("accepted");
      res.status(201).json({ symbol, stored: true, timestamp: new Date(record.timestamp).toISOString() });
    },
    "POST",
  );

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
