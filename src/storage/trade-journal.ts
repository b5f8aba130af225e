import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import type { Logger } from "pino";
import { z } from "zod";
import { errorMessage, NotFoundError, StateError, ValidationError, VeloxError } from "../domain/errors.js";
import {
  assertId,
  idSchema,
  parseOrThrow,
  plainOrParse,
  symbolSchema,
  unixSeconds,
} from "../domain/identifiers.js";
import {
  type NewTrade,
  newTradeSchema,
  type ParsedNewTrade,
  type ParsedSlUpdate,
  plainNewTrade,
  plainSlUpdate,
  plainTradeExit,
  pnlPercent,
  type SignalConditions,
  type SignalType,
  type SlUpdate,
  type StoredSignalConditions,
  type StoredSlUpdate,
  signalConditionsSchema,
  signalTypeSchema,
  slUpdateSchema,
  type Trade,
  type TradeExit,
  type TradeStatus,
  tradeExitSchema,
  tradeRow,
  tradeStatusSchema,
} from "../domain/trade.js";
import type { JournalOperation } from "../schema/metrics.js";
import { TABLES } from "../schema/sqlite.js";
import { migrate } from "./sqlite-migrate.js";
import { computeStrategyStats, type StrategyStats } from "./trade-stats.js";

export interface TradeJournalOptions {
  logger?: Logger;
  /**
   * Called after every write with its duration; `failed` is true when SQLite itself failed (not
   * for rejected input or a refused state change, which are the caller's errors).
   */
  observeWrite?: (operation: JournalOperation, seconds: number, failed: boolean) => void;
  /**
   * Inside groups, a trade's stop moves are journaled at most once per this many ms: a move made
   * sooner after the trade's last stop row waits (the latest one per trade) for a later commit.
   * 0 (the default) journals each group's last move per trade; the app sets
   * VELOX_JOURNAL_STOP_INTERVAL_MS (DEFAULT_STOP_INTERVAL_MS in src/schema/sqlite.ts).
   */
  stopIntervalMs?: number;
  /** Wall clock in ms for `stopIntervalMs`; default `Date.now`. */
  now?: () => number;
}

const DAY_SECONDS = 86_400;
/** Upper bound for list queries, so a typo cannot pull the whole table into memory. */
const MAX_LIST_LIMIT = 10_000;
/** Open trades whose rows a journal keeps for their close (see TradeJournal.opened); the rest are read. */
const MAX_OPENED_ROWS = 50_000;

const limitSchema = z.number().int().min(1).max(MAX_LIST_LIMIT);
const daysSchema = z.number().finite().positive();
const newTradesSchema = z.array(newTradeSchema);
const optionalId = idSchema.optional();
const optionalSymbol = symbolSchema.optional();
const optionalStatus = tradeStatusSchema.optional();

/** Where the archiver stopped in the journal: the last archived trade's updated_at and id. */
export interface TradeChangeCursor {
  updatedAt: number;
  tradeId: string;
}

/** Where a page of {@link TradeJournal.listTrades} ends: its last trade's entry time and id. */
export interface TradePageEnd {
  entryTime: number;
  tradeId: string;
}

export interface TradePageQuery {
  limit?: number;
  strategyId?: string | undefined;
  symbol?: string | undefined;
  status?: TradeStatus | undefined;
  after?: TradePageEnd | undefined;
}

export interface TradePage {
  trades: Trade[];
  /** Where the next page starts; null on the last page. */
  next: TradePageEnd | null;
}

/** Filters of `recentTrades`; an absent filter matches every trade. */
export interface RecentTradesQuery {
  limit?: number;
  strategyId?: string | undefined;
  symbol?: string | undefined;
}

type ClosedResultRow = { pnl: number; duration_seconds: number; exit_time: number };

interface SignalConditionsRow {
  id: number;
  trade_id: string;
  signal_type: SignalType;
  conditions_json: string;
  timestamp: number;
}

type Conditions = SignalConditions["conditions"];
const conditionsHeaderSchema = signalConditionsSchema.omit({ conditions: true });

/**
 * Conditions as the JSON text the journal stores. Refuses (ValidationError naming `field`) what
 * would not survive the round trip — NaN, ±Infinity, undefined, functions — where plain
 * JSON.stringify would quietly write null or drop the key.
 */
function conditionsText(conditions: unknown, field: string): string {
  if (typeof conditions !== "object" || conditions === null || Array.isArray(conditions)) {
    throw new ValidationError(field, "must be an object");
  }
  // A walk first, then the serialiser without a replacer: a replacer is a call per value and
  // takes JSON.stringify off its fast path (the journal's largest cost per fill after SQLite).
  const verdict = plainJson(conditions, 0);
  if (verdict === true) return JSON.stringify(conditions);
  let clean = verdict === undefined;
  const json = clean
    ? JSON.stringify(conditions, (_key, value: unknown) => {
        if (clean && !jsonSafe(value)) clean = false;
        return value;
      })
    : "";
  if (!clean) {
    // Rare: walk again to name the offending value's path.
    const found = firstUnsafe(conditions, field);
    throw new ValidationError(found?.path ?? field, `${found?.what ?? "a value"} cannot be stored as JSON`);
  }
  return json;
}

