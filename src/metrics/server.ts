import type { Server } from "node:http";
import express from "express";
import type { Logger } from "pino";
import type { VeloxMetrics } from "./exporter.js";

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** True when the scraper prefers OpenMetrics (Prometheus sends it first in `Accept`). */
export function wantsOpenMetrics(accept: string | undefined): boolean {
  return /application\/openmetrics-text/i.test(accept ?? "");
}

/**
 * The exporter's HTTP server: `/metrics` (Prometheus text, or OpenMetrics when asked for),
 * `/-/healthy` (the process answers) and `/-/ready` (the engine is running).
 */
export async function startMetricsServer(options: {
  metrics: VeloxMetrics;
  port: number;
  host?: string;
  ready: () => boolean;
  logger?: Logger;
}): Promise<MetricsServer> {
  const { metrics, port, host = "127.0.0.1", ready, logger } = options;
  const app = express();
  app.disable("x-powered-by");
  app.get("/metrics", async (req, res) => {
    try {
      const { contentType, body } = await metrics.scrape(wantsOpenMetrics(req.get("accept")));
      res.type(contentType).send(body);
    } catch (err) {
      logger?.error({ err: (err as Error).message }, "scrape failed");
      res.status(500).type("text/plain").send("scrape failed\n");
    }
  });
  app.get("/-/healthy", (_req, res) => {
    res.type("text/plain").send("VELOX is healthy.\n");
  });
  app.get("/-/ready", (_req, res) => {
    if (ready()) res.type("text/plain").send("VELOX is ready.\n");
    else res.status(503).type("text/plain").send("VELOX is not ready.\n");
  });
  app.use((_req, res) => {
    res.status(404).type("text/plain").send("not found: try /metrics\n");
  });

  const server: Server = await new Promise((resolve, reject) => {
    // Express 5 calls the listen callback with the error too: only a clean listen resolves.
    const s = app.listen(port, host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once("error", reject);
  });
  const address = server.address();
  const boundPort = typeof address === "object" && address ? address.port : port;
  return {
    url: `http://${host}:${boundPort}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
