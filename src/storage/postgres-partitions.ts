import type pg from "pg";
import { utcDay } from "../domain/time.js";
import { HISTORY_TABLES, type HistoryTable, partitionName } from "../schema/postgres.js";

const DAY_MS = 86_400_000;
/** Serialises partition creation across processes (CREATE … IF NOT EXISTS races on the catalog). */
const PARTITION_LOCK = 0x7e10_0002;

/** The UTC days from `fromMs`'s day, `ahead` more after it. */
export function daysAhead(fromMs: number, ahead: number): string[] {
  const first = Date.parse(`${utcDay(fromMs)}T00:00:00Z`);
  return Array.from({ length: ahead + 1 }, (_, i) => utcDay(first + i * DAY_MS));
}

/**
 * Native mode's daily partitions: creates the missing ones of `days` for every history table and
 * remembers what exists, so a batch whose days are all known costs no round trip. Only validated
 * `YYYY-MM-DD` strings reach the DDL (partitionName checks them), never a row's text.
 */
export class DailyPartitions {
  private readonly known = new Set<string>();

  /** Creates what is missing; returns the names created by this call. */
  async ensure(
    client: pg.ClientBase,
    days: Iterable<string>,
    tables: readonly HistoryTable[] = HISTORY_TABLES,
  ) {
    const missing: { table: HistoryTable; day: string; name: string }[] = [];
    for (const day of new Set(days)) {
      for (const table of tables) {
        const name = partitionName(table, day);
        if (!this.known.has(name)) missing.push({ table, day, name });
      }
    }
    if (missing.length === 0) return [];
    const created: string[] = [];
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock($1)", [PARTITION_LOCK]);
      for (const { table, day, name } of missing) {
        const next = utcDay(Date.parse(`${day}T00:00:00Z`) + DAY_MS);
        const { rows } = await client.query("SELECT to_regclass($1) IS NOT NULL AS present", [name]);
        if (!rows[0]?.present) {
          await client.query(
            `CREATE TABLE ${name} PARTITION OF ${table} FOR VALUES FROM ('${day} 00:00:00+00') TO ('${next} 00:00:00+00')`,
          );
          created.push(name);
        }
      }
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    }
    for (const { name } of missing) this.known.add(name);
    return created;
  }
}
