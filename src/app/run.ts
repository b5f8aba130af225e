import cliProgress from "cli-progress";
import type { Logger } from "pino";
import { type ApiServer, startApiServer } from "../api/server.js";
import { type Config, describeConfig } from "../config.js";
import { createLogger, type VeloxLogger } from "../log.js";
import { CsvReplay } from "../market/csv-replay.js";
import { DEFAULT_SYMBOLS, simulateTicks, symbolNames } from "../market/simulator.js";
import { TickValidator } from "../market/tick-validator.js";
import { VeloxMetrics } from "../metrics/exporter.js";
import { type MetricsServer, startMetricsServer } from "../metrics/server.js";
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
    const ticks = simulateTicks({
      seed: options.seed,
      symbols,
      rate: options.rate,
      startTime: options.startTime ?? Date.now(),
      pacing: "realtime",
      signal,
      logger: logging.for("simulator"),
      ...(options.durationSeconds === undefined ? {} : { durationMs: options.durationSeconds * 1000 }),
    });
    for await (const tick of ticks) await engine.process(tick);
  });
}

/** `velox replay <file>`: a CSV file drives the engine, with a progress bar. Returns the exit code. */
export async function runReplay(config: Config, options: ReplayOptions): Promise<number> {
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
      for await (const tick of replay) await engine.run(tick);
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
  log.info({ config: describeConfig(config) }, "starting");
  const strategies = loadStrategyConfig(options.strategiesPath);
  const runId = options.runId ?? Math.floor(Date.now() / 1000).toString(36);
  const metrics = new VeloxMetrics({ drawdownLimit: config.drawdownLimit });
  const engine = new Engine({
    observeTick: metrics.observeTick,
    observeJournalWrite: metrics.observeJournalWrite,
    config,
    strategies,
    logging,
    runId,
    symbols,
    validator: new TickValidator({ source: sourceName, logger: logging.for("simulator") }),
  });

  let api: ApiServer;
  let exporter: MetricsServer;
  let running = false;
  try {
    exporter = await startMetricsServer({
      metrics,
      port: config.metricsPort,
      host: config.metricsHost,
      ready: () => running,
      logger: logging.for("metrics"),
    });
  } catch (err) {
    log.error(
      { err: (err as Error).message },
      `cannot serve metrics on port ${config.metricsPort} (VELOX_METRICS_PORT)`,
    );
    await engine.close();
    await logging.close();
    return 2;
  }
  try {
    api = await startApiServer({
      port: config.apiPort,
      host: config.apiHost,
      observeRequest: metrics.observeRequest,
      data: engine.stores.data,
      cache: engine.stores.cache,
      strategies: () =>
        strategies.strategies.map((s) => ({
          id: s.id,
          type: s.type,
          symbols: s.symbols === "*" ? ["*"] : s.symbols,
        })),
      status: () => ({ ...engine.snapshot() }),
      onPositionChange: (listener) => engine.onPositionChange(listener),
      logger: logging.for("api"),
      security: {
        token: config.apiToken,
        corsOrigins: config.apiCorsOrigins,
        rateLimitPerMinute: config.apiRateLimit,
      },
      services: async () => {
        const health = await engine.stores.data.health();
        const bus = engine.bus.stats();
        return {
          kafka: bus.backend === "kafka" && bus.up,
          influxdb: engine.stores.series?.stats().up ?? false,
          redis: health.redis.up,
          sqlite: health.sqlite.up,
        };
      },
    });
  } catch (err) {
    log.error(
      { err: (err as Error).message },
      `cannot serve the API on port ${config.apiPort} (VELOX_API_PORT)`,
    );
    await engine.close();
    await logging.close();
    return 2;
  }
  metrics.attach(engine, () => api.stats().rejected);
  log.info(`API on ${api.url}/api/health, WebSocket updates on ${api.url.replace("http", "ws")}/ws`);
  log.info(`Prometheus metrics on ${exporter.url}/metrics`);

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

  const started = performance.now();
  let previous = { at: started, ticks: 0 };
  const status = setInterval(() => {
    const now = performance.now();
    const snap = engine.snapshot();
    const rate = ((snap.ticks - previous.ticks) * 1000) / (now - previous.at);
    previous = { at: now, ticks: snap.ticks };
    void reportStatus(log, engine, snap, rate);
  }, options.statusIntervalSeconds * 1000);

  let code = 0;
  try {
    await engine.publishState("running");
    running = true;
    engine.setFeedRunning(true);
    await source(logging, engine, abort.signal);
  } catch (err) {
    code = 1;
    log.error({ err }, "the run failed");
  } finally {
    engine.setFeedRunning(false);
    clearInterval(status);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }

  try {
    if (options.closePositions) await engine.closeAll("shutdown");
    await engine.publishState("stopped");
    const snap = engine.snapshot();
    const seconds = (performance.now() - started) / 1000;
    running = false;
    await api.close();
    await exporter.close();
    await engine.close();
    // After the stores are closed, so the store counters are final (the last InfluxDB batch included).
    log.info({ summary: summaryOf(engine, snap, seconds) }, summaryLine(snap, seconds));
    log.info("stopped; every store flushed");
  } catch (err) {
    code = 1;
    log.error({ err }, "shutdown failed");
  }
  await logging.close();
  return code;
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
  log.info(
    { status: { ...snap, ticksPerSecond: rate, health, influx, events: bus } },
    `${rate.toFixed(0)} ticks/s | rejected ${snap.rejected} | open ${snap.openPositions} | ` +
      `realized ${money(snap.realizedPnl)} | unrealized ${money(snap.unrealizedPnl)} | ` +
      `redis ${redis} | influx ${influxText} | events ${busText}`,
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
