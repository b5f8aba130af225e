import { join } from "node:path";
import { InfluxDB } from "@influxdata/influxdb-client";
import type { Config, EnvName } from "../config.js";
import { ConfigError, errorMessage, VeloxError } from "../domain/errors.js";
import { ensureWritableDirectory } from "../files.js";
import type { VeloxLogger } from "../log.js";
import { DataManager, type PositionHistorySource } from "../storage/data-manager.js";
import { HistoryArchiver, redisFigures } from "../storage/history-archiver.js";
import { InfluxQueryClient } from "../storage/influx-queries.js";
import { InfluxWriter } from "../storage/influx-writer.js";
import { INFLUX_SPOOL_FILE } from "../storage/line-spool.js";
import { PostgresHistory } from "../storage/postgres-history.js";
import { DEFAULT_SCHEMA_SETTINGS } from "../storage/postgres-migrate.js";
import { RedisCache } from "../storage/redis-cache.js";
import { TradeJournal, type TradeJournalOptions } from "../storage/trade-journal.js";

export interface Stores {
  journal: TradeJournal;
  cache: RedisCache | undefined;
  series: InfluxWriter | undefined;
  /** The PostgreSQL history store and its archiver, when VELOX_POSTGRES_URL is set. */
  postgres: { history: PostgresHistory; archiver: HistoryArchiver } | undefined;
  data: DataManager;
}

/**
 * Opens every configured store behind one DataManager. The journal is required (it is embedded);
 * Redis and InfluxDB only when their URLs are set, and neither being down stops the start.
 */
export function openStores(
  config: Config,
  logging: VeloxLogger,
  hooks: {
    observeJournalWrite?: TradeJournalOptions["observeWrite"];
    /** The strategies whose Redis counters the archiver keeps. */
    strategyIds?: readonly string[];
  } = {},
): Stores {
  usableDirectory(config.dataDir, "VELOX_DATA_DIR");
  const journal = startable("VELOX_SQLITE_PATH", config.sqlitePath, () =>
    TradeJournal.open(config.sqlitePath, {
      logger: logging.for("database"),
      observeWrite: hooks.observeJournalWrite,
      stopIntervalMs: config.journalStopIntervalMs,
    }),
  );
  const cache = config.redisUrl
    ? RedisCache.create(config.redisUrl, { logger: logging.for("cache") })
    : undefined;
  let series: InfluxWriter | undefined;
  let history: PositionHistorySource | undefined;
  const { influx } = config;
  const influxUrl = influx.url;
  if (influxUrl) {
    series = startable(
      "VELOX_DATA_DIR",
      join(config.dataDir, INFLUX_SPOOL_FILE),
      () =>
        new InfluxWriter({
          url: influxUrl,
          token: influx.token,
          org: influx.org,
          bucket: influx.bucket,
          spoolPath: join(config.dataDir, INFLUX_SPOOL_FILE),
          maxSpoolPoints: influx.spoolMaxPoints,
          flushIntervalMs: influx.flushIntervalMs,
          gzip: influx.gzip,
          logger: logging.for("timeseries"),
        }),
    );
    const client = new InfluxQueryClient({
      influx: new InfluxDB({ url: influxUrl, token: influx.token ?? "" }),
      org: influx.org,
      bucket: influx.bucket,
      mode: influx.paramsMode,
    });
    history = {
      positionHistory: (tradeId, start, stop) => client.query("positionHistory", { tradeId, start, stop }),
    };
  }
  const postgres = openPostgres(config, logging, journal, cache, hooks.strategyIds ?? []);
  const data = new DataManager({
    journal,
    cache,
    series,
    history,
    historyStore: postgres?.history,
    cacheFlushMs: config.redisFlushMs,
    cacheIndicatorsMs: config.redisIndicatorsMs,
    logger: logging.for("database"),
  });
  return { journal, cache, series, postgres, data };
}

/**
 * The history store (not awaited: PostgreSQL being down stops nothing, rows wait in the spool) and
 * its archiver. Its spool files must be usable, like InfluxDB's.
 */
function openPostgres(
  config: Config,
  logging: VeloxLogger,
  journal: TradeJournal,
  cache: RedisCache | undefined,
  strategyIds: readonly string[],
): Stores["postgres"] {
  const { postgres } = config;
  const url = postgres.url;
  if (!url) return undefined;
  const history = startable(
    "VELOX_DATA_DIR",
    config.dataDir,
    () =>
      new PostgresHistory({
        url,
        spoolDir: config.dataDir,
        maxSpoolRows: postgres.spoolMaxRows,
        flushIntervalMs: postgres.flushIntervalMs,
        settings: { ...DEFAULT_SCHEMA_SETTINGS, chunkDays: postgres.chunkDays },
        logger: logging.for("history"),
      }),
  );
  const archiver = new HistoryArchiver({
    target: history,
    journal,
    ...(cache ? { figures: () => redisFigures(cache, strategyIds) } : {}),
    intervalMs: postgres.archiveSeconds * 1000,
    logger: logging.for("history"),
  });
  return { history, archiver };
}

/** A directory VELOX can create files in, or a ConfigError naming its setting. */
function usableDirectory(dir: string, setting: EnvName): void {
  try {
    ensureWritableDirectory(dir);
  } catch (err) {
    throw new ConfigError(setting, `${dir}: ${fileProblem(err)}`);
  }
}

/**
 * Opens a store on `file`; what the file system or SQLite refuses (a directory, no permission, a
 * file that is not SQLite, a read-only file) becomes a ConfigError naming the setting and the file.
 * VELOX's own refusals (a newer schema, a foreign table) pass unchanged: they say it already.
 */
function startable<T>(setting: EnvName, file: string, open: () => T): T {
  try {
    return open();
  } catch (err) {
    if (err instanceof VeloxError) throw err;
    throw new ConfigError(setting, `${file}: ${fileProblem(err)}`);
  }
}

const FILE_PROBLEMS: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "permission denied",
  EISDIR: "is a directory",
  ENOTDIR: "a part of the path is not a directory",
  EEXIST: "exists and is not a directory",
  EROFS: "on a read-only file system",
  ENOSPC: "no space left on the device",
  SQLITE_CANTOPEN: "cannot be opened (a directory, or no permission)",
  SQLITE_NOTADB: "is not an SQLite database",
  SQLITE_READONLY: "is read-only",
  SQLITE_CORRUPT: "is corrupt",
  SQLITE_IOERR: "cannot be read or written (I/O error)",
  SQLITE_FULL: "no space left on the device",
};

function fileProblem(err: unknown): string {
  const code = String((err as { code?: unknown }).code ?? "");
  const known = FILE_PROBLEMS[code] ?? FILE_PROBLEMS[code.split("_").slice(0, 2).join("_")];
  return known ? `${known} (${code})` : errorMessage(err);
}