function jsonSafe(value: unknown): boolean {
  const kind = typeof value;
  if (kind === "number") return Number.isFinite(value);
  return kind !== "undefined" && kind !== "function" && kind !== "bigint" && kind !== "symbol";
}

/**
 * Whether every value under `value` survives JSON as it is (true), some does not (false), or the
 * walk cannot tell as the serialiser would see it (undefined: a `toJSON`, or deeper than 32
 * levels, maybe a cycle), for which the replacer decides. Arrays by index, as JSON.stringify
 * reads them (a hole is undefined); objects by their own enumerable keys.
 */
function plainJson(value: unknown, depth: number): boolean | undefined {
  if (!jsonSafe(value)) return false;
  if (typeof value !== "object" || value === null) return true;
  if (depth > 32 || typeof (value as { toJSON?: unknown }).toJSON === "function") return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = plainJson(value[i], depth + 1);
      if (inner !== true) return inner;
    }
    return true;
  }
  const record = value as Record<string, unknown>;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue;
    const inner = plainJson(record[key], depth + 1);
    if (inner !== true) return inner;
  }
  return true;
}

function firstUnsafe(value: unknown, path: string): { path: string; what: string } | undefined {
  if (!jsonSafe(value)) return { path, what: typeof value === "number" ? String(value) : typeof value };
  if (typeof value !== "object" || value === null) return undefined;
  // Arrays by index (Array.from reads a hole as undefined, as the serialiser does).
  const entries: [string, unknown][] = Array.isArray(value)
    ? Array.from(value, (inner: unknown, i) => [String(i), inner])
    : Object.entries(value);
  for (const [key, inner] of entries) {
    const found = firstUnsafe(inner, `${path}.${key}`);
    if (found) return found;
  }
  return undefined;
}

/** Wall-clock now in unix seconds (ms fraction kept), the unit of every time column. */
function nowSeconds(): number {
  return Date.now() / 1000;
}

function sqliteCode(err: unknown): string | undefined {
  return err instanceof Database.SqliteError ? err.code : undefined;
}

/**
 * The trade journal: one row per trade (entry, then exit), the signal conditions that explain it,
 * and its trailing-stop history. Backed by a single SQLite file that Grafana reads directly.
 *
 * Every statement is prepared once in the constructor and bound with parameters; no SQL is ever
 * assembled from values. Every write is validated before it touches the database.
 */
export class TradeJournal {
  private readonly log: Logger | undefined;
  private readonly observeWrite: TradeJournalOptions["observeWrite"];
  private readonly stmt: ReturnType<typeof TradeJournal.prepareAll>;
  /** Stop moves not yet journaled, the latest one per trade (see {@link trailStop}). */
  private readonly pendingStops = new Map<string, ParsedSlUpdate>();
  /** When each open trade's last stop row was journaled (wall ms). */
  private readonly stopWrittenAt = new Map<string, number>();
  /**
   * The rows of trades this connection opened and has not closed, so that a close needs no
   * `SELECT` (one statement of each fill's five). An open trade's row changes only by its close,
   * whose `UPDATE` still checks that it is open. Dropped with a group that is rolled back.
   */
  private readonly opened = new Map<string, Trade>();
  private readonly stopIntervalMs: number;
  private readonly now: () => number;

  private constructor(
    private readonly db: Database.Database,
    options: TradeJournalOptions,
  ) {
    // The caller passes its component logger (e.g. "database"); the journal does not rename it.
    this.log = options.logger;
    this.observeWrite = options.observeWrite;
    this.stopIntervalMs = parseOrThrow(
      z.number().int().nonnegative(),
      options.stopIntervalMs ?? 0,
      "stopIntervalMs",
    );
    this.now = options.now ?? Date.now;
    this.stmt = TradeJournal.prepareAll(db);
  }

