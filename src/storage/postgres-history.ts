import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pg from "pg";
import { from as copyFrom } from "pg-copy-streams";
import type { Logger } from "pino";
import { errorMessage, SchemaVersionError } from "../domain/errors.js";
import type { Tick } from "../domain/tick.js";
import {
  HISTORY_COLUMNS,
  HISTORY_TABLES,
  type HistoryMode,
  type HistorySchemaSettings,
  type HistoryTable,
  PG_TABLES,
} from "../schema/postgres.js";
import type { FillRecord, MetricRecord } from "./history-rows.js";
import { LineSpool } from "./line-spool.js";
import { DEFAULT_SCHEMA_SETTINGS, migratePostgres } from "./postgres-migrate.js";
import { DailyPartitions, daysAhead } from "./postgres-partitions.js";

/** The spool file of one history table inside the data directory. */
export const historySpoolFile = (table: HistoryTable) => `postgres-spool-${table}.db`;

export interface PostgresHistoryOptions {
  url: string;
  /** Where the per-table spools live (the data directory). */
  spoolDir: string;
  /** Bound of each table's on-disk spool, in rows; beyond it the oldest are dropped (counted). */
  maxSpoolRows: number;
  /** Longest a row waits in memory before it is copied; default 1000 ms. */
  flushIntervalMs?: number;
  /** Rows per COPY; a buffer this full is cut at once. Default 5000. */
  batchRows?: number;
  /** Native mode: days of partitions kept created ahead of today. Default 3. */
  partitionsAhead?: number;
  /** Native mode: how often the 1-minute materialized view is refreshed. Default 60 s. */
  aggregateRefreshMs?: number;
  /** A statement that takes longer fails (a frozen server must not hang the writer). Default 15 s. */
  queryTimeoutMs?: number;
  /** Forces a mode for a new database (default: TimescaleDB when the server has it). */
  mode?: HistoryMode;
  settings?: HistorySchemaSettings;
  logger?: Logger;
}

export interface HistoryStats {
  up: boolean;
  mode: HistoryMode | undefined;
  /** New rows per table (a row PostgreSQL already had is not counted again). */
  rowsWritten: Record<HistoryTable, number>;
  /** Rows skipped by ON CONFLICT DO NOTHING: a replay of what had already arrived. */
  rowsDuplicate: number;
  bufferedRows: number;
  spoolRows: number;
  batchesSpooled: number;
  batchesReplayed: number;
  droppedRows: number;
  writeErrors: number;
  partitionsCreated: number;
  aggregateRefreshes: number;
  /** Epoch ms of the last batch PostgreSQL took; undefined before the first. */
  lastWriteMs: number | undefined;
}

/** PostgreSQL's answers that mean the setting is wrong, not that the server is away (SQLSTATE → what to do). */
const CONFIGURATION_ERRORS: Record<string, string> = {
  "3D000": "create the database, e.g. createdb, or fix the URL",
  "28P01": "check the password (VELOX_POSTGRES_PASSWORD_FILE)",
  "28000": "the server refuses this user: check pg_hba.conf and the user name",
  "42501": "the user may not create the history tables: grant it CREATE on the schema",
};

/** In memory at most this many batches' rows (per table) before they go to the spool instead. */
const MEMORY_BATCHES = 4;
const MAX_BACKOFF_MS = 5_000;

/** COPY text format: backslash, tab, newline and carriage return are escaped; null is \N. */
export function copyText(value: string | null): string {
  if (value === null) return "\\N";
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) =>
        c === "\\" ? "\\\\" : c === "\t" ? "\\t" : c === "\n" ? "\\n" : "\\r",
      )
    : value;
}

/** Epoch ms (a fraction kept to the microsecond) as an ISO-8601 UTC timestamp for timestamptz. */
export function isoTimestamp(ms: number): string {
  const whole = Math.floor(ms);
  const iso = new Date(whole).toISOString();
  const micros = Math.min(999, Math.round((ms - whole) * 1000));
  return micros === 0 ? iso : `${iso.slice(0, 23)}${String(micros).padStart(3, "0")}Z`;
}

const num = (n: number) => (Number.isFinite(n) ? String(n) : "\\N");

/** A tick as its `price_data` row in COPY text (the columns of HISTORY_COLUMNS.price_data, in order). */
export function priceRow(tick: Tick): string {
  return `${copyText(tick.symbol)}\t${isoTimestamp(tick.timestamp)}\t${num(tick.open)}\t${num(tick.high)}\t${num(tick.low)}\t${num(tick.close)}\t${num(tick.volume)}\t${copyText(tick.source)}`;
}

