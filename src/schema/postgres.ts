/**
 * The PostgreSQL history store's schema (seed 003's TimescaleDB tables), as numbered migrations.
 * Each migration runs once, in its own transaction, and is recorded in `velox_schema_version`;
 * the migrator lives in src/storage/postgres-migrate.ts. Never edit a migration that has shipped;
 * append a new one.
 *
 * Two modes, chosen once per database when its first migration runs:
 * - `timescale` (the extension is available): hypertables with a configurable chunk interval, a
 *   compression policy and a continuous aggregate of 1-minute OHLCV;
 * - `native` (plain PostgreSQL, e.g. this project's machines): declarative range partitions by
 *   UTC day, created ahead by VELOX, and the 1-minute OHLCV as a materialized view VELOX refreshes
 *   on a timer.
 */

/** Table and view names, defined once: the store, the dashboards and the tests take them from here. */
export const PG_TABLES = {
  schemaVersion: "velox_schema_version",
  archiveState: "velox_archive_state",
  priceData: "price_data",
  tradeData: "trade_data",
  metricsData: "metrics_data",
  price1m: "price_data_1m",
} as const;

/** The tables rows are copied into: one spool, one buffer and one staging table each. */
export const HISTORY_TABLES = [PG_TABLES.priceData, PG_TABLES.tradeData, PG_TABLES.metricsData] as const;
export type HistoryTable = (typeof HISTORY_TABLES)[number];

/** Columns in COPY order; the store writes rows in exactly this order. */
export const HISTORY_COLUMNS: Record<HistoryTable, readonly string[]> = {
  price_data: ["symbol", "timestamp", "open", "high", "low", "close", "volume", "source"],
  trade_data: [
    "order_id",
    "timestamp",
    "trade_id",
    "strategy_id",
    "symbol",
    "side",
    "price",
    "quantity",
    "fees",
    "pnl",
  ],
  metrics_data: ["metric_name", "timestamp", "value", "labels"],
};

/**
 * The `metric_name` of each figure the archiver copies from Redis into `metrics_data`; the History
 * dashboard selects by the same names.
 */
export const ARCHIVED_METRIC = {
  /** A strategy's counter (`strategy.trades`, `strategy.pnl`, …), labelled `strategy_id`. */
  strategy: (counter: "trades" | "wins" | "losses" | "pnl" | "signals") => `strategy.${counter}`,
  /** Today's daily figure, labelled `day`. */
  daily: (name: string) => `daily.${name}`,
  performance: (name: string) => `performance.${name}`,
} as const;

export type HistoryMode = "native" | "timescale";

export interface HistorySchemaSettings {
  /** TimescaleDB chunk interval, whole days (native partitions are always one day). */
  chunkDays: number;
  /** TimescaleDB: chunks older than this are compressed. */
  compressAfterDays: number;
}

export interface PgMigration {
  /** Strictly increasing, starting at 1; version 0 is an empty database. */
  readonly version: number;
  readonly description: string;
  readonly sql: (mode: HistoryMode, settings: HistorySchemaSettings) => string;
}

const days = (n: number) => {
  // Only whole numbers reach the DDL (it takes no bound parameters).
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`expected whole days >= 1, got ${n}`);
  return `INTERVAL '${n} days'`;
};

const PRICE_DATA = `
CREATE TABLE price_data (
  symbol    text             NOT NULL,
  timestamp timestamptz      NOT NULL,
  open      double precision NOT NULL,
  high      double precision NOT NULL,
  low       double precision NOT NULL,
  close     double precision NOT NULL,
  volume    double precision NOT NULL,
  source    text             NOT NULL,
  PRIMARY KEY (symbol, timestamp)
)`;

/** One row per fill: a trade's entry (`<trade_id>:entry`) and its exit (`<trade_id>:exit`). */
const TRADE_DATA = `
CREATE TABLE trade_data (
  order_id    text             NOT NULL,
  timestamp   timestamptz      NOT NULL,
  trade_id    text             NOT NULL,
  strategy_id text             NOT NULL,
  symbol      text             NOT NULL,
  side        text             NOT NULL CHECK (side IN ('buy', 'sell')),
  price       double precision NOT NULL,
  quantity    double precision NOT NULL,
  fees        double precision NOT NULL,
  pnl         double precision,
  PRIMARY KEY (order_id, timestamp)
)`;

