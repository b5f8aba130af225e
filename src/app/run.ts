import cliProgress from "cli-progress";
import type { Logger } from "pino";
import { startApiServer } from "../api/server.js";
import { type Config, describeConfig, type EnvName } from "../config.js";
import { ConfigError, errorMessage, VeloxError } from "../domain/errors.js";
import { createLogger, type VeloxLogger } from "../log.js";
import { CsvReplay } from "../market/csv-replay.js";
import { DEFAULT_SYMBOLS, simulateBatches, simulatedSector, symbolNames } from "../market/simulator.js";
import { TickValidator } from "../market/tick-validator.js";
import { VeloxMetrics } from "../metrics/exporter.js";
import { startMetricsServer } from "../metrics/server.js";
import { sectorResolver } from "../trading/market-config.js";
import { loadStrategyConfig } from "../trading/strategy-config.js";
import { Engine, type EngineSnapshot } from "./engine.js";

export interface CommonRunOptions {
  /** Strategies file; default config/strategies.yaml. */
  strategiesPath?: string | undefined;
  statusIntervalSeconds: number;
  /** Close open positions at the last price before exiting (default: leave the paper book open). */
  closePositions: boolean;
  runId?: string | undefined;
}

export interface SimulateOptions extends CommonRunOptions {
  durationSeconds?: number | undefined;
  rate: number;
  symbols?: number | undefined;
  seed: number;
  /** Epoch ms of the first simulated tick; default now. */
  startTime?: number | undefined;
}

export interface ReplayOptions extends CommonRunOptions {
  path: string;
  speed: number | "max";
}

/** `velox run`: the seeded simulator drives the engine. Returns the exit code. */
export async function runSimulation(config: Config, options: SimulateOptions): Promise<number> {
  const symbols = symbolNames(options.symbols ?? DEFAULT_SYMBOLS);
  return drive(config, options, symbols, "simulator", async (logging, engine, signal) => {
    const batches = simulateBatches({
      seed: options.seed,
      symbols,
      rate: options.rate,
      startTime: options.startTime ?? Date.now(),
      pacing: "realtime",
      signal,
      logger: logging.for("simulator"),
      ...(options.durationSeconds === undefined ? {} : { durationMs: options.durationSeconds * 1000 }),
    });
    for await (const batch of batches) await engine.processBatch(batch);
  });
}

/** `velox replay <file>`: a CSV file drives the engine, with a progress bar. Returns the exit code. */
export async function runReplay(config: Config, options: ReplayOptions): Promise<number> {
  // A file that cannot be replayed stops the start in one line (exit 2), before anything opens.
  await CsvReplay.check(options.path);
  return drive(config, options, [], "replay", async (logging, engine, signal) => {
    const replay = await CsvReplay.open({
      path: options.path,
      speed: options.speed,
      signal,
      validator: engine.validator,
      logger: logging.for("simulator"),
    });
    const progress = progressBar(replay.totalBytes);
    const timer = setInterval(() => progress.update(replay.progress()), 200);
    try {
      for await (const batch of replay.batches()) await engine.runBatch(batch);
    } finally {
      clearInterval(timer);
      progress.stop(replay.progress());
    }
  });
}

type Source = (logging: VeloxLogger, engine: Engine, signal: AbortSignal) => Promise<void>;

/**
 * Starts the engine, runs the source until it ends or SIGINT/SIGTERM arrives, reports status
 * every few seconds, then shuts down in order: stop the source, close positions if asked, flush
 * the event bus and every store. A second signal exits at once.
 */
