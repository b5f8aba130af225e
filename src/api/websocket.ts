import { type IncomingMessage, type Server, STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { WebSocket, WebSocketServer } from "ws";
import { errorMessage } from "../domain/errors.js";
import type { DataManager } from "../storage/data-manager.js";
import type { PositionChange, RedisCache } from "../storage/redis-cache.js";
import { bearerOf, TOKEN_SUBPROTOCOL_PREFIX, tokenMatches } from "./guards.js";

/**
 * Live positions over a WebSocket at `/ws`. A client gets, in order:
 *  - `{type:"positions", data:[…]}` — the open positions when it connects;
 *  - `{type:"position_change", data:{type:"opened"|"updated"|"closed", …}}` — every change after that;
 *  - `{type:"status", data:{time, engine, stores, clients}}` — every `statusIntervalMs`.
 *
 * Changes come from Redis pub/sub when a cache is given, and from the in-process source
 * (`onPositionChange`) otherwise — and also while Redis is configured but not connected, so the feed
 * goes on through a Redis outage. The feed is bounded: connections are capped, a client whose
 * unsent data exceeds `maxBufferedBytes` is dropped rather than buffered for, and a client that
 * stops answering pings is dropped. Messages from clients are ignored.
 */

export type PositionChangeListener = (change: PositionChange) => void;
/** Registers a listener for in-process position changes; may return an unsubscribe. */
// biome-ignore lint/suspicious/noConfusingVoidType: lets a source that cannot unsubscribe return nothing
export type PositionChangeSource = (listener: PositionChangeListener) => (() => void) | void;

export interface PositionFeedDeps {
  data: DataManager;
  cache?: RedisCache | undefined;
  onPositionChange?: PositionChangeSource | undefined;
  /** Engine counters for the periodic status message. */
  status?: (() => Record<string, unknown>) | undefined;
  logger?: Logger | undefined;
}

export interface PositionFeedOptions {
  /** Default `/ws`. */
  path?: string;
  /** Concurrent connections; further upgrades get a 503. Default 100. */
  maxClients?: number;
  /** Unsent bytes a client may have queued before it is dropped. Default 1 MiB. */
  maxBufferedBytes?: number;
  /** Period of the status message; 0 disables it. Default 5000. */
  statusIntervalMs?: number;
  /** Period of the ping that finds dead clients; 0 disables it. Default 30000. */
  heartbeatIntervalMs?: number;
  /** Largest message a client may send (they are ignored anyway). Default 4 KiB. */
  maxIncomingBytes?: number;
  /**
   * Decides whether a browser origin may connect. Default: requests without an Origin (non-browser
   * clients), and origins on a loopback host or on the host the request was addressed to.
   */
  allowOrigin?: (origin: string | undefined, req: IncomingMessage) => boolean;
  /** Browser origins allowed besides those (VELOX_API_CORS_ORIGINS). */
  extraOrigins?: readonly string[] | undefined;
  /**
   * The API's bearer token: an upgrade without it gets a 401. A non-browser client sends
   * `Authorization: Bearer …`; a browser, which cannot, offers the subprotocols `velox` and
   * `velox.bearer.<token>`, and the server answers with `velox` (the token is not echoed).
   */
  token?: string | undefined;
}

/** The subprotocol the server selects when a client offers it (with its token). */
export const FEED_SUBPROTOCOL = "velox";

export interface PositionFeedStats {
  clients: number;
  connectionsTotal: number;
  /** Upgrades refused: over the cap, a disallowed origin, or while closing. */
  connectionsRefused: number;
  slowClientsDropped: number;
  deadClientsDropped: number;
  messagesSent: number;
  changesReceived: number;
  redisSubscribed: boolean;
}

export interface PositionFeed {
  /** Settles once the first Redis subscription attempt is over (at once without Redis). */
  readonly ready: Promise<void>;
  stats(): PositionFeedStats;
  /** Closes every client (1001), terminating those that do not finish within `timeoutMs`. */
  close(timeoutMs?: number): Promise<void>;
}

interface Client {
  ws: WebSocket;
  /** False until the snapshot is sent; changes wait in `pending` meanwhile so order holds. */
  ready: boolean;
  pending: string[];
  alive: boolean;
}

const MAX_PENDING = 1_000;

export function attachPositionFeed(
  server: Server,
  deps: PositionFeedDeps,
  options: PositionFeedOptions = {},
): PositionFeed {
  const { data, cache, logger: log } = deps;
  const path = options.path ?? "/ws";
  const maxClients = options.maxClients ?? 100;
  const maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
  const statusIntervalMs = options.statusIntervalMs ?? 5_000;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 30_000;
  const extraOrigins = new Set(options.extraOrigins ?? []);
  const allowOrigin = (origin: string | undefined, req: IncomingMessage) =>
    (origin !== undefined && extraOrigins.has(origin)) ||
    (options.allowOrigin ?? defaultAllowOrigin)(origin, req);
  const token = options.token;

  const wss = new WebSocketServer({
    noServer: true,
    clientTracking: false,
    perMessageDeflate: false,
    maxPayload: options.maxIncomingBytes ?? 4 * 1024,
    // Never select the token-bearing subprotocol: the answer would echo the token.
    handleProtocols: (protocols) => (protocols.has(FEED_SUBPROTOCOL) ? FEED_SUBPROTOCOL : false),
  });
  const clients = new Set<Client>();
  const counters = {
    connectionsTotal: 0,
    connectionsRefused: 0,
    slowClientsDropped: 0,
    deadClientsDropped: 0,
    messagesSent: 0,
    changesReceived: 0,
  };
  let closed = false;
  let upgrading = 0;

  // --- sending -----------------------------------------------------------------------------------

  const drop = (client: Client) => {
    clients.delete(client);
    client.ws.terminate();
  };

  const send = (client: Client, message: string) => {
    const { ws } = client;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > maxBuffered) {
      counters.slowClientsDropped++;
      log?.warn({ buffered: ws.bufferedAmount, limit: maxBuffered }, "websocket client too slow; dropped");
      drop(client);
      return;
    }
    ws.send(message, (err) => {
      if (err) log?.debug({ err: err.message }, "websocket send failed");
    });
    counters.messagesSent++;
  };

  const broadcast = (message: string) => {
    for (const client of clients) {
      if (client.ready) {
        send(client, message);
      } else if (client.pending.length < MAX_PENDING) {
        client.pending.push(message);
      } else {
        counters.slowClientsDropped++;
        drop(client);
      }
    }
  };

  // --- position changes --------------------------------------------------------------------------

  let unsubscribeRedis: (() => Promise<void>) | undefined;
  let subscribing: Promise<void> | undefined;
  const redisLive = () => unsubscribeRedis !== undefined && cache?.connected === true;

  const onChange = (change: PositionChange) => {
    counters.changesReceived++;
    if (clients.size === 0) return;
    broadcast(JSON.stringify({ type: "position_change", data: change }));
  };

  const subscribe = (): Promise<void> => {
    if (!cache || closed || unsubscribeRedis) return Promise.resolve();
    subscribing ??= (async () => {
      try {
        const unsubscribe = await cache.subscribePositionChanges(onChange);
        if (closed) await unsubscribe();
        else unsubscribeRedis = unsubscribe;
      } catch (err) {
        // Retried on the next reconnect; the in-process source covers the gap.
        log?.warn({ err: errorMessage(err) }, "position changes: redis subscription failed");
      } finally {
        subscribing = undefined;
      }
    })();
    return subscribing;
  };
  const stopStateWatch = cache?.onStateChange((connected) => {
    if (connected) void subscribe();
  });
  const ready = cache?.connected ? subscribe() : Promise.resolve();

  const stopLocal = deps.onPositionChange?.((change) => {
    if (!redisLive()) onChange(change);
  });

  // --- connections -------------------------------------------------------------------------------

  const sendSnapshot = async (client: Client) => {
    try {
      const positions = await data.getOpenPositions();
      send(client, JSON.stringify({ type: "positions", data: positions }));
      client.ready = true;
      for (const message of client.pending) send(client, message);
      client.pending = [];
    } catch (err) {
      log?.warn({ err: errorMessage(err) }, "websocket snapshot failed");
      send(client, JSON.stringify({ type: "error", error: "open positions unavailable" }));
      clients.delete(client);
      client.ws.close(1011, "positions unavailable");
    }
  };

  const onConnection = (ws: WebSocket) => {
    const client: Client = { ws, ready: false, pending: [], alive: true };
    clients.add(client);
    counters.connectionsTotal++;
    ws.on("pong", () => {
      client.alive = true;
    });
    ws.on("error", (err) => log?.debug({ err: err.message }, "websocket client error"));
    ws.on("close", () => clients.delete(client));
    void sendSnapshot(client);
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on("error", () => {});
    let pathname: string;
    try {
      pathname = new URL(req.url ?? "/", "http://localhost").pathname;
    } catch {
      return refuse(socket, 400);
    }
    if (pathname !== path) return refuse(socket, 404);
    if (closed || clients.size + upgrading >= maxClients) {
      counters.connectionsRefused++;
      if (!closed) log?.warn({ limit: maxClients }, "websocket connection refused: too many clients");
      return refuse(socket, 503);
    }
    if (!allowOrigin(req.headers.origin, req)) {
      counters.connectionsRefused++;
      return refuse(socket, 403);
    }
    if (token !== undefined && !tokenMatches(token, presentedToken(req))) {
      counters.connectionsRefused++;
      return refuse(socket, 401);
    }
    // A handshake ws refuses (bad version or key) never calls back, but its socket closes.
    upgrading++;
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      upgrading--;
    };
    socket.once("close", settle);
    wss.handleUpgrade(req, socket, head, (ws) => {
      settle();
      if (closed) {
        ws.terminate();
        return;
      }
      onConnection(ws);
    });
  };
  server.on("upgrade", onUpgrade);

  // --- timers ------------------------------------------------------------------------------------

  let statusBusy = false;
  const statusTimer =
    statusIntervalMs > 0
      ? setInterval(() => {
          if (clients.size === 0 || statusBusy) return;
          statusBusy = true;
          void (async () => {
            try {
              let engine: Record<string, unknown> = {};
              try {
                engine = deps.status?.() ?? {};
              } catch (err) {
                log?.warn({ err: errorMessage(err) }, "status provider failed");
              }
              const stores = await data.health().catch(() => null);
              broadcast(
                JSON.stringify({
                  type: "status",
                  data: { time: new Date().toISOString(), engine, stores, clients: clients.size },
                }),
              );
            } finally {
              statusBusy = false;
            }
          })();
        }, statusIntervalMs)
      : undefined;
  statusTimer?.unref();

  const heartbeatTimer =
    heartbeatIntervalMs > 0
      ? setInterval(() => {
          for (const client of clients) {
            if (!client.alive) {
              counters.deadClientsDropped++;
              drop(client);
              continue;
            }
            client.alive = false;
            if (client.ws.readyState === WebSocket.OPEN) client.ws.ping();
          }
        }, heartbeatIntervalMs)
      : undefined;
  heartbeatTimer?.unref();

  // --- lifecycle ---------------------------------------------------------------------------------

  let closing: Promise<void> | undefined;
  const close = (timeoutMs = 2_000): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      if (statusTimer) clearInterval(statusTimer);
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      server.off("upgrade", onUpgrade);
      stopStateWatch?.();
      if (typeof stopLocal === "function") stopLocal();
      await subscribing;
      const unsubscribe = unsubscribeRedis;
      unsubscribeRedis = undefined;
      await unsubscribe?.().catch(() => {});

      const open = [...clients].map((c) => c.ws);
      clients.clear();
      await new Promise<void>((resolve) => {
        let remaining = open.length;
        if (remaining === 0) return resolve();
        const timer = setTimeout(() => {
          for (const ws of open) ws.terminate();
          resolve();
        }, timeoutMs);
        for (const ws of open) {
          ws.once("close", () => {
            if (--remaining === 0) {
              clearTimeout(timer);
              resolve();
            }
          });
          ws.close(1001, "server shutting down");
        }
      });
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    })();
    return closing;
  };

  return {
    ready,
    stats: () => ({ clients: clients.size, ...counters, redisSubscribed: redisLive() }),
    close,
  };
}

