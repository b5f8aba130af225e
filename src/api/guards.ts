import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import cors from "cors";
import type { RequestHandler, Response } from "express";
import { rateLimit } from "express-rate-limit";
import helmet from "helmet";
import type { Logger } from "pino";
import { pinoHttp } from "pino-http";
import type { ApiRejectReason } from "../schema/metrics.js";

/**
 * What stands between the network and the routes, each from a well-kept library: request ids and
 * request logging (pino-http), security headers (helmet), CORS for configured origins only (cors),
 * a per-client rate limit (express-rate-limit) and an optional bearer token.
 */

export interface ApiSecurity {
  /** Bearer token every route but the open ones requires; absent: none. Never logged. */
  token?: string | undefined;
  /** Browser origins allowed cross-origin; empty or absent: none. */
  corsOrigins?: readonly string[] | undefined;
  /** Requests per minute per client address; 0 or absent: no limit. */
  rateLimitPerMinute?: number | undefined;
}

/** Paths answered without a token (and without the rate limit): the health probe. */
export const OPEN_PATHS: ReadonlySet<string> = new Set(["/api/health"]);

/** The WebSocket subprotocol prefix a browser, which cannot set headers there, carries its token in. */
export const TOKEN_SUBPROTOCOL_PREFIX = "velox.bearer.";

/** Request ids a client may choose (X-Request-Id); anything else gets a fresh one. */
const CLIENT_REQUEST_ID = /^[A-Za-z0-9._-]{8,64}$/;

type Reject = (res: Response, status: number, reason: ApiRejectReason, body: Record<string, unknown>) => void;

/** X-Request-Id on every answer, and pino-http request logging (4xx warn, 5xx error, others debug). */
export function requestLogging(logger: Logger | undefined): RequestHandler {
  const requestId = (req: IncomingMessage, res: ServerResponse): string => {
    const asked = req.headers["x-request-id"];
    const id = typeof asked === "string" && CLIENT_REQUEST_ID.test(asked) ? asked : randomUUID();
    res.setHeader("X-Request-Id", id);
    return id;
  };
  if (!logger) {
    return (req, res, next) => {
      (req as { id?: string }).id = requestId(req, res);
      next();
    };
  }
  return pinoHttp({
    logger,
    genReqId: requestId,
    customLogLevel: (_req, res, err) =>
      err || res.statusCode >= 500 ? "error" : res.statusCode >= 400 ? "warn" : "debug",
    // The token travels in these; the query string holds no secret by design.
    redact: {
      paths: [
        "req.headers.authorization",
        "req.headers.cookie",
        'req.headers["sec-websocket-protocol"]',
        'req.headers["x-api-key"]',
      ],
      censor: "***",
    },
    serializers: {
      req: (req: { id: string; method: string; url: string; headers: Record<string, unknown> }) => ({
        id: req.id,
        method: req.method,
        url: req.url,
        headers: req.headers,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  }) as unknown as RequestHandler;
}

/** Security headers for JSON routes: nothing may load, frame or be sniffed. */
export function apiHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] },
    },
    referrerPolicy: { policy: "no-referrer" },
    // No HTTPS here (loopback); a proxy in front sets HSTS where it terminates TLS.
    strictTransportSecurity: false,
  });
}

/** Security headers for the live page: its own scripts, styles and WebSocket, nothing else. */
export function pageHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'"],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
      },
    },
    referrerPolicy: { policy: "no-referrer" },
    strictTransportSecurity: false,
  });
}

/** CORS for the configured origins only; with none, no CORS header is ever sent. */
export function corsFor(origins: readonly string[] | undefined): RequestHandler | undefined {
  if (!origins || origins.length === 0) return undefined;
  const allowed = new Set(origins);
  return cors({
    origin: (origin, done) => done(null, origin !== undefined && allowed.has(origin)),
    methods: ["GET", "HEAD", "POST"],
    allowedHeaders: ["Authorization", "Content-Type", "X-Request-Id"],
    exposedHeaders: ["X-Request-Id"],
    maxAge: 600,
  });
}

/** The per-client limit, answering a JSON 429 (counted) with the standard RateLimit headers. */
export function rateLimitFor(perMinute: number | undefined, reject: Reject): RequestHandler | undefined {
  if (!perMinute) return undefined;
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    skip: (req) => OPEN_PATHS.has(req.path),
    handler: (_req, res) =>
      reject(res, 429, "rate_limited", { error: `more than ${perMinute} requests a minute; slow down` }),
  });
}

/** Whether `presented` is the token, in constant time whatever its length. */
export function tokenMatches(token: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  // Digests of both: equal length for timingSafeEqual, and no early exit on the length.
  const a = createHash("sha256").update(token).digest();
  const b = createHash("sha256").update(presented).digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, if that is what the header holds. */
export function bearerOf(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer ([^\s]+)$/i.exec(header.trim());
  return match?.[1];
}

/** Requires the bearer token on every path but OPEN_PATHS and `publicPaths`; a JSON 401 otherwise. */
export function requireToken(
  token: string | undefined,
  publicPaths: ReadonlySet<string>,
  reject: Reject,
): RequestHandler | undefined {
  if (token === undefined) return undefined;
  return (req, res, next) => {
    if (OPEN_PATHS.has(req.path) || publicPaths.has(req.path)) return next();
    if (tokenMatches(token, bearerOf(req.headers.authorization))) return next();
    res.set("WWW-Authenticate", 'Bearer realm="velox"');
    reject(res, 401, "unauthorized", { error: "a valid bearer token is required (Authorization: Bearer …)" });
  };
}
