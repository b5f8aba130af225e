import { type Config, describeConfig } from "../config.js";
import { createLogger } from "../log.js";
import { openStores } from "./stores.js";

export interface RunOptions {
  durationSeconds?: number | undefined;
  statusIntervalSeconds: number;
}

/**
 * The main job: opens the stores on the configured (or embedded) settings, reports their health
 * on a status line, and shuts down cleanly on SIGINT/SIGTERM or after `durationSeconds`.
 * Returns the process exit code.
 */
export async function runMain(config: Config, options: RunOptions): Promise<number> {
  const logging = await createLogger({ level: config.logLevel, dir: config.logDir });
  const log = logging.for("main");
  log.info({ config: describeConfig(config) }, "starting");

  const { data, series } = openStores(config, logging);

  const statusLine = async () => {
    const health = await data.health();
    const open = (await data.getOpenPositions()).length;
    const redis = !health.redis.configured
      ? "not configured"
      : health.redis.up
        ? `up (${health.redis.latencyMs?.toFixed(1)} ms)`
        : "down";
    const influxStats = series?.stats();
    const influx = influxStats
      ? `${influxStats.up ? "up" : "down"}, spool ${influxStats.spoolPoints}`
      : "not configured";
    log.info(
      { status: { open_positions: open, health, influx: influxStats, data: data.stats() } },
      `status: open positions ${open} | sqlite up | redis ${redis} | influx ${influx}`,
    );
  };

  await statusLine();
  const timer = setInterval(() => void statusLine(), options.statusIntervalSeconds * 1000);

  const reason = await new Promise<string>((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
    if (options.durationSeconds)
      setTimeout(() => resolve("duration reached"), options.durationSeconds * 1000);
  });

  clearInterval(timer);
  log.info({ reason }, "shutting down");
  await data.close();
  log.info("stopped");
  await logging.close();
  return 0;
}
