import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SCRAPE_JOB } from "../../src/schema/metrics.js";
import { Prometheus, type PrometheusOptions } from "./prometheus.js";
import { freePort, RedisServer } from "./redis-server.js";
import { startVelox, type VeloxRun } from "./velox-process.js";
import { VictoriaMetrics } from "./victoria-metrics.js";

/**
 * A `velox run` with every store on — a real redis-server (cache and event stream) and a real
 * VictoriaMetrics (the InfluxDB write path) — scraped by a real Prometheus under the job name the
 * rules and dashboards select on. Resolves once Prometheus has scraped it once.
 */
export interface ScrapedRun {
  redis: RedisServer;
  vm: VictoriaMetrics;
  prometheus: Prometheus;
  velox: VeloxRun;
  metricsUrl: string;
  apiUrl: string;
  /** The run's SQLite journal. */
  journalPath: string;
  /** Stops the run (if still running) and every server. */
  stop(): Promise<void>;
}

export async function startScrapedRun(
  args: string[],
  prometheusOptions: Omit<PrometheusOptions, "scrapeJobs"> = {},
): Promise<ScrapedRun> {
  const [redis, vm] = await Promise.all([RedisServer.start(), VictoriaMetrics.start()]);
  const root = mkdtempSync(join(tmpdir(), "velox-scraped-"));
  const [metricsPort, apiPort] = await Promise.all([freePort(), freePort()]);
  const velox = await startVelox(args, {
    VELOX_DATA_DIR: join(root, "data"),
    VELOX_LOG_DIR: join(root, "logs"),
    VELOX_REDIS_URL: redis.url,
    VELOX_INFLUX_URL: vm.url,
    VELOX_INFLUX_TOKEN: "not checked by VictoriaMetrics",
    VELOX_METRICS_PORT: String(metricsPort),
    VELOX_API_PORT: String(apiPort),
  });
  const prometheus = await Prometheus.start({
    ...prometheusOptions,
    scrapeJobs: [{ job: SCRAPE_JOB, targets: [`127.0.0.1:${metricsPort}`] }],
  });
  await prometheus.waitForScrapes(30_000);
  return {
    redis,
    vm,
    prometheus,
    velox,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    apiUrl: `http://127.0.0.1:${apiPort}`,
    journalPath: join(root, "data", "velox.db"),
    async stop() {
      if (velox.child.exitCode === null) {
        velox.child.kill("SIGTERM");
        await velox.exited;
      }
      await Promise.all([prometheus.stop(), redis.stop(), vm.stop()]);
    },
  };
}
