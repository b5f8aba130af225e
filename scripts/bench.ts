/**
 * `npm run bench`: the tick path against the machine's own ceilings, measured in one run and
 * reported as ratios, so figures compare across machines. It starts its own redis-server and
 * VictoriaMetrics (the InfluxDB write path) on free ports and measures, in order:
 *
 * - embedded: the whole pipeline (indicators, strategies, trailing stops, journal, metrics) on
 *   the journal alone, 3 symbols; next to it the design's floor: the indicators alone and
 *   the pipeline over a store that keeps nothing;
 * - ceilings: pre-built line protocol through the InfluxDB client to VictoriaMetrics (points/s),
 *   and `redis-benchmark -P 16 -t set` (SETs/s), right before the run they are compared with;
 *   that run starts once VictoriaMetrics has merged what the ceiling wrote (it is idle again);
 * - all stores: the same with Redis (cache and event stream) and VictoriaMetrics on, 500 symbols:
 *   ticks/s, InfluxDB points/s including the final flush, tick → visible in Redis (p99, polled by a
 *   probe in a process of its own: scripts/redis-visibility-probe.ts), journal
 *   group-commit latency (p99), peak RSS;
 * - replay: `velox replay --speed max` of a CSV (300,000 ticks over 500 symbols) with every store
 *   on, as a user runs it: every tick must reach the InfluxDB path, points/s against a ceiling
 *   measured right before it;
 * - the PostgreSQL history store: price_data rows through the store against a raw COPY of the
 *   same rows into the same kind of table;
 * - the seed design: every tick awaited in every store, on a smaller run, for the speed-up;
 * - scrape time of /metrics;
 * - HTTP under autocannon (its own process): `/api/positions` and `/metrics` next to a bare
 *   Express hello-world, requests/s and p99.
 *
 * The embedded and all-stores pipelines each run in a child process of their own, so peak RSS and
 * CPU seconds are that run's alone (not the ceiling's million pre-built lines, not the other run's
 * heap). It prints a table and writes bench/results.json. `--quick` runs small sizes (the test
 * command runs it so the bench never rots); its timings mean nothing.
 *
 *   npm run bench                # full: 1,000,000 ticks over 500 symbols
 *   npm run bench -- --quick
 */
import { type ChildProcess, execFile, execFileSync, fork, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline as pipelineStreams } from "node:stream/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { InfluxDB } from "@influxdata/influxdb-client";
import { Command, Option } from "commander";
import express from "express";
import { Redis } from "ioredis";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import { startApiServer } from "../src/api/server.js";
import { Engine } from "../src/app/engine.js";
import { NODE_FLAGS } from "../src/app/node-flags.js";
import { loadConfig } from "../src/config.js";
import type { Tick } from "../src/domain/tick.js";
import { utcDay } from "../src/domain/time.js";
import { type Trade, tradeRow } from "../src/domain/trade.js";
import { createLogger } from "../src/log.js";
import { MAX_BATCH, Pacer } from "../src/market/pacer.js";
import { DEFAULT_SYMBOLS, generateTicks, symbolNames } from "../src/market/simulator.js";
import { TickValidator } from "../src/market/tick-validator.js";
import { VeloxMetrics } from "../src/metrics/exporter.js";
import { startMetricsServer } from "../src/metrics/server.js";
import type { JournalOperation } from "../src/schema/metrics.js";
import { HISTORY_COLUMNS } from "../src/schema/postgres.js";
import { keys } from "../src/schema/redis-keys.js";
import { PostgresHistory, priceRow } from "../src/storage/postgres-history.js";
import { migratePostgres } from "../src/storage/postgres-migrate.js";
import { DailyPartitions } from "../src/storage/postgres-partitions.js";
import { DEFAULT_INDICATOR_CONFIG, IndicatorBook } from "../src/trading/indicators.js";
import { pipelineFromConfig } from "../src/trading/pipeline.js";
import type { ClosePositionInput, OpenPositionInput, PipelineStore } from "../src/trading/stores.js";
import { loadStrategyConfig } from "../src/trading/strategy-config.js";
import { createTestDatabase } from "../test/helpers/postgres.js";
import { freePort, RedisServer } from "../test/helpers/redis-server.js";
import { logRecords, runSummary } from "../test/helpers/velox-process.js";
import { VictoriaMetrics } from "../test/helpers/victoria-metrics.js";
import { type BenchResults, benchChartSvg, chartPathFor, verdictLines } from "./bench-targets.js";
import { writeTicksCsv } from "./generate-sample-csv.js";
import { influxCeiling } from "./influx-ceiling.js";

