import { join } from "node:path";
import { InfluxDB } from "@influxdata/influxdb-client";
import type { Config } from "../config.js";
import type { VeloxLogger } from "../log.js";
import { DataManager, type PositionHistorySource } from "../storage/data-manager.js";
import { InfluxQueryClient } from "../storage/influx-queries.js";
import { INFLUX_SPOOL_FILE } from "../storage/influx-spool.js";
import { InfluxWriter } from "../storage/influx-writer.js";
import { RedisCache } from "../storage/redis-cache.js";
import { TradeJournal, type TradeJournalOptions } from "../storage/trade-journal.js";

export interface Stores {
  journal: TradeJournal;
  cache: RedisCache | undefined;
  series: InfluxWriter | undefined;
  data: DataManager;
}

/**
 * Opens every configured store behind one DataManager. The journal is required (it is embedded);
 * Redis and InfluxDB only when their URLs are set, and neither being down stops the start.
 */
export function openStores(
  config: Config,
  logging: VeloxLogger,
  hooks: { observeJournalWrite?: TradeJournalOptions["observeWrite"] } = {},
): Stores {
  const journal = TradeJournal.open(config.sqlitePath, {
    logger: logging.for("database"),
    observeWrite: hooks.observeJournalWrite,
  });
  const cache = config.redisUrl
    ? RedisCache.create(config.redisUrl, { logger: logging.for("cache") })
    : undefined;
  let series: InfluxWriter | undefined;
  let history: PositionHistorySource | undefined;
  const { influx } = config;
  if (influx.url) {
    series = new InfluxWriter({
      url: influx.url,
      token: influx.token,
      org: influx.org,
      bucket: influx.bucket,
      spoolPath: join(config.dataDir, INFLUX_SPOOL_FILE),
      maxSpoolPoints: influx.spoolMaxPoints,
      flushIntervalMs: influx.flushIntervalMs,
      logger: logging.for("timeseries"),
    });
    const client = new InfluxQueryClient({
      influx: new InfluxDB({ url: influx.url, token: influx.token ?? "" }),
      org: influx.org,
      bucket: influx.bucket,
      mode: influx.paramsMode,
    });
    history = {
      positionHistory: (tradeId, start, stop) => client.query("positionHistory", { tradeId, start, stop }),
    };
  }
  const data = new DataManager({
    journal,
    cache,
    series,
    history,
    cacheFlushMs: config.redisFlushMs,
    logger: logging.for("database"),
  });
  return { journal, cache, series, data };
}
