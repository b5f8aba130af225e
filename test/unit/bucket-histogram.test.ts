import { Histogram, Registry, type RegistryContentType } from "prom-client";
import { describe, expect, it } from "vitest";
import { BucketHistogram } from "../../src/metrics/bucket-histogram.js";

const BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
const OPERATIONS = ["insert_trade", "close_trade", "commit_group"] as const;

/** Values on, between, below and above the bounds, seeded, so every bucket and +Inf fill. */
function samples(count: number): number[] {
  let state = 42;
  const random = () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const out = [0, ...BUCKETS, 0.5, 3];
  while (out.length < count)
    out.push(random() < 0.2 ? (BUCKETS[Math.floor(random() * BUCKETS.length)] as number) : random() ** 4 / 4);
  return out;
}

function registries(contentType: RegistryContentType) {
  const library = new Registry<RegistryContentType>();
  const ours = new Registry<RegistryContentType>();
  library.setContentType(contentType);
  ours.setContentType(contentType);
  return { library, ours };
}

describe("BucketHistogram", () => {
  it.each([
    ["Prometheus text", Registry.PROMETHEUS_CONTENT_TYPE],
    ["OpenMetrics", Registry.OPENMETRICS_CONTENT_TYPE],
  ] as const)("writes what prom-client's Histogram writes for the same values (%s)", async (_, type) => {
    const { library, ours } = registries(type);
    const help = "Time from a tick's arrival to the end of its pipeline.";
    const reference = new Histogram({
      name: "velox_t_seconds",
      help,
      buckets: BUCKETS,
      registers: [library],
    });
    const fast = new BucketHistogram({ name: "velox_t_seconds", help, buckets: BUCKETS, registers: [ours] });
    for (const value of samples(5_000)) {
      reference.observe(value);
      fast.observe(value);
    }
    expect(ours.contentType).toBe(type);
    const text = await ours.metrics();
    expect(text).toBe(await library.metrics());
    expect(text).toContain('velox_t_seconds_bucket{le="+Inf"} 5000');
    expect(await ours.getMetricsAsJSON()).toEqual(await library.getMetricsAsJSON());
  });

  it("keeps one series per label value, as a labelled prom-client Histogram does", async () => {
    const { library, ours } = registries(Registry.PROMETHEUS_CONTENT_TYPE);
    const options = { name: "velox_w_seconds", help: "Journal writes.", buckets: BUCKETS };
    const reference = new Histogram({ ...options, labelNames: ["operation"], registers: [library] });
    const fast = new BucketHistogram({
      ...options,
      label: { name: "operation", values: OPERATIONS },
      registers: [ours],
    });
    // Series appear in the order of the label's values; the reference in order of first sight.
    for (const operation of OPERATIONS) {
      reference.zero({ operation });
      fast.zero(operation);
    }
    samples(3_000).forEach((value, i) => {
      const operation = OPERATIONS[i % 3 === 0 ? 0 : i % 7 === 0 ? 2 : 1] as (typeof OPERATIONS)[number];
      reference.observe({ operation }, value);
      fast.observe(value, operation);
    });
    expect(await ours.metrics()).toBe(await library.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await library.getMetricsAsJSON());
  });

  it("shows a label value only once it is observed or zeroed, and nothing after reset", async () => {
    const registry = new Registry();
    const fast = new BucketHistogram({
      name: "velox_w_seconds",
      help: "Journal writes.",
      buckets: [0.001, 0.01],
      label: { name: "operation", values: OPERATIONS },
      registers: [registry],
    });
    fast.observe(0.002, "close_trade");
    let text = await registry.metrics();
    expect(text).toContain('velox_w_seconds_bucket{le="0.001",operation="close_trade"} 0');
    expect(text).toContain('velox_w_seconds_bucket{le="0.01",operation="close_trade"} 1');
    expect(text).toContain('velox_w_seconds_sum{operation="close_trade"} 0.002');
    expect(text).not.toContain("insert_trade");
    registry.resetMetrics();
    text = await registry.metrics();
    expect(text).not.toContain("close_trade");
    expect(text).toContain("# TYPE velox_w_seconds histogram");
  });

  it("refuses what prom-client refuses: a value that is not a number, an unknown label value", () => {
    const fast = new BucketHistogram({
      name: "velox_w_seconds",
      help: "Journal writes.",
      buckets: [0.001],
      label: { name: "operation", values: OPERATIONS },
      registers: [],
    });
    expect(() => fast.observe(Number.NaN, "close_trade")).toThrow(/not a valid number/);
    expect(() => fast.observe(0.1, "drop_table" as never)).toThrow(/"drop_table" is not one of its values/);
    expect(() => fast.observe(0.1)).toThrow(/not one of its values/);
    const plain = new BucketHistogram({ name: "velox_t_seconds", help: "t", buckets: [1], registers: [] });
    expect(() => plain.observe(0.1, "x" as never)).toThrow(/has no label/);
    expect(() => new BucketHistogram({ name: "b", help: "b", buckets: [1, 1], registers: [] })).toThrow(
      /ascending/,
    );
  });
});