const options = new Command()
  .option("--quick", "small sizes, for the test command (timings are not meaningful)", false)
  .option("--ticks <n>", "ticks of the all-stores run (default 1,000,000; quick 20,000)", Number)
  .option("--symbols <n>", "symbols of the all-stores run", Number, 500)
  .option("--out <file>", "results file", "bench/results.json")
  // Internal: one pipeline phase in a process of its own (the bench starts itself with these).
  .addOption(new Option("--phase <name>").choices(["embedded", "all-stores"]).hideHelp())
  .addOption(new Option("--phase-out <file>").hideHelp())
  .addOption(new Option("--redis-url <url>").hideHelp())
  .addOption(new Option("--influx-url <url>").hideHelp())
  // The PIDs of VictoriaMetrics and redis-server, whose CPU the all-stores phase reports.
  .addOption(new Option("--store-pids <vm,redis>").hideHelp())
  .parse()
  .opts<{
    quick: boolean;
    ticks?: number;
    symbols: number;
    out: string;
    phase?: "embedded" | "all-stores";
    phaseOut?: string;
    redisUrl?: string;
    influxUrl?: string;
    storePids?: string;
  }>();

const quick = options.quick;
const execFileAsync = promisify(execFile);
const SIZES = {
  ceilingPoints: quick ? 20_000 : 1_000_000,
  redisSets: quick ? 20_000 : 500_000,
  embeddedTicks: quick ? 5_000 : 200_000,
  allStoresTicks: options.ticks ?? (quick ? 20_000 : 1_000_000),
  seedTicks: quick ? 500 : 5_000,
  httpSeconds: quick ? 1 : 5,
  replayTicks: quick ? 5_000 : 300_000,
  replaySymbols: quick ? 50 : 500,
  historyRows: quick ? 20_000 : 500_000,
};

const dir = mkdtempSync(join(tmpdir(), "velox-bench-"));
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
};
const round = (n: number, digits = 0) => Number(n.toFixed(digits));

/**
 * The commit measured (with "-dirty" when tracked files outside bench/ have changes: the results
 * of an earlier run are not the code), or undefined outside a git checkout.
 */
function codeVersion(): string | undefined {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], {
      encoding: "utf8",
      stdio: "pipe",
    }).trim();
    const changes = execFileSync(
      "git",
      ["status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench"],
      {
        encoding: "utf8",
        stdio: "pipe",
      },
    );
    return changes.trim() === "" ? head : `${head}-dirty`;
  } catch {
    return undefined;
  }
}

/**
 * Waits until process `pid` uses less than 5 % of a core over half a second (at most 30 s), and
 * returns the seconds waited. VictoriaMetrics merges what a ceiling wrote for seconds after it
 * answered; a run started meanwhile would share the two cores with that leftover work, which is
 * not VELOX's. Without /proc (not Linux) it does not wait.
 */
async function settled(pid: number | undefined): Promise<number> {
  if (pid === undefined || cpuSecondsOf(pid) === undefined) return 0;
  const started = performance.now();
  let last = cpuSecondsOf(pid) ?? 0;
  while (performance.now() - started < 30_000) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = cpuSecondsOf(pid) ?? 0;
    const cores = (now - last) / 0.5;
    last = now;
    if (cores < 0.05) break;
  }
  return (performance.now() - started) / 1000;
}

let clockTicks: number | undefined;

/** CPU seconds process `pid` has used (user and system), or undefined without /proc (not Linux). */
function cpuSecondsOf(pid: number): number | undefined {
  const statFile = `/proc/${pid}/stat`;
  if (!existsSync(statFile)) return undefined;
  clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" })) || 100;
  // utime and stime, fields 14 and 15 of /proc/PID/stat (after the command name in parentheses).
  const fields = readFileSync(statFile, "utf8").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

function redisCeiling(port: number): number {
  const out = execFileSync(
    "redis-benchmark",
    ["-p", String(port), "-P", "16", "-t", "set", "-n", String(SIZES.redisSets), "-q", "--csv"],
    { encoding: "utf8" },
  );
  // "SET","690000.00",... (the first number after the test name is requests per second)
  const m = /"SET","([\d.]+)"/.exec(out);
  if (!m) throw new Error(`unexpected redis-benchmark output: ${out}`);
  return Number(m[1]);
}

interface PipelineRun {
  ticksPerSecond: number;
  /** CPU seconds of this process (all its threads) during the run. */
  cpuSeconds: number;
  engine: Engine;
  metrics: VeloxMetrics;
  commitLatencies: number[];
  rssPeakMb: number;
  seconds: number;
}

/** Runs `count` ticks drawn from `ticks` (a generator: the ticks are never all in memory at once). */
async function pipeline(
  ticks: Iterable<Tick>,
  count: number,
  symbols: readonly string[],
  env: Record<string, string>,
  onBatch?: (tick: Tick) => void,
) {
  const config = loadConfig({
    VELOX_DATA_DIR: join(dir, `data-${Math.random().toString(36).slice(2)}`),
    ...env,
  });
  const logging = await createLogger({ level: "warn", console: false, dir: join(dir, "logs") });
  const metrics = new VeloxMetrics({ drawdownLimit: config.drawdownLimit });
  const commitLatencies: number[] = [];
  const engine = new Engine({
    config,
    strategies: loadStrategyConfig(),
    logging,
    runId: "bench",
    symbols,
    validator: new TickValidator(),
    observeTick: metrics.observeTick,
    observeJournalWrite: (operation: JournalOperation, seconds: number, failed: boolean) => {
      if (operation === "commit_group") commitLatencies.push(seconds * 1000);
      metrics.observeJournalWrite(operation, seconds, failed);
    },
  });
  metrics.attach(engine);
  let rssPeak = process.memoryUsage().rss;
  let done = 0;
  let lastReport = performance.now();
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    // Progress every 5 s on long runs, with what could be piling up.
    if (performance.now() - lastReport < 5_000) return;
    lastReport = performance.now();
    const influx = engine.stores.series?.stats();
    const bus = engine.bus.stats();
    process.stderr.write(
      `  ${done}/${count} ticks, rss ${round(process.memoryUsage().rss / 2 ** 20)} MB, heap ${round(process.memoryUsage().heapUsed / 2 ** 20)} MB` +
        (influx ? `, influx buffered ${influx.bufferedPoints} spooled ${influx.spoolPoints}` : "") +
        `, events buffered ${bus.buffered}\n`,
    );
  }, 50);
  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  // As the sources hand ticks over: batches of MAX_BATCH, the event loop a turn every TURN_MS
  // (the sources' own Pacer, with nothing to wait for).
  let batch: Tick[] = [];
  const pacer = new Pacer({ slackMs: 0 });
  const runBatch = async () => {
    await engine.processBatch(batch);
    done += batch.length;
    const last = batch[batch.length - 1];
    if (last) onBatch?.(last);
    batch = [];
    if (pacer.mustPause(0)) await pacer.pause(0);
  };
  for (const tick of ticks) {
    batch.push(tick);
    if (batch.length >= MAX_BATCH) await runBatch();
  }
  if (batch.length > 0) await runBatch();
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStarted);
  clearInterval(sampler);
  return {
    ticksPerSecond: done / seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    engine,
    metrics,
    commitLatencies,
    rssPeakMb: rssPeak / 2 ** 20,
    seconds,
    close: async () => {
      await engine.close();
      await logging.close();
    },
  } satisfies PipelineRun & { close(): Promise<void> };
}

