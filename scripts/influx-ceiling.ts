import { InfluxDB, setLogger } from "@influxdata/influxdb-client";
import { influxGzip } from "../src/config.js";
import { msToNs } from "../src/schema/influx.js";
import { GZIP_THRESHOLD_BYTES } from "../src/storage/influx-writer.js";
import { toLineProtocol } from "../src/storage/line-protocol.js";

/**
 * The InfluxDB client ceiling of `npm run bench`: pre-built lines through the client's WriteApi,
 * what the InfluxDB path could do at best here. The best of `passes`, as the floors are.
 *
 * A pass ends when the server has answered every batch. The WriteApi sends a full batch as soon as
 * it has one and does not wait for it; its `close()` waits only for the last one. Timed to
 * `close()`, a pass measured how fast the client hands requests over: 2 million points/s against
 * a VictoriaMetrics that had stored none of them yet, and then spent two seconds storing them.
 */
export async function influxCeiling(url: string, points: number, passes = 3): Promise<number> {
  // A failed write is this function's error, named once: not also the client's console dump of
  // the error and its stack.
  const clientLogger = setLogger({ error: () => {}, warn: () => {} });
  try {
    return await bestPass(url, ceilingLines(points), passes);
  } finally {
    setLogger(clientLogger);
  }
}

async function bestPass(url: string, lines: readonly string[], passes: number): Promise<number> {
  let best = 0;
  for (let pass = 0; pass < passes; pass++) {
    let answered = 0;
    let failure: Error | undefined;
    let allAnswered: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      allAnswered = resolve;
    });
    const write = new InfluxDB({ url, token: "bench" }).getWriteApi("velox", "trading", "ns", {
      batchSize: 5_000,
      flushInterval: 0,
      maxRetries: 0,
      // Encoded as the pipeline's writer encodes for this server (VELOX_INFLUX_GZIP's default).
      ...(influxGzip(url, "auto") ? { gzipThreshold: GZIP_THRESHOLD_BYTES } : {}),
      writeSuccess: (batch) => {
        answered += batch.length;
        if (answered >= lines.length) allAnswered();
      },
      // A failed batch is answered too: the pass ends once no request is left outstanding.
      writeFailed: (error, batch) => {
        failure ??= error;
        answered += batch.length;
        if (answered >= lines.length) allAnswered();
      },
    });
    const started = performance.now();
    for (let i = 0; i < lines.length; i += 5_000) write.writeRecords(lines.slice(i, i + 5_000));
    await write.close();
    await done;
    if (failure) throw new Error(`the InfluxDB ceiling's write failed: ${failure.message}`);
    best = Math.max(best, lines.length / ((performance.now() - started) / 1000));
  }
  return best;
}

/** `points` lines of the ticks measurement over 500 series, an hour ago, one millisecond apart. */
function ceilingLines(points: number): string[] {
  const lines: string[] = [];
  const t0 = Date.now() - 3_600_000;
  for (let i = 0; i < points; i++) {
    lines.push(
      toLineProtocol({
        measurement: "ticks",
        tags: { symbol: `C${i % 500}`, source: "ceiling" },
        fields: { close: 100 + (i % 97), volume: i % 1000 },
        timestampNs: msToNs(t0 + i),
      }),
    );
  }
  return lines;
}
