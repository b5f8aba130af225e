/**
 * `npm run bench`: the tick path against the machine's own ceilings, measured in one run and
 * reported as ratios, so figures compare across machines. It starts its own redis-server and
 * VictoriaMetrics (the InfluxDB write path) on free ports and measures, in order:
 *
 * - embedded: the whole pipeline (indicators, strategies, trailing stops, journal, metrics) on
 *   the journal alone, 3 symbols;
 * - ceilings: pre-built line protocol through the InfluxDB client to VictoriaMetrics (points/s),
 *   and `redis-benchmark -P 16 -t set` (SETs/s), right before the run they are compared with;
 * - all stores: the same with Redis (cache and event stream) and VictoriaMetrics on, 500 symbols:
 *   ticks/s, InfluxDB points/s including the final flush, tick → visible in Redis (p99), journal
 *   group-commit latency (p99), peak RSS;
 * - the seed design: every tick awaited in every store, on a smaller run, for the speed-up;
 * - scrape time of /metrics;
 * - HTTP under autocannon (its own process): `/api/positions` and `/metrics` next to a bare
 *   Express hello-world, requests/s and p99.
 *
 * It prints a table and writes bench/results.json. `--quick` runs small sizes (the test command
 * runs it so the bench never rots); its timings mean nothing.
 *
 *   npm run bench                # full: 1,000,000 ticks over 500 symbols
 *   npm run bench -- --quick
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { InfluxDB } from "@influxdata/influxdb-client";
import { Command } from "commander";
import express from "express";
import { Redis } from "ioredis";
import { startApiServer } from "../src/api/server.js";
import { Engine } from "../src/app/engine.js";
import { loadConfig } from "../src/config.js";
import type { Tick } from "../src/domain/tick.js";
import { createLogger } from "../src/log.js";
import { generateTicks, symbolNames } from "../src/market/simulator.js";
import { TickValidator } from "../src/market/tick-validator.js";
import { VeloxMetrics } from "../src/metrics/exporter.js";
import { startMetricsServer } from "../src/metrics/server.js";
import { msToNs } from "../src/schema/influx.js";
import type { JournalOperation } from "../src/schema/metrics.js";
import { keys } from "../src/schema/redis-keys.js";
import { toLineProtocol } from "../src/storage/line-protocol.js";
import { loadStrategyConfig } from "../src/trading/strategy-config.js";
import { RedisServer } from "../test/helpers/redis-server.js";
import { VictoriaMetrics } from "../test/helpers/victoria-metrics.js";

const options = new Command()
  .option("--quick", "small sizes, for the test command (timings are not meaningful)", false)
  .option("--ticks <n>", "ticks of the all-stores run (default 1,000,000; quick 20,000)", Number)
  .option("--symbols <n>", "symbols of the all-stores run", Number, 500)
  .option("--out <file>", "results file", "bench/results.json")
  .parse()
  .opts<{ quick: boolean; ticks?: number; symbols: number; out: string }>();

const quick = options.quick;
const execFileAsync = promisify(execFile);
const SIZES = {
  ceilingPoints: quick ? 20_000 : 1_000_000,
  redisSets: quick ? 20_000 : 500_000,
  embeddedTicks: quick ? 5_000 : 200_000,
  allStoresTicks: options.ticks ?? (quick ? 20_000 : 1_000_000),
  seedTicks: quick ? 500 : 5_000,
  httpSeconds: quick ? 1 : 5,
};
/** A source hands the engine this many ticks, then yields to the event loop (timers, I/O). */
const BATCH = 100;

const dir = mkdtempSync(join(tmpdir(), "velox-bench-"));
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
};
const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
const round = (n: number, digits = 0) => Number(n.toFixed(digits));