/** The seed's design: every tick written to every store and awaited before the next. */
async function seedDesign(ticks: readonly Tick[], redisUrl: string, influxUrl: string): Promise<number> {
  const redis = new Redis(redisUrl);
  const write = new InfluxDB({ url: influxUrl, token: "bench" }).getWriteApi("velox", "trading", "ms", {
    flushInterval: 0,
  });
  const started = performance.now();
  for (const tick of ticks) {
    await redis.hset(keys.stockPrice(tick.symbol), { close: tick.close, timestamp: tick.timestamp });
    write.writeRecord(
      `ticks,symbol=${tick.symbol},source=seed close=${tick.close} ${Math.round(tick.timestamp)}`,
    );
    await write.flush();
  }
  const seconds = (performance.now() - started) / 1000;
  await write.close();
  redis.disconnect();
  return ticks.length / seconds;
}

interface HttpFigures {
  requests_per_second: number;
  p99_ms: number;
  non_2xx: number;
}

/**
 * autocannon (its own process, so load and server do not share a thread) against one URL. Run
 * asynchronously: the servers it loads live in this process's event loop.
 */
async function autocannon(url: string): Promise<HttpFigures> {
  const { stdout: out } = await execFileAsync(
    join("node_modules", ".bin", "autocannon"),
    ["--json", "--duration", String(SIZES.httpSeconds), "--connections", "10", url],
    { encoding: "utf8", maxBuffer: 16 * 2 ** 20 },
  );
  const result = JSON.parse(out) as {
    requests: { total: number };
    duration: number;
    latency: { p99: number };
    non2xx: number;
    errors: number;
  };
  return {
    requests_per_second: round(result.requests.total / result.duration),
    p99_ms: round(result.latency.p99, 1),
    non_2xx: result.non2xx + result.errors,
  };
}

/**
 * `/api/positions` and `/metrics` of the embedded run (its journal, its metrics), next to a bare
 * Express hello-world on the same loopback: what the API's own layers cost. No token and no rate
 * limit (a limit would cap the figure, not measure it).
 */
async function httpBench(engine: Engine, metrics: VeloxMetrics) {
  const api = await startApiServer({ port: 0, data: engine.stores.data, strategies: () => [] });
  const exporter = await startMetricsServer({ metrics, port: 0, ready: () => true });
  const hello = express();
  hello.get("/", (_req, res) => {
    res.send("hello world");
  });
  const helloServer = await new Promise<Server>((resolve) => {
    const server = hello.listen(0, "127.0.0.1", () => resolve(server));
  });
  try {
    const helloUrl = `http://127.0.0.1:${(helloServer.address() as AddressInfo).port}/`;
    return {
      open_positions: (await engine.stores.data.getOpenPositions()).length,
      hello_world: await autocannon(helloUrl),
      api_positions: await autocannon(`${api.url}/api/positions`),
      metrics: await autocannon(`${exporter.url}/metrics`),
    };
  } finally {
    await new Promise((resolve) => helloServer.close(resolve));
    await exporter.close();
    await api.close();
  }
}

async function scrapeTimes(metrics: VeloxMetrics): Promise<{ meanMs: number; series: number }> {
  const times: number[] = [];
  let body = "";
  for (let i = 0; i < (quick ? 5 : 100); i++) {
    const started = performance.now();
    body = (await metrics.scrape(false)).body;
    times.push(performance.now() - started);
  }
  return {
    meanMs: times.reduce((a, b) => a + b, 0) / times.length,
    series: body.split("\n").filter((line) => line && !line.startsWith("#")).length,
  };
}