/** The token an upgrade carries: `Authorization: Bearer …`, else a `velox.bearer.…` subprotocol. */
function presentedToken(req: IncomingMessage): string | undefined {
  const bearer = bearerOf(req.headers.authorization);
  if (bearer !== undefined) return bearer;
  const offered = req.headers["sec-websocket-protocol"];
  if (typeof offered !== "string") return undefined;
  for (const item of offered.split(",")) {
    const protocol = item.trim();
    if (protocol.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) return protocol.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
  }
  return undefined;
}

/** Non-browser clients (no Origin), and browsers on a loopback origin or the same host as the request. */
function defaultAllowOrigin(origin: string | undefined, req: IncomingMessage): boolean {
  if (origin === undefined) return true;
  let host: string;
  try {
    host = new URL(origin).hostname;
  } catch {
    return false;
  }
  if (host === "localhost" || host === "127.0.0.1" || host === "[::1]") return true;
  const requested = req.headers.host;
  if (!requested) return false;
  try {
    return new URL(`http://${requested}`).hostname === host;
  } catch {
    return false;
  }
}

/** Answers a refused upgrade with a bare HTTP response and closes the socket. */
function refuse(socket: Duplex, status: number): void {
  const body = JSON.stringify({ error: STATUS_CODES[status] ?? "refused" });
  if (socket.writable) {
    socket.once("finish", () => socket.destroy());
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\n` +
        "Connection: close\r\n" +
        "Content-Type: application/json\r\n" +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  } else {
    socket.destroy();
  }
}
