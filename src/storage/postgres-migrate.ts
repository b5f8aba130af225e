import type pg from "pg";
import { SchemaVersionError, StateError } from "../domain/errors.js";
import {
  type HistoryMode,
  type HistorySchemaSettings,
  PG_MIGRATIONS,
  PG_SCHEMA_VERSION,
  PG_TABLES,
  type PgMigration,
} from "../schema/postgres.js";

export interface PgMigrationResult {
  from: number;
  to: number;
  mode: HistoryMode;
}

/** Serialises migrators of one database (two VELOX processes starting at once). */
const MIGRATION_LOCK = 0x7e10_0001;

export const DEFAULT_SCHEMA_SETTINGS: HistorySchemaSettings = { chunkDays: 1, compressAfterDays: 7 };

/** Whether the TimescaleDB extension can be created in this database (installed on the server). */
export async function timescaleAvailable(client: pg.ClientBase): Promise<boolean> {
  const { rows } = await client.query("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'");
  return rows.length > 0;
}

/** The version and mode recorded in the database; version 0 when it was never migrated. */
export async function currentPgSchema(
  client: pg.ClientBase,
): Promise<{ version: number; mode: HistoryMode | undefined }> {
  const { rows: found } = await client.query("SELECT to_regclass($1) IS NOT NULL AS present", [
    PG_TABLES.schemaVersion,
  ]);
  if (!found[0]?.present) return { version: 0, mode: undefined };
  const { rows } = await client.query(
    `SELECT version, mode FROM ${PG_TABLES.schemaVersion} ORDER BY version DESC LIMIT 1`,
  );
  const row = rows[0] as { version: number; mode: HistoryMode } | undefined;
  return { version: row?.version ?? 0, mode: row?.mode };
}

/**
 * Brings the database up to `target` (default: the latest version). Each pending migration runs
 * in its own transaction with its version row, under an advisory lock, so concurrent starts
 * serialise and a crash leaves a clean, recorded version. The mode is chosen by the first
 * migration (TimescaleDB when the server has the extension, unless `mode` says otherwise) and
 * kept for every later one. A database migrated by a newer build is refused.
 */
export async function migratePostgres(
  client: pg.ClientBase,
  options: {
    settings?: HistorySchemaSettings;
    mode?: HistoryMode;
    target?: number;
    migrations?: readonly PgMigration[];
  } = {},
): Promise<PgMigrationResult> {
  const migrations = options.migrations ?? PG_MIGRATIONS;
  const settings = options.settings ?? DEFAULT_SCHEMA_SETTINGS;
  const target = options.target ?? PG_SCHEMA_VERSION;
  const before = await currentPgSchema(client);
  if (before.version > PG_SCHEMA_VERSION) throw new SchemaVersionError(before.version, PG_SCHEMA_VERSION);
  let mode: HistoryMode =
    before.mode ?? options.mode ?? ((await timescaleAvailable(client)) ? "timescale" : "native");
  let to = before.version;
  for (const migration of migrations) {
    if (migration.version <= before.version || migration.version > target) continue;
    await client.query("BEGIN");
    try {
      await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      // Re-read under the lock: another process may have applied it meanwhile.
      const now = await currentPgSchema(client);
      mode = now.mode ?? mode;
      if (now.version < migration.version) {
        if (migration.version === 1) {
          if (mode === "timescale") await client.query("CREATE EXTENSION IF NOT EXISTS timescaledb");
          await client.query(
            `CREATE TABLE ${PG_TABLES.schemaVersion} (
               version    integer     PRIMARY KEY,
               mode       text        NOT NULL CHECK (mode IN ('native', 'timescale')),
               applied_at timestamptz NOT NULL DEFAULT now()
             )`,
          );
        }
        await client.query(migration.sql(mode, settings));
        await client.query(`INSERT INTO ${PG_TABLES.schemaVersion} (version, mode) VALUES ($1, $2)`, [
          migration.version,
          mode,
        ]);
      }
      await client.query("COMMIT");
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw new StateError(
        `PostgreSQL migration ${migration.version} (${migration.description}) failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    to = migration.version;
  }
  return { from: before.version, to, mode };
}