/**
 * What the embedded figure can reach at best on this machine: the indicators alone, and the
 * whole pipeline (indicators, bars, strategies, stops) over a store that keeps nothing, on the
 * same ticks, in memory. Each runs three times and the best pass counts: a floor is what the
 * machine allows, not what one pass got between garbage collections.
 */
function designFloor(ticks: readonly Tick[]) {
  const perSecond = (run: () => void) => {
    const started = performance.now();
    run();
    return ticks.length / ((performance.now() - started) / 1000);
  };
  let indicators = 0;
  let pipelineOnly = 0;
  for (let pass = 0; pass < 3; pass++) {
    const book = new IndicatorBook(DEFAULT_INDICATOR_CONFIG);
    const indicatorPass = perSecond(() => {
      for (const tick of ticks) book.update(tick);
    });
    const nothing = new DiscardingStore();
    const trading = pipelineFromConfig(loadStrategyConfig(), nothing, { runId: `floor${pass}` });
    const pipelinePass = perSecond(() => {
      for (const tick of ticks) trading.onValidTick(tick);
    });
    indicators = Math.max(indicators, indicatorPass);
    pipelineOnly = Math.max(pipelineOnly, pipelinePass);
  }
  return { indicators_ticks_per_second: round(indicators), pipeline_ticks_per_second: round(pipelineOnly) };
}

/** Keeps nothing: the pipeline's store for {@link designFloor}, returning the rows a journal would. */
class DiscardingStore implements PipelineStore {
  openPosition(input: OpenPositionInput): Trade {
    return tradeRow(input.trade, undefined, 0, 0);
  }
  closePosition(tradeId: string, input: ClosePositionInput): Trade {
    const { exit } = input;
    const entry = {
      trade_id: tradeId,
      strategy_id: "floor",
      symbol: "FLOOR",
      action: "BUY" as const,
      side: "long" as const,
      entry_time: exit.exit_time,
      entry_price: exit.exit_price,
      quantity: 1,
    };
    return tradeRow(
      entry,
      {
        exit_time: exit.exit_time,
        exit_price: exit.exit_price,
        pnl: 0,
        pnl_pct: 0,
        fees: 0,
        max_price: exit.exit_price,
        min_price: exit.exit_price,
        exit_reason: exit.exit_reason,
        duration_seconds: 0,
      },
      0,
      0,
    );
  }
  updatePositionSnapshot(): void {}
  updateTrailingStop(): void {}
  storeValidTick(): void {}
  storeIndicators(): void {}
  storeBarIndicators(): void {}
}

/** Ticks per second (simulated time) of the embedded run over the simulator's default symbols. */
const EMBEDDED_RATE = 2000;

/** The embedded pipeline, its scrape time and the HTTP figures: the `embedded` phase. */
async function embeddedPhase() {
  const embedded = await pipeline(
    generateTicks({ seed: 7, rate: EMBEDDED_RATE, ticks: SIZES.embeddedTicks }),
    SIZES.embeddedTicks,
    symbolNames(),
    {},
  );
  const scrape = await scrapeTimes(embedded.metrics);
  process.stderr.write("bench: HTTP under autocannon…\n");
  const http = await httpBench(embedded.engine, embedded.metrics);
  await embedded.close();
  // The same run over the all-stores run's symbols, each ticking at the pace it had among 3, so
  // only the width of the universe differs: what a tick costs at 500 symbols against 3.
  process.stderr.write(`bench: embedded pipeline over ${options.symbols} symbols…\n`);
  const wideRate = Math.round((EMBEDDED_RATE * options.symbols) / DEFAULT_SYMBOLS.length);
  const wideTicks = { seed: 7, rate: wideRate, ticks: SIZES.embeddedTicks, symbols: options.symbols };
  const wide = await pipeline(
    generateTicks(wideTicks),
    SIZES.embeddedTicks,
    symbolNames(options.symbols),
    {},
  );
  await wide.close();
  // After the runs, so their ticks in memory touch none of the runs' figures.
  const floorTicks = Math.min(SIZES.embeddedTicks, 100_000);
  const floor = designFloor([...generateTicks({ seed: 7, rate: EMBEDDED_RATE, ticks: floorTicks })]);
  const wideFloor = designFloor([...generateTicks({ ...wideTicks, ticks: floorTicks })]);
  return {
    ticks_per_second: round(embedded.ticksPerSecond),
    wide: {
      symbols: options.symbols,
      ticks_per_second: round(wide.ticksPerSecond),
      /** Cost per tick over `symbols` ÷ cost per tick over 3 (1: independent of the universe). */
      cost_per_tick_ratio: round(embedded.ticksPerSecond / wide.ticksPerSecond, 2),
      floor_pipeline_ticks_per_second: wideFloor.pipeline_ticks_per_second,
      floor_cost_per_tick_ratio: round(
        floor.pipeline_ticks_per_second / wideFloor.pipeline_ticks_per_second,
        2,
      ),
    },
    journal_commit_p99_ms: round(percentile(embedded.commitLatencies, 0.99), 2),
    scrape_mean_ms: round(scrape.meanMs, 2),
    scrape_series: scrape.series,
    rss_peak_mb: round(embedded.rssPeakMb),
    cpu_seconds: round(embedded.cpuSeconds, 2),
    floor,
    http,
  };
}

