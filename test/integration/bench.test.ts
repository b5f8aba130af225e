import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type BenchResults, benchChartSvg, chartPathFor, TARGETS } from "../../scripts/bench-targets.js";
import { skipWithout } from "../helpers/backend.js";
import { runNode } from "../helpers/process.js";
import { VICTORIA_METRICS } from "../helpers/victoria-metrics.js";

/**
 * `npm run bench -- --quick` runs here so the bench never rots: it must start its servers, run
 * every measurement and write every key the README's table is made from. Timings are not
 * asserted (a test is no benchmark; `npm run bench` is).
 */

const KEYS = [
  "ceiling.influx_points_per_second",
  "ceiling.redis_set_per_second",
  "embedded.ticks_per_second",
  "all_stores.ticks_per_second",
  "all_stores.influx_points_per_second",
  "all_stores.ratio_to_influx_ceiling",
  "all_stores.tick_to_redis_p99_ms",
  "all_stores.rss_peak_mb",
  "all_stores.cpu_seconds",
  // The stores' own CPU over the same run (from /proc by PID): what is left of the machine.
  "all_stores.store_cpu_seconds.victoria_metrics",
  "all_stores.store_cpu_seconds.redis",
  "all_stores.machine_cores_used",
  "all_stores.victoria_metrics_cpu_us_per_point",
  "ceiling.victoria_metrics_cpu_us_per_point",
  "embedded.rss_peak_mb",
  "embedded.floor.pipeline_ticks_per_second",
  "embedded.floor.indicators_ticks_per_second",
  "embedded.wide.ticks_per_second",
  "embedded.wide.cost_per_tick_ratio",
  "embedded.wide.floor_pipeline_ticks_per_second",
  "embedded.wide.floor_cost_per_tick_ratio",
  "replay.ticks_per_second",
  "replay.influx_points_per_second",
  "replay.ratio_to_influx_ceiling",
  "history.copy_rows_per_second",
  "history.raw_copy_rows_per_second",
  "history.ratio_to_raw_copy",
  "seed_design.ticks_per_second",
  "speedup_over_seed_design",
  "http.hello_world.requests_per_second",
  "http.api_positions.requests_per_second",
  "http.api_positions.p99_ms",
  "http.metrics.requests_per_second",
  "http.metrics.p99_ms",
];

const skip =
  skipWithout("redis-server", "the quick bench") ||
  skipWithout("redis-benchmark", "the quick bench") ||
  skipWithout(VICTORIA_METRICS, "the quick bench");

describe.skipIf(skip)("npm run bench -- --quick", () => {
  it("runs every measurement and writes results.json with every key", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "velox-bench-test-")), "results.json");
    const run = await runNode(["--import", "tsx", "scripts/bench.ts", "--quick", "--out", out], 120_000);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toContain("speed-up over the seed design");
    // Every target with its verdict, and the picture of them next to the results.
    for (const target of TARGETS) expect(run.stdout).toContain(`${target.label} ${target.text}`);
    expect(readFileSync(chartPathFor(out), "utf8")).toBe(
      benchChartSvg(JSON.parse(readFileSync(out, "utf8")) as BenchResults),
    );
    const results = JSON.parse(readFileSync(out, "utf8")) as Record<string, Record<string, number> | number>;
    for (const key of KEYS) {
      const value = key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], results);
      expect(typeof value === "number" && Number.isFinite(value) && value > 0, `${key} = ${value}`).toBe(
        true,
      );
    }
    expect((results.all_stores as Record<string, number>).influx_points_failed).toBe(0);
    // `velox replay` with every store on: every tick reached the InfluxDB path.
    const replay = results.replay as Record<string, number>;
    expect(replay.ticks).toBe(5_000);
    expect(replay.ticks_delivered).toBe(replay.ticks);
    // Every HTTP answer under load was a 2xx.
    const http = results.http as unknown as Record<string, { non_2xx: number }>;
    for (const name of ["hello_world", "api_positions", "metrics"]) expect(http[name]?.non_2xx, name).toBe(0);
  }, 150_000);
});
