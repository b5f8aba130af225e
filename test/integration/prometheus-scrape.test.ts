import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { METRICS } from "../../src/schema/metrics.js";
import { skipWithout } from "../helpers/backend.js";
import { PROMETHEUS, type Prometheus } from "../helpers/prometheus.js";
import type { RedisServer } from "../helpers/redis-server.js";
import { type ScrapedRun, startScrapedRun } from "../helpers/scraped-run.js";
import { VICTORIA_METRICS } from "../helpers/victoria-metrics.js";

/**
 * A real Prometheus scraping a real `velox run` (with a real Redis and VictoriaMetrics as the
 * InfluxDB write path), evaluating the real rule file with `for:` shortened to 1 s.
 */

const RATE = 1000;
const RULES = join(process.cwd(), "prometheus/rules/velox.rules.yml");

const skip =
  skipWithout(PROMETHEUS, "Prometheus scraping VELOX") ||
  skipWithout("promtool", "Prometheus scraping VELOX") ||
  skipWithout("redis-server", "Prometheus scraping VELOX") ||
  skipWithout(VICTORIA_METRICS, "Prometheus scraping VELOX");

describe.skipIf(skip)("Prometheus scraping a running VELOX", () => {
  let run: ScrapedRun;
  let redis: RedisServer;
  let prometheus: Prometheus;
  let metricsUrl: string;

  beforeAll(async () => {
    run = await startScrapedRun(["run", "--rate", String(RATE), "--seed", "11", "--run-id", "p"], {
      ruleFiles: [RULES],
      forDuration: "1s",
    });
    ({ redis, prometheus, metricsUrl } = run);
  }, 60_000);

  afterAll(async () => {
    await run?.stop();
  });

  const value = async (promql: string): Promise<number> => {
    const samples = await prometheus.query(promql);
    expect(samples, promql).toHaveLength(1);
    return samples[0]?.value ?? Number.NaN;
  };

  it("exposes metrics that promtool accepts, in well under 1,000 series, in both formats", async () => {
    const open = await fetch(metricsUrl, {
      headers: { Accept: "application/openmetrics-text; version=1.0.0" },
    });
    expect(open.headers.get("content-type")).toMatch(/application\/openmetrics-text/);
    expect((await open.text()).trimEnd().endsWith("# EOF")).toBe(true);
    // An OpenMetrics scrape must not change what the next Prometheus-format scrape says.
    const text = await (await fetch(metricsUrl)).text();
    // promtool prints one line per problem and exits non-zero on any.
    const problems = execFileSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    expect(problems).toBe("");
    const series = text.split("\n").filter((line) => line && !line.startsWith("#"));
    expect(series.length).toBeLessThan(1000);
  });

  it("reports the tick rate, Redis memory and the InfluxDB write rate as they are", async () => {
    // The tick-rate window is 10 s: wait until it is full of steady ticks.
    await prometheus.waitFor(
      "a full tick-rate window",
      async () => ((await prometheus.query(`${METRICS.tickRate}`))[0]?.value ?? 0) > 0,
      20_000,
    );
    await new Promise((r) => setTimeout(r, 11_000));
    const tickRate = await value(METRICS.tickRate);
    expect(tickRate).toBeGreaterThan(RATE * 0.8);
    expect(tickRate).toBeLessThan(RATE * 1.2);

    // Redis memory as INFO says it at the moment of the scrape Prometheus just took.
    const probe = new Redis(redis.port, "127.0.0.1");
    try {
      const [used, info] = await Promise.all([value(METRICS.redisMemoryUsed), probe.info("memory")]);
      const actual = Number(/^used_memory:(\d+)/m.exec(info)?.[1]);
      expect(Math.abs(used - actual) / actual).toBeLessThan(0.1);
    } finally {
      probe.disconnect();
    }
    expect(await value(METRICS.influxWriteRate)).toBeGreaterThan(0);
    expect(await value(`${METRICS.influxUp}`)).toBe(1);
    expect(await value(`sum(rate(${METRICS.ticksProcessed}[10s]))`)).toBeGreaterThan(RATE * 0.8);
  }, 60_000);

  it("evaluates every rule without error against real data", async () => {
    const groups = await prometheus.waitForRuleEvaluations();
    const unhealthy = groups.flatMap((g) => g.rules).filter((r) => r.health !== "ok");
    expect(unhealthy).toEqual([]);
    expect((await prometheus.alerts()).filter((a) => a.labels.alertname === "VeloxRedisDown")).toEqual([]);
  });

  it("turns velox_redis_up to 0 and fires VeloxRedisDown when Redis is killed", async () => {
    await redis.kill();
    await prometheus.waitFor("velox_redis_up == 0", async () => (await value(METRICS.redisUp)) === 0, 20_000);
    const firing = await prometheus.waitFor(
      "VeloxRedisDown to fire",
      async () =>
        (await prometheus.alerts()).find(
          (a) => a.labels.alertname === "VeloxRedisDown" && a.state === "firing",
        ),
      20_000,
    );
    expect(firing.labels.severity).toBeDefined();
    expect(firing.annotations.summary).toBeTruthy();
    // Trading went on.
    const before = await value(`sum(${METRICS.ticksProcessed})`);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await value(`sum(${METRICS.ticksProcessed})`)).toBeGreaterThan(before);
  }, 60_000);
});