/**
 * The PostgreSQL history store (seed 003): price, trade and metrics history, written in batches
 * with COPY and never awaited per tick. Rows wait in memory at most `flushIntervalMs`, then go to
 * PostgreSQL; while it is down (or a spool still holds older rows) they go to a bounded on-disk
 * spool per table and are replayed in order when it is back. Each batch is copied into a staging
 * table and inserted with ON CONFLICT DO NOTHING in one transaction, so a batch sent twice (a
 * crash between commit and spool removal, an archival pass over rows already written) adds
 * nothing.
 */
export class PostgresHistory {
  private readonly pool: pg.Pool;
  private readonly log: Logger | undefined;
  private readonly spools: Record<HistoryTable, LineSpool>;
  private readonly buffers: Record<HistoryTable, string[]>;
  /** Cut batches not yet sent, per table, oldest first. */
  private readonly outbox: Record<HistoryTable, string[][]>;
  private readonly partitions = new DailyPartitions();
  private readonly flushTimer: NodeJS.Timeout;
  private readonly refreshTimer: NodeJS.Timeout | undefined;
  private readonly batchRows: number;
  private readonly partitionsAhead: number;
  private mode: HistoryMode | undefined;
  private migrated = false;
  private disabled = false;
  private up = false;
  private failures = 0;
  private retryAt = 0;
  private cycle: Promise<void> = Promise.resolve();
  /** Cycles asked for and not yet finished. */
  private cycling = 0;
  private closed = false;
  private lastAheadDay = "";
  private readonly counts = {
    rowsDuplicate: 0,
    batchesSpooled: 0,
    batchesReplayed: 0,
    writeErrors: 0,
    partitionsCreated: 0,
    aggregateRefreshes: 0,
  };
  private readonly written: Record<HistoryTable, number> = { price_data: 0, trade_data: 0, metrics_data: 0 };
  private lastWriteMs: number | undefined;