async function drive(
  config: Config,
  options: CommonRunOptions,
  symbols: readonly string[],
  /** The `source` tag of the ticks (and the tick log's component). */
  sourceName: "simulator" | "replay",
  source: Source,
): Promise<number> {
  const logging = await createLogger({ level: config.logLevel, dir: config.logDir });
  const log = logging.for("main");
  /** What has been started, closed in reverse order by the one shutdown path below. */
  const started: { name: string; close: () => Promise<void> }[] = [];
  let engine: Engine | undefined;
  let running = false;

  const shutdown = async (code: number): Promise<number> => {
    running = false;
    let exit = code;
    const deadline = new Promise<"deadline">((resolve) => {
      setTimeout(() => resolve("deadline"), SHUTDOWN_DEADLINE_MS).unref();
    });
    for (const part of started.reverse()) {
      try {
        const outcome = await Promise.race([part.close().then(() => "closed" as const), deadline]);
        if (outcome === "deadline") {
          log.error(
            `shutdown deadline (${SHUTDOWN_DEADLINE_MS / 1000} s) passed while closing ${part.name}; exiting with what is flushed`,
          );
          exit = exit || 1;
          break;
        }
      } catch (err) {
        log.error({ err: errorMessage(err) }, `closing ${part.name} failed`);
        exit = exit || 1;
      }
    }
    await logging.close();
    return exit;
  };

  try {
    log.info({ config: describeConfig(config) }, "starting");
    const strategies = loadStrategyConfig(options.strategiesPath);
    const metrics = new VeloxMetrics({ drawdownLimit: config.drawdownLimit });
    const runId = options.runId ?? Math.floor(Date.now() / 1000).toString(36);
    const built = new Engine({
      observeTick: metrics.observeTick,
      observeJournalWrite: metrics.observeJournalWrite,
      config,
      strategies,
      logging,
      runId,
      symbols,
      validator: new TickValidator({ source: sourceName, logger: logging.for("simulator") }),
      observeScan: metrics.observeScan,
      // Simulated symbols have the simulator's sectors where the configuration names none.
      sectorOf: sectorResolver(
        strategies.market.sectors,
        sourceName === "simulator" ? simulatedSector : undefined,
      ),
    });
    engine = built;
    started.push({ name: "the engine and its stores", close: () => built.close() });

    const exporter = await listening(
      () =>
        startMetricsServer({
          metrics,
          port: config.metricsPort,
          host: config.metricsHost,
          ready: () => running,
          logger: logging.for("metrics"),
        }),
      "VELOX_METRICS_PORT",
      config.metricsPort,
    );
    started.push({ name: "the metrics exporter", close: () => exporter.close() });
    const api = await listening(
      () =>
        startApiServer({
          port: config.apiPort,
          host: config.apiHost,
          observeRequest: metrics.observeRequest,
          data: built.stores.data,
          cache: built.stores.cache,
          strategies: () =>
            strategies.strategies.map((s) => ({
              id: s.id,
              type: s.type,
              symbols: s.symbols === "*" ? ["*"] : s.symbols,
            })),
          status: () => ({ ...built.snapshot() }),
          timeframes: strategies.market.timeframes,
          observeSentiment: metrics.observeSentiment,
          onPositionChange: (listener) => built.onPositionChange(listener),
          logger: logging.for("api"),
          security: {
            token: config.apiToken,
            corsOrigins: config.apiCorsOrigins,
            rateLimitPerMinute: config.apiRateLimit,
          },
          services: async () => {
            const health = await built.stores.data.health();
            const bus = built.bus.stats();
            return {
              kafka: bus.backend === "kafka" && bus.up,
              influxdb: built.stores.series?.stats().up ?? false,
              redis: health.redis.up,
              sqlite: health.sqlite.up,
            };
          },
        }),
      "VELOX_API_PORT",
      config.apiPort,
    );
    started.push({ name: "the API", close: () => api.close() });
    metrics.attach(built, () => api.stats().rejected);
    log.info(`API on ${api.url}/api/health, WebSocket updates on ${api.url.replace("http", "ws")}/ws`);
    log.info(`Prometheus metrics on ${exporter.url}/metrics`);
  } catch (err) {
    // Anything that stops the start: one line naming the setting or file, exit 2.
    if (!(err instanceof VeloxError)) throw err;
    log.error(`cannot start: ${err.message}`);
    await shutdown(2);
    // The caller (src/cli.ts) prints it as the one line on stderr, and exits 2.
    throw err;
  }
  const run = engine as Engine;

  const abort = new AbortController();
  let signals = 0;
  const onSignal = (name: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal: name }, "second signal: exiting without flushing");
      process.exit(130);
    }
    log.info({ signal: name }, "stopping: finishing the current tick, then flushing every store");
    abort.abort();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const startedAt = performance.now();
  let previous = { at: startedAt, ticks: 0 };
  const status = setInterval(() => {
    const now = performance.now();
    const snap = run.snapshot();
    const rate = ((snap.ticks - previous.ticks) * 1000) / (now - previous.at);
    previous = { at: now, ticks: snap.ticks };
    void reportStatus(log, run, snap, rate);
  }, options.statusIntervalSeconds * 1000);

  let code = 0;
  try {
    await run.publishState("running");
    running = true;
    run.setFeedRunning(true);
    await source(logging, run, abort.signal);
  } catch (err) {
    code = 1;
    if (err instanceof VeloxError) log.error(`the run stopped: ${err.message}`);
    else log.error({ err }, "the run failed");
  } finally {
    run.setFeedRunning(false);
    clearInterval(status);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  try {
    if (options.closePositions) await run.closeAll("shutdown");
    await run.publishState("stopped");
  } catch (err) {
    code = 1;
    log.error({ err: errorMessage(err) }, "publishing the final state failed");
  }
  const snap = run.snapshot();
  const seconds = (performance.now() - startedAt) / 1000;
  // The engine closes last (started first): the summary follows, with the final store counters.
  started[0] = {
    name: started[0]?.name ?? "the engine",
    close: async () => {
      await run.close();
      log.info({ summary: summaryOf(run, snap, seconds) }, summaryLine(snap, seconds));
      log.info("stopped; every store flushed");
    },
  };
  return shutdown(code);
}