/** Pre-built lines through the client's WriteApi: what the InfluxDB path could do at best here. */
async function influxCeiling(url: string): Promise<number> {
  const lines: string[] = [];
  const t0 = Date.now() - 3_600_000;
  for (let i = 0; i < SIZES.ceilingPoints; i++) {
    lines.push(
      toLineProtocol({
        measurement: "ticks",
        tags: { symbol: `C${i % 500}`, source: "ceiling" },
        fields: { close: 100 + (i % 97), volume: i % 1000 },
        timestampNs: msToNs(t0 + i),
      }),
    );
  }
  const write = new InfluxDB({ url, token: "bench" }).getWriteApi("velox", "trading", "ns", {
    batchSize: 5_000,
    flushInterval: 0,
    gzipThreshold: 1000,
  });
  const started = performance.now();
  for (let i = 0; i < lines.length; i += 5_000) write.writeRecords(lines.slice(i, i + 5_000));
  await write.close();
  return lines.length / ((performance.now() - started) / 1000);
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
  for (const tick of ticks) {
    await engine.process(tick);
    done++;
    if (done % BATCH === 0) {
      onBatch?.(tick);
      await yieldToLoop();
    }
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  return {
    ticksPerSecond: done / seconds,
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

const [redis, vm] = await Promise.all([RedisServer.start(), VictoriaMetrics.start()]);
try {
  // Embedded first: it needs no server, and must not share the CPU with VictoriaMetrics merging
  // the ceiling's million points in the background.
  process.stderr.write("bench: embedded pipeline…\n");
  const embedded = await pipeline(
    generateTicks({ seed: 7, rate: 2000, ticks: SIZES.embeddedTicks }),
    SIZES.embeddedTicks,
    symbolNames(),
    {},
  );
  const scrape = await scrapeTimes(embedded.metrics);
  process.stderr.write("bench: HTTP under autocannon…\n");
  const http = await httpBench(embedded.engine, embedded.metrics);
  await embedded.close();

  process.stderr.write("bench: ceilings…\n");
  const influxPointsCeiling = await influxCeiling(vm.url);
  const redisSetCeiling = redisCeiling(redis.port);

  process.stderr.write(`bench: all stores, ${SIZES.allStoresTicks} ticks over ${options.symbols} symbols…\n`);
  const allStores = { seed: 7, rate: 50_000, ticks: SIZES.allStoresTicks, symbols: options.symbols };
  // Tick → visible in Redis: sample a tick now and then and poll its key until it shows.
  const probe = new Redis(redis.url);
  const visibility: Promise<number>[] = [];
  const watch = (tick: Tick): Promise<number> => {
    const sent = performance.now();
    return (async () => {
      for (;;) {
        const ts = Number(await probe.hget(keys.stockPrice(tick.symbol), "timestamp"));
        if (ts >= Math.round(tick.timestamp)) return performance.now() - sent;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
  };
  let batches = 0;
  const all = await pipeline(
    generateTicks(allStores),
    SIZES.allStoresTicks,
    symbolNames(options.symbols),
    { VELOX_REDIS_URL: redis.url, VELOX_INFLUX_URL: vm.url, VELOX_INFLUX_TOKEN: "bench" },
    (tick) => {
      // One sample every 20 batches keeps the probe's own load negligible.
      if (++batches % 20 === 0) visibility.push(watch(tick));
    },
  );
  const rssPeakMb = all.rssPeakMb;
  const flushStarted = performance.now();
  const latencies = await Promise.all(visibility);
  await all.close();
  const influxStats = all.engine.stores.series?.stats();
  const influxSeconds = all.seconds + (performance.now() - flushStarted) / 1000;
  const influxPointsPerSecond = (influxStats?.pointsWritten ?? 0) / influxSeconds;
  probe.disconnect();

  process.stderr.write("bench: the seed's per-tick-await design…\n");
  const seed = await seedDesign(
    [...generateTicks({ ...allStores, ticks: SIZES.seedTicks })],
    redis.url,
    vm.url,
  );

  const results = {
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.version },
    quick,
    sizes: SIZES,
    ceiling: {
      influx_points_per_second: round(influxPointsCeiling),
      redis_set_per_second: round(redisSetCeiling),
    },
    embedded: {
      ticks_per_second: round(embedded.ticksPerSecond),
      journal_commit_p99_ms: round(percentile(embedded.commitLatencies, 0.99), 2),
      scrape_mean_ms: round(scrape.meanMs, 2),
      scrape_series: scrape.series,
    },
    all_stores: {
      symbols: options.symbols,
      ticks_per_second: round(all.ticksPerSecond),
      influx_points_per_second: round(influxPointsPerSecond),
      ratio_to_influx_ceiling: round(influxPointsPerSecond / influxPointsCeiling, 3),
      influx_points_failed: influxStats?.failedPoints ?? null,
      tick_to_redis_p99_ms: round(percentile(latencies, 0.99), 1),
      journal_commit_p99_ms: round(percentile(all.commitLatencies, 0.99), 2),
      rss_peak_mb: round(rssPeakMb),
    },
    seed_design: { ticks_per_second: round(seed) },
    http,
    speedup_over_seed_design: round(all.ticksPerSecond / seed, 1),
  };

  mkdirSync(join(options.out, ".."), { recursive: true });
  writeFileSync(options.out, `${JSON.stringify(results, null, 2)}\n`);
  const rows: [string, string | number][] = [
    ["InfluxDB client ceiling (points/s)", results.ceiling.influx_points_per_second],
    ["redis-benchmark -P 16 SET (ops/s)", results.ceiling.redis_set_per_second],
    ["embedded pipeline (ticks/s)", results.embedded.ticks_per_second],
    ["embedded journal commit p99 (ms)", results.embedded.journal_commit_p99_ms],
    [`all stores, ${options.symbols} symbols (ticks/s)`, results.all_stores.ticks_per_second],
    ["all stores InfluxDB (points/s)", results.all_stores.influx_points_per_second],
    ["  ÷ InfluxDB ceiling", results.all_stores.ratio_to_influx_ceiling],
    ["tick → Redis p99 (ms)", results.all_stores.tick_to_redis_p99_ms],
    ["all stores journal commit p99 (ms)", results.all_stores.journal_commit_p99_ms],
    ["peak RSS (MB)", results.all_stores.rss_peak_mb],
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
  console.log(`written to ${options.out}`);
} finally {
  await Promise.all([redis.stop(), vm.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