const METRICS_DATA = `
CREATE TABLE metrics_data (
  metric_name text             NOT NULL,
  timestamp   timestamptz      NOT NULL,
  value       double precision NOT NULL,
  labels      jsonb            NOT NULL DEFAULT '{}',
  PRIMARY KEY (metric_name, timestamp, labels)
)`;

const BOOKKEEPING = `
CREATE TABLE velox_archive_state (
  name       text        PRIMARY KEY,
  position   jsonb       NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);`;

const partitioned = (ddl: string) => `${ddl} PARTITION BY RANGE (timestamp);`;

/** The 1-minute OHLCV of price_data, with the same columns in both modes. */
const minuteBars = (bucket: string, first: string, last: string) => `
SELECT symbol,
       ${bucket} AS bucket,
       ${first} AS open,
       max(high) AS high,
       min(low) AS low,
       ${last} AS close,
       sum(volume) AS volume,
       count(*) AS ticks
  FROM price_data
 GROUP BY symbol, bucket`;

export const PG_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    description: "history tables: price_data, trade_data, metrics_data; archive state",
    sql: (mode, settings) =>
      mode === "native"
        ? [partitioned(PRICE_DATA), partitioned(TRADE_DATA), partitioned(METRICS_DATA), BOOKKEEPING].join(
            "\n",
          )
        : [
            `${PRICE_DATA};`,
            `${TRADE_DATA};`,
            `${METRICS_DATA};`,
            BOOKKEEPING,
            ...["price_data", "trade_data", "metrics_data"].map(
              (table) =>
                `SELECT create_hypertable('${table}', 'timestamp', chunk_time_interval => ${days(settings.chunkDays)});`,
            ),
          ].join("\n"),
  },
  {
    version: 2,
    description: "1-minute OHLCV of price_data; trade lookups by trade id",
    sql: (mode, settings) =>
      [
        "CREATE INDEX trade_data_trade_id ON trade_data (trade_id, timestamp);",
        mode === "native"
          ? [
              `CREATE MATERIALIZED VIEW price_data_1m AS ${minuteBars(
                "date_trunc('minute', timestamp)",
                "(array_agg(open ORDER BY timestamp))[1]",
                "(array_agg(close ORDER BY timestamp DESC))[1]",
              )} WITH NO DATA;`,
              // Unique, so REFRESH … CONCURRENTLY can run while dashboards read it.
              "CREATE UNIQUE INDEX price_data_1m_key ON price_data_1m (symbol, bucket);",
            ].join("\n")
          : [
              `CREATE MATERIALIZED VIEW price_data_1m WITH (timescaledb.continuous) AS ${minuteBars(
                "time_bucket(INTERVAL '1 minute', timestamp)",
                "first(open, timestamp)",
                "last(close, timestamp)",
              )} WITH NO DATA;`,
              `SELECT add_continuous_aggregate_policy('price_data_1m', start_offset => INTERVAL '1 day', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');`,
              "ALTER TABLE price_data SET (timescaledb.compress, timescaledb.compress_segmentby = 'symbol');",
              `SELECT add_compression_policy('price_data', ${days(settings.compressAfterDays)});`,
            ].join("\n"),
      ].join("\n"),
  },
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]?.version ?? 0;

/** `YYYY-MM-DD` of a UTC day: the only value that reaches partition DDL. */
export const PARTITION_DAY = /^\d{4}-\d{2}-\d{2}$/;

/** The partition of `table` holding UTC day `day` (`YYYY-MM-DD`), e.g. `price_data_p20261201`. */
export function partitionName(table: HistoryTable, day: string): string {
  if (!PARTITION_DAY.test(day)) throw new RangeError(`not a UTC day: ${day}`);
  return `${table}_p${day.replaceAll("-", "")}`;
}
