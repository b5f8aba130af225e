import { once } from "node:events";
import type { Writable } from "node:stream";
import { stringify } from "csv-stringify";
import type { StoredSlUpdate } from "../domain/trade.js";
import type { TradeDetails } from "../storage/data-manager.js";

/**
 * A trade's CSV export: its position history (InfluxDB snapshots, when InfluxDB answered) and its
 * stop-loss updates (the journal), one row each, oldest first within each kind, streamed row by
 * row. The `kind` column says which a row is (`position` or `stop_loss`); `time` is ISO 8601 UTC
 * for both. Position columns come as InfluxDB returns them (Flux bookkeeping columns dropped).
 */

/** Flux bookkeeping columns that say nothing about the position. */
const FLUX_COLUMNS = new Set(["result", "table", "_start", "_stop", "_measurement", "_time"]);
const STOP_COLUMNS = ["stop", "highest_price", "sl_type"] as const;

export const EXPORT_KINDS = { position: "position", stopLoss: "stop_loss" } as const;

/** The header: kind, time, every position column in first-seen order, then the stop columns. */
export function exportColumns(history: readonly Record<string, unknown>[]): string[] {
  const columns = ["kind", "time"];
  const seen = new Set<string>([...FLUX_COLUMNS, ...columns, ...STOP_COLUMNS]);
  for (const row of history) {
    for (const key of Object.keys(row)) {
      if (seen.has(key)) continue;
      seen.add(key);
      columns.push(key);
    }
  }
  return [...columns, ...STOP_COLUMNS];
}

/** Writes the export of `details` to `out` (which it ends), waiting whenever `out` is full. */
export async function writeTradeCsv(details: TradeDetails, out: Writable): Promise<void> {
  const history = details.position_history ?? [];
  const csv = stringify({
    header: true,
    columns: exportColumns(history),
    cast: {
      // A cell starting like a formula is made inert for spreadsheets.
      string: (value) => (/^[=+\-@\t\r]/.test(value) ? `'${value}` : value),
      date: (value) => value.toISOString(),
      boolean: (value) => (value ? "true" : "false"),
    },
  });
  csv.pipe(out);
  const write = async (row: Record<string, unknown>) => {
    if (!csv.write(row)) await once(csv, "drain");
  };
  for (const row of history) {
    const { _time, ...rest } = row;
    await write({ ...rest, kind: EXPORT_KINDS.position, time: isoTime(_time) });
  }
  for (const update of details.sl_timeline) await write(stopRow(update));
  csv.end();
  await once(out, "finish");
}

function stopRow(u: StoredSlUpdate): Record<string, unknown> {
  return {
    kind: EXPORT_KINDS.stopLoss,
    time: new Date(u.ts * 1000).toISOString(),
    stop: u.stop,
    highest_price: u.highest_price,
    sl_type: u.sl_type,
  };
}

function isoTime(value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "string" && !Number.isNaN(Date.parse(value))) return new Date(value).toISOString();
  return value;
}