/** Longest a shutdown may take before the process exits with what is flushed. */
export const SHUTDOWN_DEADLINE_MS = 15_000;

/** Starts a listener; a port that cannot be bound is a ConfigError naming its variable. */
async function listening<T>(start: () => Promise<T>, variable: EnvName, port: number): Promise<T> {
  try {
    return await start();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === "EADDRINUSE" ? "is in use" : code === "EACCES" ? "needs privileges" : errorMessage(err);
    throw new ConfigError(variable, `port ${port} ${reason}`);
  }
}

async function reportStatus(log: Logger, engine: Engine, snap: EngineSnapshot, rate: number): Promise<void> {
  const health = await engine.stores.data.health();
  const influx = engine.stores.series?.stats();
  const bus = engine.bus.stats();
  const redis = !health.redis.configured ? "off" : health.redis.up ? "up" : "DOWN";
  const influxText = !influx
    ? "off"
    : `${influx.up ? "up" : "DOWN"}${influx.spoolPoints ? ` spool ${influx.spoolPoints}` : ""}`;
  const busText = bus.backend === "none" ? "off" : `${bus.backend} ${bus.up ? "up" : "DOWN"}`;
  const history = engine.stores.postgres?.history.stats();
  const historyText = !history
    ? ""
    : ` | postgres ${history.up ? "up" : "DOWN"}${history.spoolRows ? ` spool ${history.spoolRows}` : ""}`;
  log.info(
    { status: { ...snap, ticksPerSecond: rate, health, influx, history, events: bus } },
    `${rate.toFixed(0)} ticks/s | rejected ${snap.rejected} | open ${snap.openPositions} | ` +
      `realized ${money(snap.realizedPnl)} | unrealized ${money(snap.unrealizedPnl)} | ` +
      `redis ${redis} | influx ${influxText} | events ${busText}${historyText}`,
  );
  await engine.publishState("running");
}

function summaryOf(engine: Engine, snap: EngineSnapshot, seconds: number): Record<string, unknown> {
  return {
    seconds,
    ticks: snap.ticks,
    rejected: snap.rejectedByReason,
    trades_closed: snap.pipeline.tradesClosed,
    fills: snap.pipeline.fills,
    open_positions: snap.openPositions,
    realized_pnl: snap.realizedPnl,
    realized_pnl_by_strategy: snap.pipeline.realizedPnlByStrategy,
    influx: engine.stores.series?.stats(),
    history: engine.stores.postgres?.history.stats(),
    archive: engine.stores.postgres?.archiver.stats(),
    events: engine.bus.stats(),
    data: engine.stores.data.stats(),
  };
}

function summaryLine(snap: EngineSnapshot, seconds: number): string {
  return (
    `summary: ${snap.ticks} ticks in ${seconds.toFixed(1)} s (${(snap.ticks / seconds).toFixed(0)}/s), ` +
    `${snap.rejected} rejected, ${snap.pipeline.tradesClosed} trades closed, ${snap.openPositions} open, ` +
    `realized ${money(snap.realizedPnl)}`
  );
}

function money(value: number): string {
  return `${value >= 0 ? "+" : ""}${value.toFixed(2)}`;
}

/** A progress bar on a terminal; on anything else, nothing (the status lines say enough). */
function progressBar(totalBytes: number): {
  update(p: { bytesRead: number; ticks: number; rejected: number }): void;
  stop(p: { bytesRead: number; ticks: number; rejected: number }): void;
} {
  if (!process.stderr.isTTY) return { update: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    {
      format: "replay [{bar}] {percentage}% | {ticks} ticks | {rejected} rejected | eta {eta_formatted}",
      stream: process.stderr,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(totalBytes, 0, { ticks: 0, rejected: 0 });
  const update = (p: { bytesRead: number; ticks: number; rejected: number }) =>
    bar.update(Math.min(p.bytesRead, totalBytes), { ticks: p.ticks, rejected: p.rejected });
  return {
    update,
    stop: (p) => {
      update(p);
      bar.stop();
    },
  };
}
