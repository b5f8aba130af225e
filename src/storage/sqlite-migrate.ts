import type Database from "better-sqlite3";
import { SchemaVersionError, StateError } from "../domain/errors.js";
import { MIGRATIONS, type Migration, SCHEMA_VERSION } from "../schema/sqlite.js";

export interface MigrationResult {
  /** Version found in the file before migrating (0 for an empty file). */
  from: number;
  /** Version after migrating; always SCHEMA_VERSION on success. */
  to: number;
}

/** The version recorded in the file, or 0 when the file has never been migrated. */
export function currentSchemaVersion(db: Database.Database): number {
  const table = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    .get();
  if (table === undefined) return 0;
  const row = db.prepare("SELECT MAX(version) AS version FROM schema_version").get() as {
    version: number | null;
  };
  return row.version ?? 0;
}

/**
 * Brings `db` up to SCHEMA_VERSION. Each pending migration runs in its own transaction together
 * with its schema_version row, so a crash leaves the file at a clean, recorded version. A file
 * written by a newer build is refused rather than guessed at.
 */
export function migrate(
  db: Database.Database,
  migrations: readonly Migration[] = MIGRATIONS,
): MigrationResult {
  const from = currentSchemaVersion(db);
  const supported = migrations[migrations.length - 1]?.version ?? SCHEMA_VERSION;
  if (from > supported) throw new SchemaVersionError(from, supported);

  const record = (version: number) =>
    db
      .prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)")
      .run(version, Date.now() / 1000);

  let to = from;
  for (const migration of migrations) {
    if (migration.version <= from) continue;
    // IMMEDIATE takes the write lock up front, so two processes opening the same fresh file
    // serialise here instead of both trying to create the tables.
    const apply = db.transaction(() => {
      // Re-check under the lock: another process may have applied it while we waited.
      if (currentSchemaVersion(db) >= migration.version) return;
      db.exec(migration.sql);
      record(migration.version);
    });
    try {
      apply.immediate();
    } catch (err) {
      throw new StateError(
        `schema migration ${migration.version} (${migration.description}) failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    to = migration.version;
  }
  return { from, to };
}
