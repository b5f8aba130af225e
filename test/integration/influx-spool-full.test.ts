import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { msToNs } from "../../src/schema/influx.js";
import { InfluxWriter } from "../../src/storage/influx-writer.js";
import type { AnySeriesPoint } from "../../src/storage/line-protocol.js";
import { memoryLogger } from "../helpers/memory-logger.js";

/**
 * The InfluxDB spool on a full disk: a 1 MiB tmpfs, InfluxDB unreachable, 200,000 points. Before,
 * SQLITE_FULL went back into the writer's buffer, which then grew without bound (RSS up, ticks
 * paced down to a crawl), no drop was counted, and shutdown retried forever. Now a full disk is
 * a full bound: oldest points dropped and counted, memory flat, the episode logged once, a
 * prompt close. Mounting a tmpfs needs root: elsewhere the test is skipped, loudly.
 */

function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = mkdtempSync(join(tmpdir(), "velox-mount-probe-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" });
    execFileSync("umount", [probe], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const mountable = canMount();
if (!mountable) console.warn("\n*** SKIPPING: the full-disk spool test needs root and tmpfs mounts ***\n");

describe.skipIf(!mountable)("InfluxDB spool on a full disk", () => {
  const dir = mkdtempSync(join(tmpdir(), "velox-spool-full-"));
  const disk = join(dir, "disk");

  beforeAll(() => {
    mkdirSync(disk);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", disk]);
  });
  afterAll(() => {
    execFileSync("umount", [disk]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("drops the oldest points, counted, keeps memory flat, logs once, and closes at once", async () => {
    const { logger, entries } = memoryLogger();
    const writer = new InfluxWriter({
      url: "http://127.0.0.1:1", // nothing listens: every batch goes to the spool
      org: "velox",
      bucket: "trading",
      spoolPath: join(disk, "spool.db"),
      // Batches as large as the engine's: on this disk one batch hardly fits, so the spool is
      // often empty, dropped to nothing, while InfluxDB is still away.
      batchSize: 5000,
      flushIntervalMs: 20,
      // The writer's own backoff (250 ms doubling to 10 s): a flush must not wait for it.
      closeTimeoutMs: 500,
      logger,
    });
    const t0 = Date.UTC(2024, 0, 2);
    let maxBacklog = 0;
    let slowestFlushMs = 0;
    const bulk = 200_000;
    // Then a last small batch, which fits whatever came before: the spool must end up holding it.
    const last = 100;
    const total = bulk + last;
    const pointsFrom = (from: number, count: number): AnySeriesPoint[] => {
      const points: AnySeriesPoint[] = [];
      for (let j = from; j < from + count; j++) {
        points.push({
          measurement: "ticks",
          tags: { symbol: `FULL${j % 50}`, source: "drill" },
          fields: { close: 100 + (j % 97), open: 100, high: 101, low: 99, volume: j },
          timestampNs: msToNs(t0 + j),
        });
      }
      return points;
    };
    for (let i = 0; i < bulk; i += 1000) {
      writer.writeMany(pointsFrom(i, 1000));
      maxBacklog = Math.max(maxBacklog, writer.backlog);
      // As the engine paces its source: a flush once the backlog passes a bound.
      if (writer.backlog > 10_000) {
        const flushStarted = performance.now();
        await writer.flush();
        slowestFlushMs = Math.max(slowestFlushMs, performance.now() - flushStarted);
      }
      await new Promise((r) => setImmediate(r));
    }
    await writer.flush();
    // Whether the bulk's own last batch fitted depends on timing (one 5,000-point batch hardly fits
    // this disk); the newest small batch always does, the oldest points making room for it.
    writer.writeMany(pointsFrom(bulk, last));
    await writer.flush();
    const stats = writer.stats();
    // Memory flat: nothing piles up in the writer while the disk is full.
    expect(maxBacklog).toBeLessThanOrEqual(12_000);
    // A waiting flush (a source paced by the writer) is served by the spool, not by the backoff.
    expect(slowestFlushMs).toBeLessThan(1_000);
    await writer.flush();
    expect(writer.stats().bufferedPoints).toBe(0);
    // What did not fit was dropped and counted; the spool holds the newest.
    expect(stats.droppedPoints).toBeGreaterThan(0);
    expect(stats.spoolPoints).toBeGreaterThanOrEqual(last);
    expect(stats.spoolPoints + stats.droppedPoints).toBe(total);
    const full = entries.filter((e) => String(e.msg).includes("disk is full"));
    expect(full).toHaveLength(1);

    const started = Date.now();
    await writer.close();
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 60_000);
});