/**
 * The tick → Redis probe (scripts/redis-visibility-probe.ts), once it is connected: the run must
 * not start before, or its first samples would measure the probe's start-up.
 */
async function startVisibilityProbe(redisUrl: string): Promise<ChildProcess> {
  const probe = fork(fileURLToPath(new URL("./redis-visibility-probe.ts", import.meta.url)), [redisUrl], {
    execArgv: process.execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  await new Promise<void>((resolve, reject) => {
    const exited = (code: number | null) =>
      reject(new Error(`the Redis probe exited with ${code} before it was ready`));
    probe.once("exit", exited);
    probe.once("message", () => {
      probe.off("exit", exited);
      resolve();
    });
  });
  return probe;
}

/** Every store on, `allStoresTicks` over `symbols`: the `all-stores` phase. */
async function allStoresPhase(redisUrl: string, influxUrl: string) {
  const allStores = { seed: 7, rate: 50_000, ticks: SIZES.allStoresTicks, symbols: options.symbols };
  // Tick → visible in Redis: a tick now and then is handed to a probe in its own process, which
  // polls its key until it shows (scripts/redis-visibility-probe.ts).
  const probe = await startVisibilityProbe(redisUrl);
  const watch = (tick: Tick) =>
    probe.send({
      symbol: tick.symbol,
      timestamp: tick.timestamp,
      sentAt: performance.timeOrigin + performance.now(),
    });
  let batches = 0;
  // What the stores' own processes spend meanwhile: the rest of the machine's two cores.
  const [vmPid, redisPid] = (options.storePids ?? "").split(",").map(Number);
  const storeCpu = () => ({
    victoria_metrics: vmPid ? cpuSecondsOf(vmPid) : undefined,
    redis: redisPid ? cpuSecondsOf(redisPid) : undefined,
  });
  const storeCpuBefore = storeCpu();
  const all = await pipeline(
    generateTicks(allStores),
    SIZES.allStoresTicks,
    symbolNames(options.symbols),
    { VELOX_REDIS_URL: redisUrl, VELOX_INFLUX_URL: influxUrl, VELOX_INFLUX_TOKEN: "bench" },
    (tick) => {
      // One sample every 5 batches (320 ticks): 3,125 over a million ticks, few enough to leave
      // the probe's load negligible, enough for a steady p99.
      if (++batches % 5 === 0) watch(tick);
    },
  );
  const storeCpuAfter = storeCpu();
  const storeSeconds = (name: "victoria_metrics" | "redis") => {
    const before = storeCpuBefore[name];
    const after = storeCpuAfter[name];
    return before === undefined || after === undefined ? null : round(after - before, 2);
  };
  const flushStarted = performance.now();
  const latencies = await new Promise<number[]>((resolve) => {
    probe.once("message", (answer: { latencies: number[] }) => resolve(answer.latencies));
    probe.send({ done: true });
  });
  await all.close();
  const influxStats = all.engine.stores.series?.stats();
  // Points/s includes the final flush: what was written, over the time until it was all sent.
  const influxSeconds = all.seconds + (performance.now() - flushStarted) / 1000;
  return {
    symbols: options.symbols,
    ticks_per_second: round(all.ticksPerSecond),
    influx_points_written: influxStats?.pointsWritten ?? 0,
    influx_seconds: influxSeconds,
    influx_points_failed: influxStats?.failedPoints ?? null,
    tick_to_redis_p99_ms: round(percentile(latencies, 0.99), 1),
    journal_commit_p99_ms: round(percentile(all.commitLatencies, 0.99), 2),
    rss_peak_mb: round(all.rssPeakMb),
    cpu_seconds: round(all.cpuSeconds, 2),
    store_cpu_seconds: { victoria_metrics: storeSeconds("victoria_metrics"), redis: storeSeconds("redis") },
    seconds: round(all.seconds, 2),
  };
}

/** Runs one phase in a child process of its own (this script with --phase) and returns its result. */
async function inChild<T>(phase: string, extra: string[] = []): Promise<T> {
  const result = join(dir, `${phase}.json`);
  const args = [
    // The heap settings VELOX itself runs with, so the figures are the product's.
    ...NODE_FLAGS,
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    "--phase",
    phase,
    "--phase-out",
    result,
    "--symbols",
    String(options.symbols),
    ...(options.ticks === undefined ? [] : ["--ticks", String(options.ticks)]),
    ...(quick ? ["--quick"] : []),
    ...extra,
  ];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "inherit", "inherit"] });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`bench phase ${phase} exited with ${code}`);
  return JSON.parse(readFileSync(result, "utf8")) as T;
}

