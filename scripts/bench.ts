/**
 * `npm run bench`: throughput, scrape time and memory, measured in one run on this machine and
 * reported as ratios so they compare across machines. Embedded defaults (SQLite journal, no
 * Redis/InfluxDB/Kafka) unless VELOX_* variables say otherwise.
 *
 *   npm run bench -- --ticks 50000 --scrapes 100
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { Engine } from "../src/app/engine.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/log.js";
import { generateTicks } from "../src/market/simulator.js";
import { TickValidator } from "../src/market/tick-validator.js";
import { VeloxMetrics } from "../src/metrics/exporter.js";
import { DataManager } from "../src/storage/data-manager.js";
import { TradeJournal } from "../src/storage/trade-journal.js";
import { loadStrategyConfig } from "../src/trading/strategy-config.js";

const options = new Command()
  .option("--ticks <n>", "ticks per measurement", Number, 50_000)
  .option("--scrapes <n>", "scrapes to time", Number, 100)
  .option("--seed <n>", "simulator seed", Number, 7)
  .parse()
  .opts<{ ticks: number; scrapes: number; seed: number }>();

const dir = mkdtempSync(join(tmpdir(), "velox-bench-"));
const ticks = [...generateTicks({ seed: options.seed, rate: 2000, ticks: options.ticks })];

/** Ceiling of the tick path alone: the DataManager storing the same ticks, with no indicators, strategies or events. */
async function rawStoreCeiling(): Promise<number> {
  const data = new DataManager({ journal: TradeJournal.open(join(dir, "raw.db")) });
  const started = performance.now();
  for (const tick of ticks) data.storeTick(tick);
  const seconds = (performance.now() - started) / 1000;
  await data.close();
  return ticks.length / seconds;
}

async function pipeline(): Promise<{ ticksPerSecond: number; engine: Engine; metrics: VeloxMetrics }> {
  const config = loadConfig({ ...process.env, VELOX_DATA_DIR: join(dir, "data") });
  const logging = await createLogger({ level: "warn", console: false });
  const metrics = new VeloxMetrics({ drawdownLimit: config.drawdownLimit });
  const engine = new Engine({
    config,
    strategies: loadStrategyConfig(),
    logging,
    runId: "bench",
    symbols: [...new Set(ticks.map((t) => t.symbol))],
    validator: new TickValidator(),
    observeTick: metrics.observeTick,
    observeJournalWrite: metrics.observeJournalWrite,
  });
  metrics.attach(engine);
  const started = performance.now();
  for (const tick of ticks) await engine.process(tick);
  const seconds = (performance.now() - started) / 1000;
  return { ticksPerSecond: ticks.length / seconds, engine, metrics };
}

async function scrapeTimes(
  metrics: VeloxMetrics,
): Promise<{ meanMs: number; p95Ms: number; series: number }> {
  const times: number[] = [];
  let body = "";
  for (let i = 0; i < options.scrapes; i++) {
    const started = performance.now();
    body = (await metrics.scrape(false)).body;
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const series = body.split("\n").filter((line) => line && !line.startsWith("#")).length;
  return {
    meanMs: times.reduce((a, b) => a + b, 0) / times.length,
    p95Ms: times[Math.floor(times.length * 0.95)] ?? Number.NaN,
    series,
  };
}

const ceiling = await rawStoreCeiling();
const heapBefore = process.memoryUsage().heapUsed;
const run = await pipeline();
const scrape = await scrapeTimes(run.metrics);
const memory = process.memoryUsage();
await run.engine.close();
rmSync(dir, { recursive: true, force: true });

const report = {
  ticks: ticks.length,
  store_only_ticks_per_second: Math.round(ceiling),
  pipeline_ticks_per_second: Math.round(run.ticksPerSecond),
  pipeline_over_store_only: Number((run.ticksPerSecond / ceiling).toFixed(3)),
  pipeline_over_2000_tps_target: Number((run.ticksPerSecond / 2000).toFixed(2)),
  scrape_mean_ms: Number(scrape.meanMs.toFixed(2)),
  scrape_p95_ms: Number(scrape.p95Ms.toFixed(2)),
  scrape_series: scrape.series,
  scrape_time_over_5s_interval: Number((scrape.meanMs / 5000).toExponential(2)),
  heap_growth_mb: Number(((memory.heapUsed - heapBefore) / 2 ** 20).toFixed(1)),
  rss_mb: Number((memory.rss / 2 ** 20).toFixed(1)),
};
console.log(JSON.stringify(report, null, 2));