  constructor(private readonly options: PostgresHistoryOptions) {
    this.log = options.logger;
    this.batchRows = options.batchRows ?? 5_000;
    this.partitionsAhead = options.partitionsAhead ?? 3;
    const timeout = options.queryTimeoutMs ?? 15_000;
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: 2,
      connectionTimeoutMillis: Math.min(timeout, 5_000),
      query_timeout: timeout,
      idleTimeoutMillis: 30_000,
      application_name: "velox",
    });
    // An idle connection the server drops must not take the process down; the next use reconnects.
    this.pool.on("error", (err) =>
      this.log?.debug({ err: errorMessage(err) }, "idle PostgreSQL connection closed"),
    );
    const spool = (table: HistoryTable) =>
      new LineSpool(join(options.spoolDir, historySpoolFile(table)), { maxPoints: options.maxSpoolRows });
    this.spools = {
      price_data: spool("price_data"),
      trade_data: spool("trade_data"),
      metrics_data: spool("metrics_data"),
    };
    this.buffers = { price_data: [], trade_data: [], metrics_data: [] };
    this.outbox = { price_data: [], trade_data: [], metrics_data: [] };
    const spooled = this.spoolRows();
    if (spooled > 0)
      this.log?.info({ spool_rows: spooled }, "PostgreSQL spool holds rows from an earlier run: replaying");
    // One cycle at a time: while PostgreSQL is slow, ticks of the timer do not queue up behind it.
    this.flushTimer = setInterval(() => {
      if (!this.cycling) void this.flush();
    }, options.flushIntervalMs ?? 1_000);
    this.flushTimer.unref();
    const refreshMs = options.aggregateRefreshMs ?? 60_000;
    this.refreshTimer = setInterval(() => void this.refreshAggregate(), refreshMs);
    this.refreshTimer.unref();
  }

  /** A tick as one `price_data` row. */
  writePrice(tick: Tick): void {
    this.push("price_data", priceRow(tick));
  }

  writeFill(fill: FillRecord): void {
    this.push(
      "trade_data",
      [
        copyText(fill.order_id),
        isoTimestamp(fill.timestamp),
        copyText(fill.trade_id),
        copyText(fill.strategy_id),
        copyText(fill.symbol),
        fill.side,
        num(fill.price),
        num(fill.quantity),
        num(fill.fees),
        fill.pnl === null ? "\\N" : num(fill.pnl),
      ].join("\t"),
    );
  }

  writeMetrics(rows: readonly MetricRecord[]): void {
    for (const row of rows) {
      if (!Number.isFinite(row.value)) continue;
      this.push(
        "metrics_data",
        `${copyText(row.metric_name)}\t${isoTimestamp(row.timestamp)}\t${row.value}\t${copyText(JSON.stringify(row.labels))}`,
      );
    }
  }

  /**
   * Sends what is buffered (or spools it while PostgreSQL is down). Resolves when every row given
   * so far is in PostgreSQL or in a spool: durable either way.
   */
  flush(): Promise<void> {
    this.cycling++;
    this.cycle = this.cycle
      .then(() => this.runCycle())
      .catch((err: unknown) => {
        // Only the spool itself can fail here (e.g. its file went away): the rows stay in memory.
        this.counts.writeErrors++;
        this.log?.error({ err: errorMessage(err) }, "PostgreSQL spool write failed; rows kept in memory");
      })
      .finally(() => {
        this.cycling--;
      });
    return this.cycle;
  }

  stats(): HistoryStats {
    let buffered = 0;
    for (const table of HISTORY_TABLES) {
      buffered += this.buffers[table].length;
      for (const batch of this.outbox[table]) buffered += batch.length;
    }
    return {
      up: this.up,
      mode: this.mode,
      rowsWritten: { ...this.written },
      bufferedRows: buffered,
      spoolRows: this.spoolRows(),
      droppedRows: HISTORY_TABLES.reduce((sum, t) => sum + this.spools[t].droppedPoints, 0),
      lastWriteMs: this.lastWriteMs,
      ...this.counts,
    };
  }

  /** Runs `work` on a pooled connection of the history database (archival bookkeeping, tests). */
  async withClient<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      const result = await work(client);
      client.release();
      return result;
    } catch (err) {
      // A failed connection is not handed out again (a query error costs a reconnect, no more).
      client.release(true);
      throw err;
    }
  }

  /** Whether the schema is in place and PostgreSQL took the last attempt. */
  get ready(): boolean {
    return this.migrated && this.up;
  }

  /** Whether the last attempt to reach PostgreSQL failed (false before the first attempt). */
  get unreachable(): boolean {
    return this.failures > 0;
  }

  /** Flushes, then closes: what PostgreSQL did not take stays in the spools for the next run. */
  async close(): Promise<void> {
    if (this.closed) return;
    clearInterval(this.flushTimer);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    // Within a retry backoff (PostgreSQL just failed) this spools at once instead of waiting for
    // another connection attempt: a shutdown with PostgreSQL away is not held up.
    await this.flush();
    // A run's last minutes reach the 1-minute view now, not a timer period after the next start.
    await this.refreshAggregate();
    this.closed = true;
    for (const table of HISTORY_TABLES) this.spools[table].close();
    await this.pool.end().catch(() => undefined);
  }

  private push(table: HistoryTable, line: string): void {
    if (this.closed) return;
    const buffer = this.buffers[table];
    buffer.push(line);
    if (buffer.length < this.batchRows) return;
    this.cut(table);
    // Memory stays bounded while a send is slow or PostgreSQL is down: the rest waits on disk.
    if (this.outbox[table].length > MEMORY_BATCHES) this.spoolOutbox(table);
  }

  private cut(table: HistoryTable): void {
    const buffer = this.buffers[table];
    if (buffer.length === 0) return;
    this.outbox[table].push(buffer.splice(0));
  }

  private spoolOutbox(table: HistoryTable): void {
    // One by one, each out of memory only once it is on disk.
    const outbox = this.outbox[table];
    for (let batch = outbox[0]; batch; batch = outbox[0]) {
      this.spools[table].append(batch);
      outbox.shift();
      this.counts.batchesSpooled++;
    }
  }

  private spoolRows(): number {
    return HISTORY_TABLES.reduce((sum, t) => sum + this.spools[t].points(), 0);
  }

  private async runCycle(): Promise<void> {
    if (this.closed) return;
    for (const table of HISTORY_TABLES) this.cut(table);
    const waiting = Date.now() < this.retryAt;
    if (waiting || this.disabled) {
      for (const table of HISTORY_TABLES) this.spoolOutbox(table);
      return;
    }
    try {
      await this.prepare();
      for (const table of HISTORY_TABLES) {
        // Older rows first: while the spool holds any, new batches queue behind them on disk.
        if (this.spools[table].batches() > 0) this.spoolOutbox(table);
        await this.drainSpool(table);
        // Taken out before it is sent: while the send waits, push() may move the rest to the spool.
        for (let batch = this.outbox[table].shift(); batch; batch = this.outbox[table].shift()) {
          try {
            await this.send(table, batch);
          } catch (err) {
            this.outbox[table].unshift(batch);
            throw err;
          }
        }
      }
      this.noteUp();
    } catch (err) {
      this.noteDown(err);
      for (const table of HISTORY_TABLES) this.spoolOutbox(table);
    }
  }

  /** Migrates once, and keeps native partitions created `partitionsAhead` days ahead. */
  private async prepare(): Promise<void> {
    if (!this.migrated) {
      await this.withClient(async (client) => {
        try {
          const result = await migratePostgres(client, {
            settings: this.options.settings ?? DEFAULT_SCHEMA_SETTINGS,
            ...(this.options.mode ? { mode: this.options.mode } : {}),
          });
          this.mode = result.mode;
          this.log?.info(
            { schema_from: result.from, schema_to: result.to, mode: result.mode },
            "PostgreSQL history store ready",
          );
        } catch (err) {
          if (err instanceof SchemaVersionError) {
            // Written by a newer build: nothing is sent (rows wait in the spool) until that is sorted out.
            this.disabled = true;
            this.log?.error(
              { err: err.message },
              "PostgreSQL history schema is newer than this build: rows are spooled, not sent",
            );
          }
          throw err;
        }
      });
      this.migrated = true;
    }
    const today = new Date().toISOString().slice(0, 10);
    if (this.mode === "native" && today !== this.lastAheadDay) {
      await this.withClient(async (client) => {
        this.counts.partitionsCreated += (
          await this.partitions.ensure(client, daysAhead(Date.now(), this.partitionsAhead))
        ).length;
      });
      this.lastAheadDay = today;
    }
  }

  private async drainSpool(table: HistoryTable): Promise<void> {
    const spool = this.spools[table];
    for (let batch = spool.peek(); batch; batch = spool.peek()) {
      await this.send(table, batch.lines);
      spool.remove(batch.id);
      this.counts.batchesReplayed++;
    }
  }

  /** One batch: COPY into the session's staging table, then insert what is new, in one transaction. */
  private async send(table: HistoryTable, lines: readonly string[]): Promise<void> {
    const columns = HISTORY_COLUMNS[table].join(", ");
    const staging = `velox_stage_${table}`;
    await this.withClient(async (client) => {
      if (this.mode === "native") {
        // The second field of every row is its timestamp, ISO text: its first 10 characters are the day.
        const days = new Set(
          lines.map((line) => line.slice(line.indexOf("\t") + 1, line.indexOf("\t") + 11)),
        );
        this.counts.partitionsCreated += (await this.partitions.ensure(client, days)).length;
      }
      await client.query("BEGIN");
      try {
        await client.query(
          `CREATE TEMP TABLE IF NOT EXISTS ${staging} (LIKE ${table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS`,
        );
        const copy = client.query(copyFrom(`COPY ${staging} (${columns}) FROM STDIN`));
        await pipeline(Readable.from([`${lines.join("\n")}\n`]), copy);
        const inserted = await client.query(
          `INSERT INTO ${table} (${columns}) SELECT ${columns} FROM ${staging} ON CONFLICT DO NOTHING`,
        );
        await client.query("COMMIT");
        const fresh = inserted.rowCount ?? 0;
        this.written[table] += fresh;
        this.counts.rowsDuplicate += lines.length - fresh;
        this.lastWriteMs = Date.now();
      } catch (err) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw err;
      }
    });
  }

  private async refreshAggregate(): Promise<void> {
    // TimescaleDB refreshes its continuous aggregate by policy; native mode refreshes here.
    if (this.mode !== "native" || !this.ready || this.closed) return;
    try {
      await this.withClient(async (client) => {
        const { rows } = await client.query("SELECT relispopulated FROM pg_class WHERE relname = $1", [
          PG_TABLES.price1m,
        ]);
        // CONCURRENTLY (readers never wait) needs a populated view; the first refresh fills it.
        const concurrently = rows[0]?.relispopulated ? "CONCURRENTLY " : "";
        await client.query(`REFRESH MATERIALIZED VIEW ${concurrently}${PG_TABLES.price1m}`);
      });
      this.counts.aggregateRefreshes++;
    } catch (err) {
      this.log?.warn({ err: errorMessage(err) }, "refresh of the 1-minute OHLCV view failed");
    }
  }

  /** Refreshes the 1-minute view now (native mode), as the timer does. */
  refreshNow(): Promise<void> {
    return this.refreshAggregate();
  }

  private noteUp(): void {
    if (!this.up && this.failures > 0)
      this.log?.info({ spool_rows: this.spoolRows() }, "PostgreSQL reachable again");
    this.up = true;
    this.failures = 0;
    this.retryAt = 0;
  }

  private noteDown(err: unknown): void {
    this.counts.writeErrors++;
    if (this.up || this.failures === 0) {
      const fix = CONFIGURATION_ERRORS[(err as { code?: string }).code ?? ""];
      if (fix) {
        // Not an outage: it stays so until someone changes the setting or the server.
        this.log?.error(
          { err: errorMessage(err), spool_rows: this.spoolRows() },
          `VELOX_POSTGRES_URL: ${errorMessage(err)} (${fix}); history rows go to the spool meanwhile`,
        );
      } else {
        this.log?.warn(
          { err: errorMessage(err), spool_rows: this.spoolRows() },
          "PostgreSQL unavailable: history rows go to the spool",
        );
      }
    }
    this.up = false;
    this.failures++;
    this.retryAt = Date.now() + Math.min(MAX_BACKOFF_MS, 250 * 2 ** Math.min(this.failures, 5));
  }
}