/**
 * The PostgreSQL history store's write path against a raw COPY of the same rows into the same
 * (migrated, partitioned) table, each in a fresh database of the machine's PostgreSQL: the store
 * (`writePrice` per tick, batched COPY through a staging table with ON CONFLICT DO NOTHING, until
 * flushed) over the raw COPY of pre-built rows.
 */
async function historyCopy() {
  const ticks = [...generateTicks({ seed: 13, rate: 50_000, ticks: SIZES.historyRows, symbols: 500 })];
  const [raw, store] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  try {
    const client = new pg.Client({ connectionString: raw.url });
    await client.connect();
    await migratePostgres(client);
    await new DailyPartitions().ensure(
      client,
      ticks.map((t) => utcDay(t.timestamp)),
    );
    const text = `${ticks.map(priceRow).join("\n")}\n`;
    const rawStarted = performance.now();
    await pipelineStreams(
      Readable.from([text]),
      client.query(copyFrom(`COPY price_data (${HISTORY_COLUMNS.price_data.join(", ")}) FROM STDIN`)),
    );
    const rawSeconds = (performance.now() - rawStarted) / 1000;
    await client.end();

    const history = new PostgresHistory({
      url: store.url,
      spoolDir: join(dir, "history-spool"),
      maxSpoolRows: SIZES.historyRows * 2,
      flushIntervalMs: 1_000,
    });
    await history.flush(); // migrated and partitions made ahead, outside the timing
    const started = performance.now();
    for (const tick of ticks) history.writePrice(tick);
    await history.flush();
    const seconds = (performance.now() - started) / 1000;
    const written = history.stats().rowsWritten.price_data;
    await history.close();
    if (written !== ticks.length) throw new Error(`history store wrote ${written} of ${ticks.length} rows`);
    return {
      rows: ticks.length,
      copy_rows_per_second: round(ticks.length / seconds),
      raw_copy_rows_per_second: round(ticks.length / rawSeconds),
      ratio_to_raw_copy: round(rawSeconds / seconds, 3),
    };
  } finally {
    await Promise.all([raw.drop(), store.drop()]);
  }
}

/**
 * `velox replay --speed max` of a CSV of `replayTicks` over `replaySymbols` with every store on,
 * as a user runs it (the CLI in a child process): ticks/s and InfluxDB points/s from its summary,
 * and every tick looked up in VictoriaMetrics (`ticks_close{source="replay"}`).
 */
