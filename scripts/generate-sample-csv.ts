/**
 * Writes the sample tick file, `samples/ticks.csv`: 3 symbols × 1,000 ticks from the simulator
 * with a fixed seed, so the file is the same on every run.
 *
 *   npx tsx scripts/generate-sample-csv.ts [output path]
 */
import { createWriteStream, mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { pathToFileURL } from "node:url";
import { stringify } from "csv-stringify";
import type { Tick } from "../src/domain/tick.js";
import { CSV_COLUMNS } from "../src/market/csv-replay.js";
import { generateTicks } from "../src/market/simulator.js";

export const SAMPLE_SEED = 20240102;
export const SAMPLE_SYMBOLS = ["AAPL", "MSFT", "GOOGL"];
export const SAMPLE_TICKS = 3000;
export const SAMPLE_RATE = 10;

/** The sample's ticks, in file order. */
export function sampleTicks(): Generator<Tick> {
  return generateTicks({
    seed: SAMPLE_SEED,
    symbols: SAMPLE_SYMBOLS,
    ticks: SAMPLE_TICKS,
    rate: SAMPLE_RATE,
  });
}

/** Writes `ticks` as a tick CSV (the columns CsvReplay reads, ISO 8601 times) to `out`. */
export async function writeTicksCsv(out: string, ticks: Iterable<Tick>): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  const rows = Readable.from(
    (function* () {
      for (const tick of ticks) {
        yield CSV_COLUMNS.map((column) =>
          column === "timestamp" ? new Date(tick.timestamp).toISOString() : tick[column],
        );
      }
    })(),
  );
  await pipeline(rows, stringify({ header: true, columns: [...CSV_COLUMNS] }), createWriteStream(out));
}

export async function writeSampleCsv(out: string): Promise<void> {
  await writeTicksCsv(out, sampleTicks());
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const out = resolve(process.argv[2] ?? "samples/ticks.csv");
  await writeSampleCsv(out);
  process.stdout.write(`wrote ${SAMPLE_TICKS} ticks to ${out}\n`);
}
