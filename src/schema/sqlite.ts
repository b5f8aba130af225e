/**
 * The trade journal's SQLite schema, as an ordered list of migrations. Each migration runs once,
 * in its own transaction, and is recorded in `schema_version`; the migrator lives in
 * src/storage/sqlite-migrate.ts.
 *
 * Every time column is unix seconds as REAL (a millisecond fraction is allowed): Grafana's SQLite
 * data source reads numeric epoch seconds as time, whereas SQLite TIMESTAMP text would need casts
 * in every panel query.
 *
 * Never edit a migration that has shipped; append a new one instead.
 */

/** Table names, defined once: the journal, the dashboards and the tests take them from here. */
export const TABLES = {
  schemaVersion: "schema_version",
  trades: "trades",
  signalConditions: "signal_conditions",
  slUpdates: "sl_updates",
} as const;

export interface Migration {
  /** Strictly increasing, starting at 1; version 0 is an empty file. */
  readonly version: number;
  readonly description: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "initial schema: trades, signal_conditions, sl_updates",
    // Plain CREATE TABLE (no IF NOT EXISTS): a file that already holds a table of the same name but
    // no schema_version row was made by something else, and failing loudly beats adopting it.
    sql: `
CREATE TABLE schema_version (
  version    INTEGER NOT NULL,
  applied_at REAL    NOT NULL
);

CREATE TABLE trades (
  trade_id          TEXT PRIMARY KEY,
  strategy_id       TEXT NOT NULL,
  symbol            TEXT NOT NULL,
  action            TEXT NOT NULL CHECK (action IN ('BUY', 'SELL')),
  side              TEXT NOT NULL CHECK (side IN ('long', 'short')),
  entry_time        REAL NOT NULL,
  entry_price       REAL NOT NULL CHECK (entry_price > 0),
  quantity          REAL NOT NULL CHECK (quantity > 0),
  exit_time         REAL,
  exit_price        REAL,
  pnl               REAL,
  pnl_pct           REAL,
  fees              REAL NOT NULL DEFAULT 0 CHECK (fees >= 0),
  stop_loss_initial REAL,
  max_price         REAL,
  min_price         REAL,
  exit_reason       TEXT,
  duration_seconds  REAL,
  status            TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  created_at        REAL NOT NULL,
  updated_at        REAL NOT NULL,
  -- An open trade has no exit; a closed one has all of it. Dashboards rely on this.
  CHECK (
    (status = 'open' AND exit_time IS NULL AND exit_price IS NULL AND pnl IS NULL)
    OR (status = 'closed' AND exit_time IS NOT NULL AND exit_price IS NOT NULL AND pnl IS NOT NULL)
  )
);

CREATE INDEX idx_trades_strategy_id ON trades(strategy_id);
CREATE INDEX idx_trades_symbol      ON trades(symbol);
CREATE INDEX idx_trades_entry_time  ON trades(entry_time);
CREATE INDEX idx_trades_status      ON trades(status);
-- Serves the per-strategy stats window (closed trades by exit time).
CREATE INDEX idx_trades_strategy_exit_time ON trades(strategy_id, exit_time);

CREATE TABLE signal_conditions (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  trade_id        TEXT NOT NULL REFERENCES trades(trade_id),
  signal_type     TEXT NOT NULL CHECK (signal_type IN ('entry', 'exit')),
  conditions_json TEXT NOT NULL,
  timestamp       REAL NOT NULL
);

CREATE INDEX idx_signal_conditions_trade_id ON signal_conditions(trade_id);

CREATE TABLE sl_updates (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  trade_id      TEXT NOT NULL REFERENCES trades(trade_id),
  ts            REAL NOT NULL,
  stop          REAL NOT NULL,
  highest_price REAL NOT NULL,
  sl_type       TEXT NOT NULL
);

CREATE INDEX idx_sl_updates_trade_id_ts ON sl_updates(trade_id, ts);
`,
  },
];

/** The schema version this build writes and understands: the last migration's. */
/**
 * How often a trade's trailing stop is journaled at most, by default (VELOX_JOURNAL_STOP_INTERVAL_MS):
 * once a second, so journal rows grow with open trades × seconds, not with ticks.
 */
export const DEFAULT_STOP_INTERVAL_MS = 1000;

export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
