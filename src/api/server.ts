import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { ApiRejectCounts } from "../schema/metrics.js";
import { type ApiDeps, createApiApp } from "./app.js";
import {
  attachPositionFeed,
  type PositionChangeSource,
  type PositionFeedOptions,
  type PositionFeedStats,
} from "./websocket.js";

export interface ApiServerOptions extends ApiDeps {
  /** 0 picks a free port. */
  port: number;
  /** Default 127.0.0.1: exposing the API beyond this host is a deliberate choice. */
  host?: string | undefined;
  /** In-process position changes for the WebSocket feed (used when Redis is absent or down). */
  onPositionChange?: PositionChangeSource | undefined;
  websocket?: PositionFeedOptions | undefined;
  /** How long `close()` lets requests and WebSocket clients finish before cutting them. Default 5000. */
  closeTimeoutMs?: number | undefined;
}

export interface ApiServerStats {
  rejected: ApiRejectCounts;
  websocket: PositionFeedStats;
}

export interface ApiServer {
  /** `http://host:port`, without a trailing slash. */
  url: string;
  port: number;
  stats(): ApiServerStats;
  /** Stops listening and closes every connection within `closeTimeoutMs`; safe to call twice. */
  close(): Promise<void>;
}

/** Starts the HTTP API with its WebSocket feed at `/ws`; resolves once it is listening. */
export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const { port, host = "127.0.0.1", websocket, closeTimeoutMs = 5_000, logger: log } = options;
  const app = createApiApp(options);
  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, app);
  server.on("error", (err) => log?.error({ err: err.message }, "api server error"));
  const feed = attachPositionFeed(server, options, {
    ...websocket,
    token: options.security?.token,
    extraOrigins: options.security?.corsOrigins,
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => {
        server.off("error", reject);
        resolve();
      });
    });
  } catch (err) {
    await feed.close(0);
    throw err;
  }
  await feed.ready;

  const address = server.address() as AddressInfo;
  const shownHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${shownHost}:${address.port}`;
  log?.info({ url }, "api listening");

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      const deadline = Date.now() + closeTimeoutMs;
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await feed.close(Math.max(0, Math.floor(closeTimeoutMs / 2)));
      const cut = setTimeout(() => server.closeAllConnections(), Math.max(0, deadline - Date.now()));
      await stopped;
      clearTimeout(cut);
      log?.info("api stopped");
    })();
    return closing;
  };

  return {
    url,
    port: address.port,
    stats: () => ({ rejected: app.rejected(), websocket: feed.stats() }),
    close,
  };
}