async function replayRun(redisUrl: string, influx: VictoriaMetrics) {
  const csv = join(dir, "replay.csv");
  await writeTicksCsv(
    csv,
    generateTicks({ seed: 11, rate: 50_000, ticks: SIZES.replayTicks, symbols: SIZES.replaySymbols }),
  );
  const logs = join(dir, "replay-logs");
  const child = spawn(
    process.execPath,
    [...NODE_FLAGS, ...process.execArgv, "src/cli.ts", "replay", csv, "--speed", "max"],
    {
      env: {
        ...process.env,
        VELOX_DATA_DIR: join(dir, "replay-data"),
        VELOX_LOG_DIR: logs,
        // info: its "starting" and summary lines time the run.
        VELOX_LOG_LEVEL: "info",
        VELOX_REDIS_URL: redisUrl,
        VELOX_INFLUX_URL: influx.url,
        VELOX_INFLUX_TOKEN: "bench",
        VELOX_API_PORT: String(await freePort()),
        VELOX_METRICS_PORT: String(await freePort()),
      },
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  if (code !== 0) throw new Error(`velox replay exited with ${code}`);
  // From its "starting" line to its summary, which follows the final flush of every store.
  const records = logRecords(logs);
  const at = (msg: (m: string) => boolean) => {
    const time = records.find((r) => typeof r.msg === "string" && msg(r.msg))?.time;
    return typeof time === "string" ? Date.parse(time) : Number(time);
  };
  const wall = (at((m) => m.startsWith("summary:")) - at((m) => m === "starting")) / 1000;
  const summary = runSummary(logs) as {
    ticks: number;
    seconds: number;
    influx?: { pointsWritten: number; failedPoints: number };
  };
  // What VictoriaMetrics holds of the replay's ticks. Right after a heavy run an export can miss
  // rows it answered for (seen once: 285,764 of 300,000, and 300,000 in the next run), so it is
  // read again for up to 15 s until every tick is there; a tick still missing then is reported.
  const countDelivered = async () => {
    let count = 0;
    for (const series of await influx.exportSeries('ticks_close{source="replay"}')) {
      count += new Set(series.timestamps).size;
    }
    return count;
  };
  const exportStarted = performance.now();
  let delivered = await countDelivered();
  if (delivered < summary.ticks) {
    process.stderr.write(
      `bench: VictoriaMetrics shows ${delivered} of the replay's ${summary.ticks} ticks; reading again…\n`,
    );
  }
  while (delivered < summary.ticks && performance.now() - exportStarted < 15_000) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    delivered = await countDelivered();
  }
  const deliveryWait = (performance.now() - exportStarted) / 1000;
  return {
    ticks: summary.ticks,
    symbols: SIZES.replaySymbols,
    ticks_per_second: round(summary.ticks / summary.seconds),
    influx_points_written: summary.influx?.pointsWritten ?? 0,
    influx_points_failed: summary.influx?.failedPoints ?? null,
    /** From the run's start to its summary, after the final flush: what points/s is over. */
    wall_seconds: round(wall, 2),
    ticks_delivered: delivered,
    /** How long the export took to show them all (or gave up). */
    delivery_wait_seconds: round(deliveryWait, 1),
  };
}

if (options.phase) {
  // A child of the bench: one phase, its result to --phase-out.
  const result =
    options.phase === "embedded"
      ? await embeddedPhase()
      : await allStoresPhase(options.redisUrl ?? "", options.influxUrl ?? "");
  writeFileSync(options.phaseOut ?? join(dir, "phase.json"), JSON.stringify(result));
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

const [redis, vm] = await Promise.all([RedisServer.start(), VictoriaMetrics.start()]);
try {
  // Embedded first: it needs no server, and must not share the CPU with VictoriaMetrics merging
  // the ceiling's million points in the background.
  process.stderr.write("bench: embedded pipeline (own process)…\n");
  const embedded = await inChild<Awaited<ReturnType<typeof embeddedPhase>>>("embedded");

  process.stderr.write("bench: ceilings…\n");
  // What the ceiling's points cost VictoriaMetrics, merges included: its CPU until it is idle.
  const vmCpuBefore = vm.pid === undefined ? undefined : cpuSecondsOf(vm.pid);
  const influxPointsCeiling = await influxCeiling(vm.url, SIZES.ceilingPoints);
  const settledSeconds = await settled(vm.pid);
  const vmCpuAfter = vm.pid === undefined ? undefined : cpuSecondsOf(vm.pid);
  const redisSetCeiling = redisCeiling(redis.port);
  process.stderr.write(`bench: VictoriaMetrics idle again after ${round(settledSeconds, 1)} s\n`);

  process.stderr.write(
    `bench: all stores, ${SIZES.allStoresTicks} ticks over ${options.symbols} symbols (own process)…\n`,
  );
  const all = await inChild<Awaited<ReturnType<typeof allStoresPhase>>>("all-stores", [
    "--redis-url",
    redis.url,
    "--influx-url",
    vm.url,
    "--store-pids",
    `${vm.pid ?? ""},${redis.pid ?? ""}`,
  ]);
  const influxPointsPerSecond = all.influx_points_written / all.influx_seconds;

  process.stderr.write("bench: ceiling again, then velox replay…\n");
  const replayCeiling = await influxCeiling(vm.url, SIZES.ceilingPoints);
  await settled(vm.pid);
  process.stderr.write(
    `bench: velox replay of ${SIZES.replayTicks} ticks over ${SIZES.replaySymbols} symbols, every store on…\n`,
  );
  const replay = await replayRun(redis.url, vm);
  const replayPointsPerSecond = replay.influx_points_written / replay.wall_seconds;

  process.stderr.write(
    `bench: PostgreSQL history store, ${SIZES.historyRows} price_data rows vs a raw COPY…\n`,
  );
  const historyFigures = await historyCopy();

  process.stderr.write("bench: the seed's per-tick-await design…\n");
  const seed = await seedDesign(
    [...generateTicks({ seed: 7, rate: 50_000, ticks: SIZES.seedTicks, symbols: options.symbols })],
    redis.url,
    vm.url,
  );

  const { http, ...embeddedFigures } = embedded;
  const results = {
    date: new Date().toISOString(),
    commit: codeVersion(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.version },
    quick,
    sizes: SIZES,
    ceiling: {
      influx_points_per_second: round(influxPointsCeiling),
      redis_set_per_second: round(redisSetCeiling),
      /** VictoriaMetrics' CPU per point of the ceiling's three passes, until it was idle again. */
      victoria_metrics_cpu_us_per_point:
        vmCpuBefore === undefined || vmCpuAfter === undefined
          ? null
          : round(((vmCpuAfter - vmCpuBefore) / (3 * SIZES.ceilingPoints)) * 1e6, 2),
    },
    embedded: embeddedFigures,
    all_stores: {
      symbols: all.symbols,
      ticks_per_second: all.ticks_per_second,
      influx_points_per_second: round(influxPointsPerSecond),
      ratio_to_influx_ceiling: round(influxPointsPerSecond / influxPointsCeiling, 3),
      influx_points_failed: all.influx_points_failed,
      tick_to_redis_p99_ms: all.tick_to_redis_p99_ms,
      journal_commit_p99_ms: all.journal_commit_p99_ms,
      rss_peak_mb: all.rss_peak_mb,
      cpu_seconds: all.cpu_seconds,
      cores_used: round(all.cpu_seconds / all.seconds, 2),
      store_cpu_seconds: all.store_cpu_seconds,
      /** VictoriaMetrics' CPU per point the run wrote (the pipeline's ten measurements). */
      victoria_metrics_cpu_us_per_point:
        all.store_cpu_seconds.victoria_metrics === null
          ? null
          : round((all.store_cpu_seconds.victoria_metrics / all.influx_points_written) * 1e6, 2),
      /** VELOX, VictoriaMetrics and redis-server together, in cores, over the run. */
      machine_cores_used: round(
        (all.cpu_seconds +
          (all.store_cpu_seconds.victoria_metrics ?? 0) +
          (all.store_cpu_seconds.redis ?? 0)) /
          all.seconds,
        2,
      ),
    },
    replay: {
      ...replay,
      influx_points_per_second: round(replayPointsPerSecond),
      ceiling_points_per_second: round(replayCeiling),
      ratio_to_influx_ceiling: round(replayPointsPerSecond / replayCeiling, 3),
    },
    history: historyFigures,
    seed_design: { ticks_per_second: round(seed) },
    http,
    speedup_over_seed_design: round(all.ticks_per_second / seed, 1),
  };

  mkdirSync(join(options.out, ".."), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
  const chart = chartPathFor(options.out);
  writeFileSync(chart, benchChartSvg(results satisfies BenchResults));
  const rows: [string, string | number][] = [
    ["InfluxDB client ceiling (points/s)", results.ceiling.influx_points_per_second],
    ["  VictoriaMetrics CPU per ceiling point (µs)", `${results.ceiling.victoria_metrics_cpu_us_per_point}`],
    ["redis-benchmark -P 16 SET (ops/s)", results.ceiling.redis_set_per_second],
    ["embedded pipeline (ticks/s)", results.embedded.ticks_per_second],
    ["embedded journal commit p99 (ms)", results.embedded.journal_commit_p99_ms],
    ["embedded peak RSS (MB)", results.embedded.rss_peak_mb],
    ["  floor: pipeline, no stores (ticks/s)", results.embedded.floor.pipeline_ticks_per_second],
    ["  floor: indicators alone (ticks/s)", results.embedded.floor.indicators_ticks_per_second],
    [
      `embedded over ${results.embedded.wide.symbols} symbols (ticks/s; cost per tick ÷ 3 symbols')`,
      `${results.embedded.wide.ticks_per_second}; ${results.embedded.wide.cost_per_tick_ratio}`,
    ],
    [
      `  its floor (ticks/s; cost per tick ÷ 3 symbols')`,
      `${results.embedded.wide.floor_pipeline_ticks_per_second}; ${results.embedded.wide.floor_cost_per_tick_ratio}`,
    ],
    [`all stores, ${options.symbols} symbols (ticks/s)`, results.all_stores.ticks_per_second],
    ["all stores InfluxDB (points/s)", results.all_stores.influx_points_per_second],
    ["  ÷ InfluxDB ceiling", results.all_stores.ratio_to_influx_ceiling],
    ["tick → Redis p99 (ms)", results.all_stores.tick_to_redis_p99_ms],
    ["all stores journal commit p99 (ms)", results.all_stores.journal_commit_p99_ms],
    ["all stores peak RSS (MB)", results.all_stores.rss_peak_mb],
    ["all stores CPU (s; cores used)", `${results.all_stores.cpu_seconds}; ${results.all_stores.cores_used}`],
    [
      "  VictoriaMetrics, redis-server CPU (s; cores, all three)",
      `${results.all_stores.store_cpu_seconds.victoria_metrics}, ${results.all_stores.store_cpu_seconds.redis}; ${results.all_stores.machine_cores_used}`,
    ],
    [
      "  VictoriaMetrics CPU per pipeline point (µs)",
      `${results.all_stores.victoria_metrics_cpu_us_per_point}`,
    ],
    [
      `velox replay, ${replay.ticks} ticks over ${replay.symbols} symbols (ticks/s)`,
      results.replay.ticks_per_second,
    ],
    ["  ticks delivered to InfluxDB", `${replay.ticks_delivered} of ${replay.ticks}`],
    [
      "  InfluxDB points/s ÷ ceiling right before",
      `${results.replay.influx_points_per_second} ÷ ${results.replay.ceiling_points_per_second} = ${results.replay.ratio_to_influx_ceiling}`,
    ],
    [
      `PostgreSQL price_data, ${historyFigures.rows} rows (rows/s)`,
      `${historyFigures.copy_rows_per_second} ÷ raw COPY ${historyFigures.raw_copy_rows_per_second} = ${historyFigures.ratio_to_raw_copy}`,
    ],
    ["seed design (ticks/s)", results.seed_design.ticks_per_second],
    ["speed-up over the seed design", results.speedup_over_seed_design],
    ["/metrics scrape mean (ms)", results.embedded.scrape_mean_ms],
    [
      "HTTP hello-world (req/s, p99 ms)",
      `${http.hello_world.requests_per_second}, ${http.hello_world.p99_ms}`,
    ],
    [
      `GET /api/positions, ${http.open_positions} open (req/s, p99 ms)`,
      `${http.api_positions.requests_per_second}, ${http.api_positions.p99_ms}`,
    ],
    ["GET /metrics (req/s, p99 ms)", `${http.metrics.requests_per_second}, ${http.metrics.p99_ms}`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log(
    `VELOX bench${quick ? " (quick: sizes too small for meaningful timings)" : ""}, ${results.date}`,
  );
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
  console.log("targets:");
  for (const line of verdictLines(results)) console.log(line);
  console.log(`written to ${options.out} and ${chart}`);
} finally {
  await Promise.all([redis.stop(), vm.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
