import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { influxCeiling } from "../../scripts/influx-ceiling.js";
import { skipWithout } from "../helpers/backend.js";
import { VICTORIA_METRICS, VictoriaMetrics } from "../helpers/victoria-metrics.js";

/**
 * The bench's InfluxDB client ceiling against a real VictoriaMetrics: a pass is over only once the
 * server has every point. Timed to the WriteApi's `close()`, it was over while most batches were
 * still unanswered, and the ceiling measured the client's hand-over, not the server.
 */

const skip = skipWithout(VICTORIA_METRICS, "the bench's InfluxDB ceiling");

/** Rows VictoriaMetrics has stored from the InfluxDB line protocol (one per field). */
async function influxRowsStored(vm: VictoriaMetrics): Promise<number> {
  const metrics = await (await fetch(`${vm.url}/metrics`)).text();
  const line = metrics.split("\n").find((l) => l.startsWith('vm_rows_inserted_total{type="influx"}'));
  return Number(line?.split(" ")[1] ?? Number.NaN);
}

describe.skipIf(skip)("the bench's InfluxDB ceiling", () => {
  let vm: VictoriaMetrics;
  beforeAll(async () => {
    vm = await VictoriaMetrics.start();
  });
  afterAll(async () => {
    await vm?.stop();
  });

  it("ends a pass when the server has answered every batch: all its points are stored by then", async () => {
    const points = 100_000; // 20 batches of 5,000
    const perSecond = await influxCeiling(vm.url, points, 1);
    // Two fields a point, each a row.
    expect(await influxRowsStored(vm)).toBe(2 * points);
    expect(perSecond).toBeGreaterThan(0);
  }, 60_000);

  it("fails loudly when the server refuses the lines, once: not also with the client's console dump", async () => {
    const printed = vi.spyOn(console, "error");
    try {
      // Two batches, both refused: the pass ends when neither request is outstanding.
      await expect(influxCeiling("http://127.0.0.1:9/", 10_000, 1)).rejects.toThrow(/ceiling's write failed/);
      await new Promise((r) => setTimeout(r, 200));
      expect(printed).not.toHaveBeenCalled();
    } finally {
      printed.mockRestore();
    }
  }, 60_000);
});
