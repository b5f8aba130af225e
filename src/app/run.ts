import { type Config, describeConfig } from "../config.js";
import { createLogger } from "../log.js";
import { RedisCache } from "../storage/redis-cache.js";
import { TradeJournal } from "../storage/trade-journal.js";

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

  const journal = TradeJournal.open(config.sqlitePath, { logger: logging.for("database") });
  let cache: RedisCache | undefined;
  if (config.redisUrl) {
    try {
      cache = await RedisCache.connect(config.redisUrl, { logger: logging.for("cache") });
    } catch (err) {
      // Redis is a cache: the engine runs without it rather than refusing to start.
      log.warn({ err: (err as Error).message }, "redis unavailable at start; running without the hot cache");
    }
  }

  const statusLine = async () => {
    const redis = cache ? await cache.health() : undefined;
    const status = {
      open_positions: journal.openTrades().length,
      sqlite: "up",
      redis: redis ? (redis.up ? "up" : "down") : "not configured",
      redis_latency_ms: redis?.latencyMs ?? undefined,
    };
    const redisText = redis?.up ? `up (${redis.latencyMs?.toFixed(1)} ms)` : status.redis;
    log.info({ status }, `status: open positions ${status.open_positions} | sqlite up | redis ${redisText}`);
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
  await cache?.close();
  journal.close();
  log.info("stopped");
  await logging.close();
  return 0;
}