  /**
   * Opens (creating if needed) the journal at `path` and migrates it to the current schema.
   * Throws SchemaVersionError if the file was written by a newer build.
   */
  static open(path: string, options: TradeJournalOptions = {}): TradeJournal {
    if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { timeout: 5000 });
    try {
      // WAL lets Grafana read while the engine writes; FULL syncs the WAL on every commit, so a
      // committed trade survives a power cut, not just a process crash.
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma("busy_timeout = 5000");
      // SQLite leaves foreign keys off per connection unless asked; the journal relies on them to
      // reject conditions and stop updates for trades that do not exist.
      db.pragma("foreign_keys = ON");
      const { from, to } = migrate(db);
      const journal = new TradeJournal(db, options);
      journal.log?.info({ path, schema_from: from, schema_to: to }, "trade journal opened");
      return journal;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private timed<T>(operation: JournalOperation, write: () => T): T {
    const observe = this.observeWrite;
    if (!observe) return write();
    const started = performance.now();
    let failed = false;
    try {
      return write();
    } catch (err) {
      failed = !(err instanceof VeloxError);
      throw err;
    } finally {
      observe(operation, (performance.now() - started) / 1000, failed);
    }
  }

  private static prepareAll(db: Database.Database) {
    return {
      insertTrade: db.prepare(
        `INSERT INTO trades (trade_id, strategy_id, symbol, action, side, entry_time, entry_price, quantity,
                             fees, stop_loss_initial, status, created_at, updated_at)
         VALUES (@trade_id, @strategy_id, @symbol, @action, @side, @entry_time, @entry_price, @quantity,
                 @fees, @stop_loss_initial, 'open', @created_at, @updated_at)`,
      ),
      getTrade: db.prepare("SELECT * FROM trades WHERE trade_id = ?"),
      ping: db.prepare("SELECT count(*) FROM sqlite_master").pluck(),
      firstTrade: db.prepare(`SELECT trade_id FROM ${TABLES.trades} LIMIT 1`).pluck(),
      deleteTrade: db.prepare(`DELETE FROM ${TABLES.trades} WHERE trade_id = ?`),
      deleteConditions: db.prepare(`DELETE FROM ${TABLES.signalConditions} WHERE id = ?`),
      tradeExists: db.prepare("SELECT 1 FROM trades WHERE trade_id = ?").pluck(),
      closeTrade: db.prepare(
        `UPDATE trades
            SET exit_time = @exit_time, exit_price = @exit_price, pnl = @pnl, pnl_pct = @pnl_pct,
                fees = @fees, max_price = @max_price, min_price = @min_price, exit_reason = @exit_reason,
                duration_seconds = @duration_seconds, status = 'closed', updated_at = @now
          WHERE trade_id = @trade_id AND status = 'open'`,
      ),
      tradesByStrategy: db.prepare(
        "SELECT * FROM trades WHERE strategy_id = ? ORDER BY entry_time DESC, trade_id DESC LIMIT ?",
      ),
      openTrades: db.prepare(
        "SELECT * FROM trades WHERE status = 'open' ORDER BY entry_time DESC, trade_id DESC",
      ),
      openTradesByStrategy: db.prepare(
        `SELECT * FROM trades WHERE status = 'open' AND strategy_id = ?
          ORDER BY entry_time DESC, trade_id DESC`,
      ),
      closedSince: db.prepare(
        `SELECT pnl, duration_seconds, exit_time FROM trades
          WHERE strategy_id = ? AND status = 'closed' AND exit_time >= ?
          ORDER BY exit_time, trade_id`,
      ),
      closedBetween: db.prepare(
        `SELECT pnl, duration_seconds, exit_time FROM ${TABLES.trades}
          WHERE strategy_id = ? AND status = 'closed' AND exit_time >= ? AND exit_time <= ?
          ORDER BY exit_time, trade_id`,
      ),
      // A null filter matches every row, so one statement serves every combination of filters.
      recentTrades: db.prepare(
        `SELECT * FROM ${TABLES.trades}
          WHERE (@strategy_id IS NULL OR strategy_id = @strategy_id)
            AND (@symbol IS NULL OR symbol = @symbol)
          ORDER BY entry_time DESC, trade_id DESC
          LIMIT @limit`,
      ),
      // Keyset pagination: newest entry first, the cursor is the last row's (entry_time, trade_id).
      listTrades: db.prepare(
        `SELECT * FROM ${TABLES.trades}
          WHERE (@strategy_id IS NULL OR strategy_id = @strategy_id)
            AND (@symbol IS NULL OR symbol = @symbol)
            AND (@status IS NULL OR status = @status)
            AND (@after_time IS NULL OR entry_time < @after_time
                 OR (entry_time = @after_time AND trade_id < @after_id))
          ORDER BY entry_time DESC, trade_id DESC
          LIMIT @limit`,
      ),
      // The archiver's cursor: every trade written or changed after (updated_at, trade_id).
      changedAfter: db.prepare(
        `SELECT * FROM ${TABLES.trades}
          WHERE updated_at > @updated_at OR (updated_at = @updated_at AND trade_id > @trade_id)
          ORDER BY updated_at, trade_id
          LIMIT @limit`,
      ),
      tradeIdsStartingWith: db.prepare(
        `SELECT trade_id, strategy_id, symbol FROM ${TABLES.trades}
          WHERE substr(trade_id, 1, length(@prefix)) = @prefix`,
      ),
      strategyIds: db
        .prepare(`SELECT DISTINCT strategy_id FROM ${TABLES.trades} ORDER BY strategy_id`)
        .pluck(),
      symbols: db
        .prepare(
          `SELECT DISTINCT symbol FROM ${TABLES.trades}
            WHERE (@strategy_id IS NULL OR strategy_id = @strategy_id)
            ORDER BY symbol`,
        )
        .pluck(),
      insertSignalConditions: db.prepare(
        `INSERT INTO signal_conditions (trade_id, signal_type, conditions_json, timestamp)
         VALUES (@trade_id, @signal_type, @conditions_json, @timestamp)`,
      ),
      signalConditions: db.prepare(
        "SELECT * FROM signal_conditions WHERE trade_id = ? ORDER BY timestamp, id",
      ),
      signalConditionsByType: db.prepare(
        "SELECT * FROM signal_conditions WHERE trade_id = ? AND signal_type = ? ORDER BY timestamp, id",
      ),
      insertSlUpdate: db.prepare(
        `INSERT INTO sl_updates (trade_id, ts, stop, highest_price, sl_type)
         VALUES (@trade_id, @ts, @stop, @highest_price, @sl_type)`,
      ),
      slUpdates: db.prepare("SELECT * FROM sl_updates WHERE trade_id = ? ORDER BY ts, id"),
    };
  }

  /**
   * Records a new open trade, with the conditions of its entry when given: both or neither. A
   * trade_id already in the journal is a StateError.
   */
  insertTrade(input: NewTrade, entryConditions?: Conditions): Trade {
    return this.timed("insert_trade", () => {
      const trade = plainOrParse(newTradeSchema, input, plainNewTrade, "trade");
      // Checked before anything is written, so a refused condition leaves no trade behind.
      const conditionsJson =
        entryConditions === undefined ? undefined : conditionsText(entryConditions, "entry_conditions");
      const row = this.inGroupOrTransaction(() => {
        const written = this.writeTrade(trade, nowSeconds());
        if (conditionsJson !== undefined) {
          this.compensated(
            () => this.writeConditions(written.trade_id, "entry", conditionsJson, written.entry_time),
            () => this.stmt.deleteTrade.run(written.trade_id),
          );
        }
        return written;
      });
      if (this.opened.size < MAX_OPENED_ROWS) this.opened.set(row.trade_id, row);
      this.log?.debug(
        {
          trade_id: trade.trade_id,
          strategy_id: trade.strategy_id,
          symbol: trade.symbol,
          side: trade.side,
          entry_price: trade.entry_price,
          quantity: trade.quantity,
        },
        "trade opened",
      );
      return row;
    });
  }

  /**
   * Records several new trades in one transaction. All are validated before anything is written,
   * so one bad element (field `trades.<index>.<name>`) or one duplicate id writes nothing.
   */
  insertTrades(inputs: readonly NewTrade[]): Trade[] {
    return this.timed("insert_trades", () => {
      const trades = parseOrThrow(newTradesSchema, inputs, "trades");
      const now = nowSeconds();
      const rows = this.db.transaction(() => trades.map((t) => this.writeTrade(t, now)))();
      this.log?.debug(
        { count: rows.length, trade_ids: rows.map((r) => r.trade_id) },
        "trades opened (batch)",
      );
      return rows;
    });
  }

  /**
   * Closes an open trade and computes its result:
   *   gross   = (exit − entry) × qty for a long, (entry − exit) × qty for a short
   *   fees    = entry fees + exit fees (the column becomes the total)
   *   pnl     = gross − fees
   *   pnl_pct = pnl / (entry_price × qty) × 100
   *   duration_seconds = exit_time − entry_time (an exit before the entry is a ValidationError)
   *   max_price / min_price = extremes of the stored, given, entry and exit prices
   * Unknown trade → NotFoundError; already closed → StateError.
   */
  closeTrade(tradeId: string, input: TradeExit, exitConditions?: Conditions): Trade {
    // The stop the trade had at its exit is its last stop row, whatever waited.
    this.writePendingStop(assertId(tradeId, "trade_id"));
    return this.timed("close_trade", () => {
      const id = assertId(tradeId, "trade_id");
      const exit = plainOrParse(tradeExitSchema, input, plainTradeExit, "exit");
      const conditionsJson =
        exitConditions === undefined ? undefined : conditionsText(exitConditions, "exit_conditions");

      // Inside a group the write lock is already held; alone, IMMEDIATE takes it before the read,
      // so no other writer can close the same trade between our check and our update. A kept row
      // is not read at all: the update's `status = 'open'` is then the check.
      const closed = this.inGroupOrTransaction((): Trade => {
        const trade = this.opened.get(id) ?? (this.stmt.getTrade.get(id) as Trade | undefined);
        if (trade === undefined) throw new NotFoundError("trade", id);
        if (trade.status !== "open") throw new StateError(`trade ${id} is already closed`);
        if (exit.exit_time < trade.entry_time) {
          throw new ValidationError(
            "exit.exit_time",
            `exit time ${exit.exit_time} is before the entry time ${trade.entry_time}`,
          );
        }

        const direction = trade.side === "long" ? 1 : -1;
        const gross = direction * (exit.exit_price - trade.entry_price) * trade.quantity;
        const fees = trade.fees + exit.exit_fees;
        const pnl = gross - fees;
        const highs = [trade.entry_price, exit.exit_price, trade.max_price, exit.max_price];
        const lows = [trade.entry_price, exit.exit_price, trade.min_price, exit.min_price];
        const row = tradeRow(
          trade,
          {
            exit_time: exit.exit_time,
            exit_price: exit.exit_price,
            pnl,
            pnl_pct: pnlPercent(pnl, trade.entry_price, trade.quantity),
            fees,
            max_price: Math.max(...highs.filter((p): p is number => p != null)),
            min_price: Math.min(...lows.filter((p): p is number => p != null)),
            exit_reason: exit.exit_reason,
            duration_seconds: exit.exit_time - trade.entry_time,
          },
          trade.created_at,
          nowSeconds(),
        );
        // The conditions first: the update is the last statement, so nothing can fail after it.
        const conditionsId =
          conditionsJson === undefined
            ? undefined
            : this.writeConditions(id, "exit", conditionsJson, row.exit_time ?? 0);
        const changes = this.compensated(
          () =>
            this.stmt.closeTrade.run({
              trade_id: id,
              exit_time: row.exit_time,
              exit_price: row.exit_price,
              pnl: row.pnl,
              pnl_pct: row.pnl_pct,
              fees: row.fees,
              max_price: row.max_price,
              min_price: row.min_price,
              exit_reason: row.exit_reason,
              duration_seconds: row.duration_seconds,
              now: row.updated_at,
            }).changes,
          () => conditionsId !== undefined && this.stmt.deleteConditions.run(conditionsId),
        );
        // Cannot happen under the write lock; guards against a silent no-op if it ever does.
        if (changes !== 1) {
          if (conditionsId !== undefined) this.stmt.deleteConditions.run(conditionsId);
          // Closed by another writer: the next attempt reads the journal and says so.
          this.opened.delete(id);
          throw new StateError(`trade ${id} changed while being closed`);
        }
        return row;
      }, true);

      this.log?.debug(
        {
          trade_id: id,
          strategy_id: closed.strategy_id,
          symbol: closed.symbol,
          exit_price: closed.exit_price,
          pnl: closed.pnl,
          pnl_pct: closed.pnl_pct,
          exit_reason: closed.exit_reason,
        },
        "trade closed",
      );
      this.stopWrittenAt.delete(id);
      this.opened.delete(id);
      return closed;
    });
  }

  /** Stores why a signal fired. Unknown trade → NotFoundError. */
  insertSignalConditions(input: SignalConditions): StoredSignalConditions {
    return this.timed("insert_signal_conditions", () => {
      const record = parseOrThrow(conditionsHeaderSchema, input, "signal_conditions");
      const conditionsJson = conditionsText(input.conditions, "signal_conditions.conditions");
      const id = this.withTradeForeignKey(record.trade_id, () =>
        this.writeConditions(record.trade_id, record.signal_type, conditionsJson, record.timestamp),
      );
      this.log?.debug(
        { trade_id: record.trade_id, signal_type: record.signal_type },
        "signal conditions recorded",
      );
      return {
        id,
        trade_id: record.trade_id,
        signal_type: record.signal_type,
        conditions: JSON.parse(conditionsJson) as Record<string, unknown>,
        timestamp: record.timestamp,
      };
    });
  }

  /** Signal conditions of a trade, oldest first, optionally of one type. Unknown trade → NotFoundError. */
  getSignalConditions(tradeId: string, signalType?: SignalType): StoredSignalConditions[] {
    const id = this.requireTrade(tradeId);
    const rows = (
      signalType === undefined
        ? this.stmt.signalConditions.all(id)
        : this.stmt.signalConditionsByType.all(id, parseOrThrow(signalTypeSchema, signalType, "signal_type"))
    ) as SignalConditionsRow[];
    return rows.map(({ conditions_json, ...rest }) => ({
      ...rest,
      conditions: JSON.parse(conditions_json) as Record<string, unknown>,
    }));
  }

  /** Appends a trailing-stop update. Unknown trade → NotFoundError. */
  insertSlUpdate(input: SlUpdate): StoredSlUpdate {
    return this.timed("insert_sl_update", () =>
      this.writeSlUpdate(parseOrThrow(slUpdateSchema, input, "sl_update")),
    );
  }

  /** The row of a stop move already parsed (by insertSlUpdate, or by trailStop for a waiting one). */
  private writeSlUpdate(update: ParsedSlUpdate): StoredSlUpdate {
    const { lastInsertRowid } = this.withTradeForeignKey(update.trade_id, () =>
      this.stmt.insertSlUpdate.run(update),
    );
    this.log?.debug(
      {
        trade_id: update.trade_id,
        stop: update.stop,
        highest_price: update.highest_price,
        sl_type: update.sl_type,
      },
      "stop loss updated",
    );
    return { id: Number(lastInsertRowid), ...update };
  }

  /**
   * Records a trailing-stop move. Inside a group only a trade's latest move is kept, and it is
   * written when a group commits and the trade's last stop row is at least `stopIntervalMs` old
   * (its first move at the first commit): a stop that trails on every tick costs one row per
   * trade per interval, whatever the number of ticks, groups or open trades. The latest move is
   * always written before the trade's exit, when its history is read, and at close, so the last
   * row of a closed trade is its final stop. Outside a group it is written at once. Invalid input
   * is refused here, at the call.
   */
  trailStop(input: SlUpdate): ParsedSlUpdate {
    const update = plainOrParse(slUpdateSchema, input, plainSlUpdate, "sl_update");
    if (!this.inGroup) {
      this.pendingStops.delete(update.trade_id);
      this.writeStop(update);
      return update;
    }
    // An unknown trade is refused now, as a direct write would be (once per trade and row).
    if (!this.pendingStops.has(update.trade_id)) this.requireTrade(update.trade_id);
    this.pendingStops.set(update.trade_id, update);
    return update;
  }

  /**
   * Ms until a waiting stop move is due to be journaled (0: at the next commit), or undefined when
   * none waits. The caller commits a group then, so that a last move is not held back for long.
   */
  stopsDueIn(): number | undefined {
    if (this.pendingStops.size === 0) return undefined;
    const now = this.now();
    let soonest = Number.POSITIVE_INFINITY;
    for (const id of this.pendingStops.keys()) {
      const at = this.stopWrittenAt.get(id);
      if (at === undefined) return 0;
      soonest = Math.min(soonest, at + this.stopIntervalMs - now);
    }
    return Math.max(0, soonest);
  }

  /**
   * Trades written or changed (opened, closed) after `after`, oldest change first, at most
   * `limit`: the archiver reads the journal with this, resuming from the last trade it archived.
   * Inside an open group it would also see that group's uncommitted writes: the archiver reads
   * between groups (see {@link inGroup}).
   */
  tradesChangedAfter(after: TradeChangeCursor | undefined, limit: number): Trade[] {
    return this.stmt.changedAfter.all({
      updated_at: after?.updatedAt ?? -1,
      trade_id: after?.tradeId ?? "",
      limit: parseOrThrow(limitSchema, limit, "limit"),
    }) as Trade[];
  }

  /** Trailing-stop history of a trade, oldest first. Unknown trade → NotFoundError. */
  getSlUpdates(tradeId: string): StoredSlUpdate[] {
    // The trade's waiting stop move goes in first, so a read sees every write made so far.
    const id = this.requireTrade(tradeId);
    this.writePendingStop(id);
    return this.stmt.slUpdates.all(id) as StoredSlUpdate[];
  }

  getTrade(tradeId: string): Trade | undefined {
    return this.stmt.getTrade.get(assertId(tradeId, "trade_id")) as Trade | undefined;
  }

  /** A strategy's trades, newest entry first. */
  tradesByStrategy(strategyId: string, limit = 100): Trade[] {
    const id = assertId(strategyId, "strategy_id");
    return this.stmt.tradesByStrategy.all(id, parseOrThrow(limitSchema, limit, "limit")) as Trade[];
  }

  /** Open trades, newest entry first; all strategies unless one is named. */
  openTrades(strategyId?: string): Trade[] {
    if (strategyId === undefined) return this.stmt.openTrades.all() as Trade[];
    return this.stmt.openTradesByStrategy.all(assertId(strategyId, "strategy_id")) as Trade[];
  }

  /** Stats (see computeStrategyStats) over the strategy's trades closed in the last `days` days. */
  strategyStats(strategyId: string, days = 30, now = nowSeconds()): StrategyStats {
    const id = assertId(strategyId, "strategy_id");
    const windowDays = parseOrThrow(daysSchema, days, "days");
    const at = parseOrThrow(unixSeconds, now, "now");
    const closed = this.stmt.closedSince.all(id, at - windowDays * DAY_SECONDS) as ClosedResultRow[];
    return computeStrategyStats(closed);
  }

  /**
   * Stats (see computeStrategyStats) over the strategy's trades closed between `from` and `to`
   * (unix seconds, both included). `from` after `to` is a ValidationError.
   */
  strategyStatsBetween(strategyId: string, from: number, to: number): StrategyStats {
    const id = assertId(strategyId, "strategy_id");
    const start = parseOrThrow(unixSeconds, from, "from");
    const end = parseOrThrow(unixSeconds, to, "to");
    if (start > end) throw new ValidationError("from", `${start} is after to (${end})`);
    return computeStrategyStats(this.stmt.closedBetween.all(id, start, end) as ClosedResultRow[]);
  }

  /** The latest trades, open or closed, newest entry first; optionally of one strategy and/or symbol. */
  recentTrades({ limit = 100, strategyId, symbol }: RecentTradesQuery = {}): Trade[] {
    return this.stmt.recentTrades.all({
      strategy_id: parseOrThrow(optionalId, strategyId, "strategy_id") ?? null,
      symbol: parseOrThrow(optionalSymbol, symbol, "symbol") ?? null,
      limit: parseOrThrow(limitSchema, limit, "limit"),
    }) as Trade[];
  }

  /**
   * One page of trades, newest entry first, optionally of one strategy, symbol and status. `after`
   * is where the previous page ended (its last trade's entry time and id); the answer says where
   * this one ends, or null when nothing follows.
   */
  listTrades(query: TradePageQuery = {}): TradePage {
    const limit = parseOrThrow(limitSchema, query.limit ?? 100, "limit");
    const after = query.after;
    const rows = this.stmt.listTrades.all({
      strategy_id: parseOrThrow(optionalId, query.strategyId, "strategy_id") ?? null,
      symbol: parseOrThrow(optionalSymbol, query.symbol, "symbol") ?? null,
      status: parseOrThrow(optionalStatus, query.status, "status") ?? null,
      after_time: after === undefined ? null : parseOrThrow(unixSeconds, after.entryTime, "after.entry_time"),
      after_id: after === undefined ? null : assertId(after.tradeId, "after.trade_id"),
      // One more than asked: whether another page follows, without a count.
      limit: limit + 1,
    }) as Trade[];
    const trades = rows.slice(0, limit);
    const last = trades.at(-1);
    return {
      trades,
      next: rows.length > limit && last ? { entryTime: last.entry_time, tradeId: last.trade_id } : null,
    };
  }

  /** Every trade whose id starts with `prefix`, open or closed (id, strategy and symbol only). */
  tradeIdsStartingWith(prefix: string): { trade_id: string; strategy_id: string; symbol: string }[] {
    return this.stmt.tradeIdsStartingWith.all({ prefix }) as {
      trade_id: string;
      strategy_id: string;
      symbol: string;
    }[];
  }

  /** Every strategy id that has a trade in the journal, sorted. */
  strategyIds(): string[] {
    return this.stmt.strategyIds.all() as string[];
  }

  /** Every symbol traded, sorted; only the strategy's when one is named. */
  symbols(strategyId?: string): string[] {
    return this.stmt.symbols.all({
      strategy_id: parseOrThrow(optionalId, strategyId, "strategy_id") ?? null,
    }) as string[];
  }

  /**
   * Asks SQLite a real question (the schema and the first trade row), for health checks: an error
   * says the journal cannot serve (closed, unreadable, corrupt). Never throws.
   */
  ping(): { ok: true } | { ok: false; error: string } {
    try {
      if (!this.db.open) return { ok: false, error: "the journal is closed" };
      this.stmt.ping.get();
      this.stmt.firstTrade.get();
      return { ok: true };
    } catch (err) {
      return { ok: false, error: errorMessage(err) };
    }
  }

  /** The connection settings actually in effect, for health checks and tests. */
  pragmas(): { journal_mode: string; synchronous: number; foreign_keys: number; busy_timeout: number } {
    return {
      journal_mode: this.db.pragma("journal_mode", { simple: true }) as string,
      synchronous: this.db.pragma("synchronous", { simple: true }) as number,
      foreign_keys: this.db.pragma("foreign_keys", { simple: true }) as number,
      busy_timeout: this.db.pragma("busy_timeout", { simple: true }) as number,
    };
  }

  /** Whether a group (see {@link beginGroup}) is open. */
  get inGroup(): boolean {
    return this.db.open && this.db.inTransaction;
  }

  /**
   * Opens a group: every write until {@link commitGroup} goes into one transaction, so many fills
   * and stop moves share one `synchronous=FULL` commit. Each write inside still runs (and is
   * checked) at once; only its durability waits for the commit. A write that fails rolls back
   * alone (its statements are undone), the group goes on.
   */
  beginGroup(): void {
    if (!this.db.inTransaction) this.db.exec("BEGIN IMMEDIATE");
  }

  /** Commits the open group: from here on its writes survive a crash. No group open: nothing. */
  commitGroup(): void {
    if (!this.db.open || !this.db.inTransaction) return;
    this.writePendingStops(false);
    try {
      this.timed("commit_group", () => this.db.exec("COMMIT"));
    } catch (err) {
      // The group's trades may never reach the file: a close reads the journal again.
      this.opened.clear();
      throw err;
    }
  }

  /** Drops the open group (after a failed commit): the connection is usable again. */
  rollbackGroup(): void {
    this.pendingStops.clear();
    this.opened.clear();
    if (this.db.open && this.db.inTransaction) this.db.exec("ROLLBACK");
  }

  /**
   * The waiting stop moves (see {@link trailStop}) into the open group before it commits: those
   * that are due, or with `all` every one.
   */
  private writePendingStops(all: boolean): void {
    if (this.pendingStops.size === 0) return;
    const due = this.now() - this.stopIntervalMs;
    for (const [id, update] of this.pendingStops) {
      const at = this.stopWrittenAt.get(id);
      if (!all && at !== undefined && at > due) continue;
      this.pendingStops.delete(id);
      this.writeStop(update);
    }
  }

  /** A trade's waiting stop move, if it has one, written now (into the open group if any). */
  private writePendingStop(tradeId: string): void {
    const update = this.pendingStops.get(tradeId);
    if (update === undefined) return;
    this.pendingStops.delete(tradeId);
    this.writeStop(update);
  }

  private writeStop(update: ParsedSlUpdate): void {
    try {
      // Parsed when it was recorded (trailStop): not parsed again.
      this.timed("insert_sl_update", () => this.writeSlUpdate(update));
      this.stopWrittenAt.set(update.trade_id, this.now());
    } catch (err) {
      // Only a trade that vanished from the journal can refuse its stop; the rest still commit.
      if (!(err instanceof VeloxError) || !this.inGroup) throw err;
      this.log?.warn({ trade_id: update.trade_id, err: err.message }, "stop move not journaled");
    }
  }

  close(): void {
    if (!this.db.open) return;
    // Every waiting stop move is written before the file closes.
    if (this.pendingStops.size > 0) {
      this.beginGroup();
      this.writePendingStops(true);
    }
    this.commitGroup();
    this.db.close();
    this.log?.info("trade journal closed");
  }

  /**
   * Runs `writes` in the open group (whose lock is held), else in a transaction of their own.
   * Callers order their statements so that nothing can fail after the last one, and undo an
   * earlier one by hand if a later one fails (see {@link compensated}): cheaper than a savepoint
   * per trade.
   */
  private inGroupOrTransaction<T>(writes: () => T, immediate = false): T {
    if (this.db.inTransaction) return writes();
    const tx = this.db.transaction(writes);
    return immediate ? tx.immediate() : tx();
  }

  /** Runs `write`; if it throws, runs `undo` (which removes what an earlier statement wrote) and rethrows. */
  private compensated<T>(write: () => T, undo: () => unknown): T {
    try {
      return write();
    } catch (err) {
      undo();
      throw err;
    }
  }

  private writeConditions(tradeId: string, signalType: SignalType, json: string, timestamp: number): number {
    const { lastInsertRowid } = this.stmt.insertSignalConditions.run({
      trade_id: tradeId,
      signal_type: signalType,
      conditions_json: json,
      timestamp,
    });
    return Number(lastInsertRowid);
  }

  private writeTrade(trade: ParsedNewTrade, now: number): Trade {
    // The row as written (the table has no defaults of its own to read back); the statement
    // binds the columns it names from it (better-sqlite3 ignores the others).
    const row = tradeRow(trade, undefined, now, now);
    try {
      this.stmt.insertTrade.run(row);
    } catch (err) {
      if (sqliteCode(err) === "SQLITE_CONSTRAINT_PRIMARYKEY") {
        throw new StateError(`trade ${trade.trade_id} already exists in the journal`, { cause: err });
      }
      throw err;
    }
    return row;
  }

  /** Runs an insert into a table that references trades, turning the FK failure into NotFoundError. */
  private withTradeForeignKey<T>(tradeId: string, write: () => T): T {
    try {
      return write();
    } catch (err) {
      if (sqliteCode(err) === "SQLITE_CONSTRAINT_FOREIGNKEY") throw new NotFoundError("trade", tradeId);
      throw err;
    }
  }

  private requireTrade(tradeId: string): string {
    const id = assertId(tradeId, "trade_id");
    if (this.stmt.tradeExists.get(id) === undefined) throw new NotFoundError("trade", id);
    return id;
  }
}
