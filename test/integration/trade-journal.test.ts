import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import pino from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  NotFoundError,
  SchemaVersionError,
  StateError,
  ValidationError,
  VeloxError,
} from "../../src/domain/errors.js";
import type { NewTrade } from "../../src/domain/trade.js";
import { MIGRATIONS, SCHEMA_VERSION } from "../../src/schema/sqlite.js";
import { migrate } from "../../src/storage/sqlite-migrate.js";
import { TradeJournal } from "../../src/storage/trade-journal.js";
import { makeTrade } from "../helpers/trades.js";

const T0 = 1_700_000_000; // a fixed unix-seconds origin
const DAY = 86_400;

let dir: string;
let dbPath: string;
let journal: TradeJournal | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "velox-journal-"));
  // A subdirectory that does not exist yet: open() must create it.
  dbPath = join(dir, "data", "journal.db");
});

afterEach(() => {
  journal?.close();
  journal = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function openJournal(options?: Parameters<typeof TradeJournal.open>[1]): TradeJournal {
  journal = TradeJournal.open(dbPath, options);
  return journal;
}

/** Trade T1, entered at T0. */
function newTrade(overrides: Partial<NewTrade> = {}): NewTrade {
  return makeTrade("T1", T0, overrides);
}

/** Reads through a separate connection, so it only sees what was committed. */
function rawQuery<T>(sql: string, ...params: unknown[]): T {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(sql).get(...params) as T;
  } finally {
    db.close();
  }
}

function count(table: "trades" | "signal_conditions" | "sl_updates"): number {
  return rawQuery<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).n;
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected the call to throw");
}

function expectValidation(fn: () => unknown, field: string): ValidationError {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(ValidationError);
  expect((err as ValidationError).field).toBe(field);
  return err as ValidationError;
}

describe("TradeJournal.open", () => {
  it("puts the connection in WAL, synchronous=FULL, foreign keys on, 5 s busy timeout", () => {
    const j = openJournal();
    expect(j.pragmas()).toEqual({ journal_mode: "wal", synchronous: 2, foreign_keys: 1, busy_timeout: 5000 });
  });

  it("migrates an empty file to SCHEMA_VERSION, and reopening is a no-op", () => {
    writeFileSync(join(dir, "empty.db"), "");
    dbPath = join(dir, "empty.db");
    openJournal().close();

    const versions = (() => {
      const db = new Database(dbPath, { readonly: true });
      try {
        return db.prepare("SELECT version, applied_at FROM schema_version").all() as {
          version: number;
          applied_at: number;
        }[];
      } finally {
        db.close();
      }
    })();
    expect(versions.map((v) => v.version)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(versions.at(-1)?.version).toBe(SCHEMA_VERSION);
    expect(versions[0]?.applied_at).toBeGreaterThan(T0); // unix seconds, not ms or text

    const tables = (() => {
      const db = new Database(dbPath, { readonly: true });
      try {
        return db
          .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")
          .pluck()
          .all() as string[];
      } finally {
        db.close();
      }
    })();
    expect(tables).toEqual(
      expect.arrayContaining([
        "trades",
        "signal_conditions",
        "sl_updates",
        "schema_version",
        "idx_trades_strategy_id",
        "idx_trades_symbol",
        "idx_trades_entry_time",
        "idx_trades_status",
        "idx_signal_conditions_trade_id",
        "idx_sl_updates_trade_id_ts",
      ]),
    );

    // Reopen: nothing re-applied, data intact.
    const j = openJournal();
    j.insertTrade(newTrade());
    j.close();
    openJournal();
    expect(count("trades")).toBe(1);
    expect(rawQuery<{ n: number }>("SELECT COUNT(*) AS n FROM schema_version").n).toBe(MIGRATIONS.length);

    const db = new Database(dbPath);
    try {
      expect(migrate(db)).toEqual({ from: SCHEMA_VERSION, to: SCHEMA_VERSION });
    } finally {
      db.close();
    }
  });

  it("reports from 0 when migrating a fresh file directly", () => {
    const db = new Database(join(dir, "fresh.db"));
    try {
      expect(migrate(db)).toEqual({ from: 0, to: SCHEMA_VERSION });
    } finally {
      db.close();
    }
  });

  it("keeps migration versions strictly increasing from 1", () => {
    MIGRATIONS.forEach((m, i) => {
      expect(m.version).toBe(i + 1);
    });
  });

  it("refuses a file written by a newer schema", () => {
    openJournal().close();
    journal = undefined;
    const db = new Database(dbPath);
    db.prepare("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)").run(
      SCHEMA_VERSION + 1,
      Date.now() / 1000,
    );
    db.close();

    const err = catchError(() => TradeJournal.open(dbPath));
    expect(err).toBeInstanceOf(SchemaVersionError);
    expect((err as SchemaVersionError).found).toBe(SCHEMA_VERSION + 1);
    expect((err as SchemaVersionError).supported).toBe(SCHEMA_VERSION);
  });

  it("refuses a file that already has an unversioned trades table, and records nothing", () => {
    dbPath = join(dir, "foreign.db");
    const db = new Database(dbPath);
    db.exec("CREATE TABLE trades (trade_id TEXT PRIMARY KEY, entry_time TIMESTAMP)");
    db.close();

    expect(catchError(() => TradeJournal.open(dbPath))).toBeInstanceOf(StateError);
    // The failed migration rolled back as a whole: no schema_version table, no half-made tables.
    const names = rawQuery<{ names: string }>(
      "SELECT group_concat(name) AS names FROM sqlite_master WHERE type = 'table'",
    ).names;
    expect(names).toBe("trades");
  });
});

describe("TradeJournal writes and reads", () => {
  it("inserts an open trade with unix-second timestamps", () => {
    const j = openJournal();
    const before = Date.now() / 1000;
    const input = newTrade({ fees: 1, stop_loss_initial: 95 });
    const t = j.insertTrade(input);
    expect(t).toMatchObject({
      ...input,
      status: "open",
      exit_time: null,
      exit_price: null,
      pnl: null,
      pnl_pct: null,
      duration_seconds: null,
    });
    expect(t.created_at).toBeGreaterThanOrEqual(Math.floor(before));
    expect(t.created_at).toBeLessThan(before + 60);
    expect(t.updated_at).toBe(t.created_at);
    expect(j.getTrade("T1")).toEqual(t);
    expect(j.getTrade("NOPE")).toBeUndefined();
    // Defaults: fees 0, no initial stop.
    expect(j.insertTrade(newTrade({ trade_id: "T2" }))).toMatchObject({ fees: 0, stop_loss_initial: null });
  });

  it("closes a long trade with exact pnl, pnl_pct, duration, fees and price extremes", () => {
    const j = openJournal();
    j.insertTrade(newTrade({ entry_time: T0 + 0.25, fees: 1 }));
    const t = j.closeTrade("T1", {
      exit_time: T0 + 360.75,
      exit_price: 110,
      exit_fees: 1.5,
      exit_reason: "target",
      max_price: 115,
      min_price: 98,
    });
    expect(t.status).toBe("closed");
    expect(t.exit_price).toBe(110);
    expect(t.exit_time).toBe(T0 + 360.75);
    expect(t.fees).toBe(2.5); // 1 entry + 1.5 exit
    expect(t.pnl).toBe(97.5); // (110 − 100) × 10 − 2.5
    expect(t.pnl_pct).toBeCloseTo(9.75, 12); // 97.5 / (100 × 10) × 100
    expect(t.duration_seconds).toBe(360.5); // 360.75 − 0.25
    expect(t.max_price).toBe(115); // max(100, 110, 115)
    expect(t.min_price).toBe(98); // min(100, 110, 98)
    expect(t.exit_reason).toBe("target");
    expect(t.updated_at).toBeGreaterThanOrEqual(t.created_at);
    expect(j.getTrade("T1")).toEqual(t);
  });

  it("closes short trades (winning and losing) with the sign flipped", () => {
    const j = openJournal();
    j.insertTrade(
      newTrade({ trade_id: "S1", action: "SELL", side: "short", entry_price: 200, quantity: 5, fees: 0.5 }),
    );
    j.insertTrade(newTrade({ trade_id: "S2", action: "SELL", side: "short", entry_price: 200, quantity: 5 }));

    const win = j.closeTrade("S1", {
      exit_time: T0 + 60,
      exit_price: 190,
      exit_fees: 0.5,
      exit_reason: "target",
    });
    expect(win.pnl).toBe(49); // (200 − 190) × 5 − (0.5 + 0.5)
    expect(win.pnl_pct).toBeCloseTo(4.9, 12); // 49 / (200 × 5) × 100
    expect(win.fees).toBe(1);
    expect(win.duration_seconds).toBe(60);
    expect(win.max_price).toBe(200); // entry and exit only: max(200, 190)
    expect(win.min_price).toBe(190);

    const loss = j.closeTrade("S2", { exit_time: T0, exit_price: 210, exit_reason: "stop_loss" });
    expect(loss.pnl).toBe(-50); // (200 − 210) × 5 − 0
    expect(loss.pnl_pct).toBe(-5); // −50 / 1000 × 100
    expect(loss.fees).toBe(0);
    expect(loss.duration_seconds).toBe(0); // exit at the entry second is allowed
  });

  it("refuses to close an unknown trade, a closed trade, or before the entry", () => {
    const j = openJournal();
    const exit = { exit_time: T0 + 10, exit_price: 101, exit_reason: "manual" };
    expect(catchError(() => j.closeTrade("GHOST", exit))).toBeInstanceOf(NotFoundError);

    j.insertTrade(newTrade());
    expectValidation(() => j.closeTrade("T1", { ...exit, exit_time: T0 - 1 }), "exit.exit_time");
    expect(j.getTrade("T1")?.status).toBe("open");

    const closed = j.closeTrade("T1", exit);
    const err = catchError(() => j.closeTrade("T1", { ...exit, exit_price: 200 }));
    expect(err).toBeInstanceOf(StateError);
    expect((err as Error).message).toMatch(/already closed/);
    expect(j.getTrade("T1")).toEqual(closed); // the second close changed nothing
  });

  it("turns a duplicate trade_id into a StateError", () => {
    const j = openJournal();
    j.insertTrade(newTrade());
    const err = catchError(() => j.insertTrade(newTrade({ entry_price: 999 })));
    expect(err).toBeInstanceOf(StateError);
    expect((err as Error).message).toMatch(/T1 already exists/);
    expect((err as Error).cause).toBeInstanceOf(Database.SqliteError);
    expect(j.getTrade("T1")?.entry_price).toBe(100);
    expect(count("trades")).toBe(1);
  });

  it("round-trips signal conditions, filtered by type, and rejects unknown trades", () => {
    const j = openJournal();
    j.insertTrade(newTrade());
    const entry = { rsi: 28.5, above_vwap: true, reasons: ["oversold", "volume"], nested: { ema: [1, 2] } };
    const stored = j.insertSignalConditions({
      trade_id: "T1",
      signal_type: "entry",
      conditions: entry,
      timestamp: T0,
    });
    expect(stored).toMatchObject({ trade_id: "T1", signal_type: "entry", conditions: entry, timestamp: T0 });
    j.insertSignalConditions({
      trade_id: "T1",
      signal_type: "exit",
      conditions: { rsi: 71 },
      timestamp: T0 + 99,
    });

    expect(j.getSignalConditions("T1", "entry")).toEqual([stored]);
    expect(j.getSignalConditions("T1", "exit").map((c) => c.conditions)).toEqual([{ rsi: 71 }]);
    expect(j.getSignalConditions("T1").map((c) => c.signal_type)).toEqual(["entry", "exit"]);

    expect(
      catchError(() =>
        j.insertSignalConditions({ trade_id: "GHOST", signal_type: "entry", conditions: {}, timestamp: T0 }),
      ),
    ).toBeInstanceOf(NotFoundError);
    expect(catchError(() => j.getSignalConditions("GHOST"))).toBeInstanceOf(NotFoundError);
    expect(count("signal_conditions")).toBe(2);
  });

  it("returns stop-loss updates ordered by ts, whatever the insert order", () => {
    const j = openJournal();
    j.insertTrade(newTrade());
    j.insertTrade(newTrade({ trade_id: "T2" }));
    for (const [ts, stop] of [
      [T0 + 30, 97],
      [T0 + 10, 95],
      [T0 + 20, 96],
    ] as const) {
      j.insertSlUpdate({ trade_id: "T1", ts, stop, highest_price: stop + 5, sl_type: "trailing" });
    }
    j.insertSlUpdate({ trade_id: "T2", ts: T0 + 15, stop: 90, highest_price: 101, sl_type: "fixed" });

    const updates = j.getSlUpdates("T1");
    expect(updates.map((u) => u.ts)).toEqual([T0 + 10, T0 + 20, T0 + 30]);
    expect(updates.map((u) => u.stop)).toEqual([95, 96, 97]);
    expect(updates[0]).toMatchObject({ trade_id: "T1", highest_price: 100, sl_type: "trailing" });
    expect(j.getSlUpdates("T2")).toHaveLength(1);

    expect(
      catchError(() =>
        j.insertSlUpdate({ trade_id: "GHOST", ts: T0, stop: 1, highest_price: 2, sl_type: "trailing" }),
      ),
    ).toBeInstanceOf(NotFoundError);
    expect(count("sl_updates")).toBe(4);
  });

  it("lists trades by strategy (newest first, limited) and open trades", () => {
    const j = openJournal();
    j.insertTrade(newTrade({ trade_id: "A1", entry_time: T0 + 1 }));
    j.insertTrade(newTrade({ trade_id: "A3", entry_time: T0 + 3 }));
    j.insertTrade(newTrade({ trade_id: "A2", entry_time: T0 + 2 }));
    j.insertTrade(newTrade({ trade_id: "B1", strategy_id: "breakout", symbol: "TCS", entry_time: T0 + 4 }));
    j.closeTrade("A2", { exit_time: T0 + 10, exit_price: 100, exit_reason: "manual" });

    expect(j.tradesByStrategy("rsi_agg").map((t) => t.trade_id)).toEqual(["A3", "A2", "A1"]);
    expect(j.tradesByStrategy("rsi_agg", 2).map((t) => t.trade_id)).toEqual(["A3", "A2"]);
    expect(j.tradesByStrategy("nobody")).toEqual([]);
    expectValidation(() => j.tradesByStrategy("rsi_agg", 0), "limit");

    expect(j.openTrades().map((t) => t.trade_id)).toEqual(["B1", "A3", "A1"]);
    expect(j.openTrades("rsi_agg").map((t) => t.trade_id)).toEqual(["A3", "A1"]);
    expect(j.openTrades("breakout").map((t) => t.trade_id)).toEqual(["B1"]);
  });

  it("computes strategy stats over trades closed inside the window only", () => {
    const j = openJournal();
    const now = T0 + 100 * DAY;
    const closeAt = (id: string, exitTime: number, exitPrice: number, strategy = "rsi_agg") => {
      j.insertTrade(newTrade({ trade_id: id, strategy_id: strategy, entry_time: exitTime - 600 }));
      j.closeTrade(id, { exit_time: exitTime, exit_price: exitPrice, exit_reason: "target" });
    };
    closeAt("OLD", now - 40 * DAY, 50); // pnl −500, outside 30 days
    closeAt("EDGE", now - 30 * DAY, 101); // pnl +10, exactly on the boundary: included
    closeAt("W1", now - 10 * DAY, 99); // pnl −10
    closeAt("W2", now - 3600, 103); // pnl +30
    closeAt("OTHER", now - DAY, 200, "breakout"); // other strategy
    j.insertTrade(newTrade({ trade_id: "OPEN", entry_time: now - 60 })); // still open

    const s = j.strategyStats("rsi_agg", 30, now);
    expect(s.total_trades).toBe(3); // EDGE, W1, W2
    expect(s.total_pnl).toBe(30); // 10 − 10 + 30
    expect(s.winners).toBe(2);
    expect(s.losers).toBe(1);
    expect(s.avg_duration_seconds).toBe(600);
    expect(s.profit_factor).toBe(4); // (10 + 30) / |−10|
    expect(s.max_drawdown).toBe(10); // cum 10, 0, 30 → peak 10 − 0
    expect(j.strategyStats("rsi_agg", 50, now).total_trades).toBe(4); // OLD now inside
    expect(j.strategyStats("nobody", 30, now)).toMatchObject({ total_trades: 0, profit_factor: null });
  });

  it("inserts a batch in one transaction", () => {
    const j = openJournal();
    const rows = j.insertTrades([
      newTrade({ trade_id: "B1" }),
      newTrade({ trade_id: "B2", action: "SELL", side: "short" }),
      newTrade({ trade_id: "B3", fees: 0.2 }),
    ]);
    expect(rows.map((r) => [r.trade_id, r.side, r.status])).toEqual([
      ["B1", "long", "open"],
      ["B2", "short", "open"],
      ["B3", "long", "open"],
    ]);
    expect(count("trades")).toBe(3);
    expect(j.insertTrades([])).toEqual([]);
  });

  it("logs inserts and closes with structured fields", () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
        done();
      },
    });
    const j = openJournal({ logger: pino({ level: "debug" }, sink).child({ component: "database" }) });
    j.insertTrade(newTrade());
    j.insertSlUpdate({ trade_id: "T1", ts: T0 + 1, stop: 95, highest_price: 101, sl_type: "trailing" });
    j.closeTrade("T1", { exit_time: T0 + 5, exit_price: 101, exit_reason: "target" });

    expect(lines.find((l) => l.msg === "trade opened")).toMatchObject({
      level: 20,
      component: "database",
      trade_id: "T1",
      strategy_id: "rsi_agg",
      symbol: "RELIANCE",
    });
    expect(lines.find((l) => l.msg === "stop loss updated")).toMatchObject({
      level: 20,
      trade_id: "T1",
      stop: 95,
    });
    expect(lines.find((l) => l.msg === "trade closed")).toMatchObject({ level: 20, trade_id: "T1", pnl: 10 });
  });
});

describe("TradeJournal input validation", () => {
  it.each([
    ["NaN entry price", { entry_price: Number.NaN }, "trade.entry_price"],
    ["negative entry price", { entry_price: -1 }, "trade.entry_price"],
    ["zero entry price", { entry_price: 0 }, "trade.entry_price"],
    ["infinite entry price", { entry_price: Number.POSITIVE_INFINITY }, "trade.entry_price"],
    ["empty trade id", { trade_id: "" }, "trade.trade_id"],
    ["trade id with SQL in it", { trade_id: "x'; DROP TABLE trades;--" }, "trade.trade_id"],
    ["empty strategy id", { strategy_id: "" }, "trade.strategy_id"],
    ["lower-case symbol", { symbol: "reliance" }, "trade.symbol"],
    ["unknown side", { side: "sideways" }, "trade.side"],
    ["unknown action", { action: "HOLD" }, "trade.action"],
    ["action that does not open the side", { action: "SELL", side: "long" }, "trade.action"],
    ["zero quantity", { quantity: 0 }, "trade.quantity"],
    ["NaN quantity", { quantity: Number.NaN }, "trade.quantity"],
    ["negative fees", { fees: -0.01 }, "trade.fees"],
    ["negative entry time", { entry_time: -5 }, "trade.entry_time"],
    ["zero initial stop", { stop_loss_initial: 0 }, "trade.stop_loss_initial"],
  ])("rejects a trade with %s", (_name, overrides, field) => {
    const j = openJournal();
    j.insertTrade(newTrade({ trade_id: "KEEP" }));
    expectValidation(() => j.insertTrade(newTrade(overrides as Partial<NewTrade>)), field);
    expect(count("trades")).toBe(1);
  });

  it("rejects a missing field and a non-object", () => {
    const j = openJournal();
    const { entry_price: _omitted, ...withoutPrice } = newTrade();
    expectValidation(() => j.insertTrade(withoutPrice as NewTrade), "trade.entry_price");
    expectValidation(() => j.insertTrade(null as unknown as NewTrade), "trade");
    expect(count("trades")).toBe(0);
  });

  it("rejects bad exits and leaves the trade open", () => {
    const j = openJournal();
    j.insertTrade(newTrade());
    const ok = { exit_time: T0 + 1, exit_price: 101, exit_reason: "target" };
    expectValidation(() => j.closeTrade("T1", { ...ok, exit_price: Number.NaN }), "exit.exit_price");
    expectValidation(() => j.closeTrade("T1", { ...ok, exit_price: -3 }), "exit.exit_price");
    expectValidation(() => j.closeTrade("T1", { ...ok, exit_reason: "" }), "exit.exit_reason");
    expectValidation(() => j.closeTrade("T1", { ...ok, exit_reason: "x".repeat(65) }), "exit.exit_reason");
    expectValidation(() => j.closeTrade("T1", { ...ok, exit_fees: -1 }), "exit.exit_fees");
    expectValidation(() => j.closeTrade("T1", { ...ok, max_price: 0 }), "exit.max_price");
    expectValidation(() => j.closeTrade("", ok), "trade_id");
    expect(j.getTrade("T1")?.status).toBe("open");
  });

  it("rejects bad stop-loss updates and signal conditions", () => {
    const j = openJournal();
    j.insertTrade(newTrade());
    const sl = { trade_id: "T1", ts: T0, stop: 95, highest_price: 100, sl_type: "trailing" };
    expectValidation(() => j.insertSlUpdate({ ...sl, stop: 0 }), "sl_update.stop");
    expectValidation(() => j.insertSlUpdate({ ...sl, highest_price: Number.NaN }), "sl_update.highest_price");
    expectValidation(() => j.insertSlUpdate({ ...sl, sl_type: "" }), "sl_update.sl_type");
    expectValidation(() => j.insertSlUpdate({ ...sl, trade_id: "" }), "sl_update.trade_id");

    const sc = { trade_id: "T1", signal_type: "entry" as const, conditions: { rsi: 30 }, timestamp: T0 };
    expectValidation(
      () => j.insertSignalConditions({ ...sc, signal_type: "maybe" as "entry" }),
      "signal_conditions.signal_type",
    );
    // NaN would silently become null in JSON.
    expectValidation(
      () => j.insertSignalConditions({ ...sc, conditions: { rsi: Number.NaN } }),
      "signal_conditions.conditions.rsi",
    );
    expect(count("sl_updates")).toBe(0);
    expect(count("signal_conditions")).toBe(0);
  });

  it("stores conditions exactly as JSON does and refuses, naming the value, what JSON would change", () => {
    const j = openJournal();
    j.insertTrade(newTrade());
    const sc = { trade_id: "T1", signal_type: "entry" as const, timestamp: T0 };
    const deep: Record<string, unknown> = { v: 1 };
    let level = deep;
    for (let i = 0; i < 40; i++) {
      level.next = { v: i };
      level = level.next as Record<string, unknown>;
    }
    const stored: Record<string, unknown>[] = [
      { rsi: 30, nested: { list: [1, "a", null, true, { x: -0.5 }] }, none: null },
      { when: new Date(T0 * 1000), text: "naïve → ok" }, // toJSON: the serialiser's own verdict
      deep, // deeper than the walk goes
    ];
    for (const conditions of stored) {
      j.insertSignalConditions({ ...sc, conditions: conditions as never });
      const rows = j.getSignalConditions("T1");
      expect(rows.at(-1)?.conditions).toEqual(JSON.parse(JSON.stringify(conditions)));
    }
    const holed = [1, 2, 3];
    delete holed[1];
    const refused: [Record<string, unknown>, string][] = [
      [{ a: { b: [1, Number.POSITIVE_INFINITY] } }, "signal_conditions.conditions.a.b.1"],
      [{ a: holed }, "signal_conditions.conditions.a.1"], // a hole would become null
      [{ a: undefined }, "signal_conditions.conditions.a"],
      [{ f: () => 1 }, "signal_conditions.conditions.f"],
      [{ n: 10n }, "signal_conditions.conditions.n"],
      [{ ...deep, z: Number.NaN }, "signal_conditions.conditions.z"],
    ];
    for (const [conditions, field] of refused) {
      expectValidation(() => j.insertSignalConditions({ ...sc, conditions: conditions as never }), field);
    }
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    expect(() => j.insertSignalConditions({ ...sc, conditions: cycle as never })).toThrow(/circular/i);
    expect(count("signal_conditions")).toBe(stored.length);
  });

  it("writes nothing from a batch with one bad element in the middle", () => {
    const j = openJournal();
    j.insertTrade(newTrade({ trade_id: "KEEP" }));
    const batch = [
      newTrade({ trade_id: "B1" }),
      newTrade({ trade_id: "B2" }),
      newTrade({ trade_id: "B3", entry_price: -1 }),
      newTrade({ trade_id: "B4" }),
    ];
    const err = expectValidation(() => j.insertTrades(batch), "trades.2.entry_price");
    expect(err).toBeInstanceOf(VeloxError);
    expect(count("trades")).toBe(1);
    expect(j.getTrade("B1")).toBeUndefined();
  });

  it("rolls back a whole batch when an element collides with an existing trade", () => {
    const j = openJournal();
    j.insertTrade(newTrade({ trade_id: "KEEP" }));
    const batch = [
      newTrade({ trade_id: "B1" }),
      newTrade({ trade_id: "KEEP" }),
      newTrade({ trade_id: "B3" }),
    ];
    expect(catchError(() => j.insertTrades(batch))).toBeInstanceOf(StateError);
    expect(count("trades")).toBe(1);
    expect(j.getTrade("B1")).toBeUndefined();
    // And a duplicate inside the batch itself.
    const selfDup = [newTrade({ trade_id: "C1" }), newTrade({ trade_id: "C1" })];
    expect(catchError(() => j.insertTrades(selfDup))).toBeInstanceOf(StateError);
    expect(count("trades")).toBe(1);
  });
});

describe("TradeJournal group commit", () => {
  it("returns the rows it wrote exactly as a read gives them back (entry and exit)", () => {
    const j = openJournal();
    const opened = j.insertTrade(newTrade({ fees: 1.25, stop_loss_initial: 95 }), {
      reason: "rsi",
      rsi: 28.5,
    });
    expect(opened).toStrictEqual(j.getTrade("T1"));
    const closed = j.closeTrade(
      "T1",
      { exit_time: T0 + 90, exit_price: 104, exit_fees: 0.75, exit_reason: "signal", max_price: 106 },
      { reason: "exit", rsi: 71 },
    );
    expect(closed).toStrictEqual(j.getTrade("T1"));
    expect(j.getSignalConditions("T1").map((c) => [c.signal_type, c.conditions])).toEqual([
      ["entry", { reason: "rsi", rsi: 28.5 }],
      ["exit", { reason: "exit", rsi: 71 }],
    ]);
  });

  it("keeps a trade's last stop move of a group, writes it before the commit, and every move outside one", () => {
    const j = openJournal();
    j.insertTrade(newTrade());
    j.beginGroup();
    for (const [i, stop] of [96, 97, 98.5].entries()) {
      j.trailStop({ trade_id: "T1", ts: T0 + i, stop, highest_price: stop + 2, sl_type: "fixed_percent" });
    }
    // Nothing committed yet; a read in the process sees the latest move already.
    expect(count("sl_updates")).toBe(0);
    expect(j.getSlUpdates("T1").map((u) => u.stop)).toEqual([98.5]);
    j.trailStop({ trade_id: "T1", ts: T0 + 3, stop: 99, highest_price: 101, sl_type: "fixed_percent" });
    j.commitGroup();
    // The read wrote 98.5 into the group; 99 came after it: both are kept, nothing before them.
    expect(j.getSlUpdates("T1").map((u) => [u.ts - T0, u.stop])).toEqual([
      [2, 98.5],
      [3, 99],
    ]);
    expect(count("sl_updates")).toBe(2);

    // Outside a group, every move is a row of its own.
    j.trailStop({ trade_id: "T1", ts: T0 + 4, stop: 99.5, highest_price: 102, sl_type: "fixed_percent" });
    j.trailStop({ trade_id: "T1", ts: T0 + 5, stop: 100, highest_price: 103, sl_type: "fixed_percent" });
    expect(count("sl_updates")).toBe(4);
  });

  it("journals a trade's stop at most once per stopIntervalMs, its final stop always", () => {
    let now = 1_000_000;
    const j = openJournal({ stopIntervalMs: 1000, now: () => now });
    j.insertTrade(newTrade());
    j.insertTrade(newTrade({ trade_id: "T2" }));
    const move = (id: string, ts: number, stop: number) =>
      j.trailStop({ trade_id: id, ts: T0 + ts, stop, highest_price: stop + 2, sl_type: "fixed_percent" });
    // What is committed, through a connection of its own.
    const rows = (id: string) => {
      const db = new Database(dbPath, { readonly: true });
      try {
        return db.prepare("SELECT ts, stop FROM sl_updates WHERE trade_id = ? ORDER BY id").all(id) as {
          ts: number;
          stop: number;
        }[];
      } finally {
        db.close();
      }
    };
    const group = (moves: () => void) => {
      j.beginGroup();
      moves();
      j.commitGroup();
    };

    // A trade's first move is journaled at the first commit.
    group(() => move("T1", 1, 96));
    expect(j.stopsDueIn()).toBeUndefined();
    // 10 ms later, many groups of moves: held back, the latest kept, until the interval is over.
    for (const [i, stop] of [97, 98, 99].entries()) {
      now += 10;
      group(() => move("T1", 2 + i, stop));
    }
    expect(rows("T1").map((r) => r.stop)).toEqual([96]);
    expect(j.stopsDueIn()).toBe(1000 - 30);
    // Another trade is not held back by the first one's row.
    group(() => move("T2", 1, 50));
    expect(rows("T2").map((r) => r.stop)).toEqual([50]);

    now += 970;
    expect(j.stopsDueIn()).toBe(0);
    group(() => undefined);
    // The latest move only: 99 at ts 4, not 97 or 98.
    expect(rows("T1").map((r) => [r.ts - T0, r.stop])).toEqual([
      [1, 96],
      [4, 99],
    ]);
    expect(j.stopsDueIn()).toBeUndefined();

    // A held-back move is written before its trade's exit, and a read sees it.
    now += 10;
    group(() => move("T1", 5, 100));
    now += 10;
    group(() => move("T2", 2, 51));
    expect(j.getSlUpdates("T2").map((u) => u.stop)).toEqual([50, 51]);
    j.beginGroup();
    move("T1", 6, 101);
    j.closeTrade("T1", { exit_time: T0 + 7, exit_price: 101, exit_reason: "stop_loss" });
    j.commitGroup();
    expect(rows("T1").map((r) => r.stop)).toEqual([96, 99, 101]);

    // Whatever waits at close is written before the file closes.
    now += 10;
    group(() => move("T2", 3, 52));
    expect(rows("T2").map((r) => r.stop)).toEqual([50, 51]);
    j.close();
    const reopened = openJournal();
    expect(reopened.getSlUpdates("T2").map((u) => u.stop)).toEqual([50, 51, 52]);
    reopened.close();
  });

  it("refuses a stop move of an unknown trade at the call, also inside a group", () => {
    const j = openJournal();
    j.beginGroup();
    expect(() =>
      j.trailStop({ trade_id: "NOPE", ts: T0, stop: 99, highest_price: 101, sl_type: "fixed_percent" }),
    ).toThrow(NotFoundError);
    j.commitGroup();
    expect(count("sl_updates")).toBe(0);
  });

  it("writes neither trade nor conditions when the conditions cannot be stored, in a group too", () => {
    const j = openJournal();
    j.beginGroup();
    const err = catchError(() => j.insertTrade(newTrade(), { indicators: { rsi: Number.NaN } }));
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe("entry_conditions.indicators.rsi");
    j.commitGroup();
    expect(count("trades")).toBe(0);
    expect(count("signal_conditions")).toBe(0);
  });
});

describe("TradeJournal closes from the rows it opened", () => {
  const exit = { exit_time: T0 + 60, exit_price: 103, exit_fees: 0.5, exit_reason: "signal", max_price: 105 };

  it("closes a trade it opened to the same row as a journal that reads it from the file", () => {
    const j = openJournal();
    j.insertTrade(newTrade({ fees: 1.25, stop_loss_initial: 95 }));
    j.close();
    // T1 is closed by a journal that never saw it open (a read), T3 by the one that opened it.
    const reader = openJournal();
    const fromFile = reader.closeTrade("T1", exit);
    reader.insertTrade(newTrade({ trade_id: "T3", fees: 1.25, stop_loss_initial: 95 }));
    const kept = reader.closeTrade("T3", exit);
    const { trade_id: _a, created_at: _b, updated_at: _c, ...closedFromFile } = fromFile;
    const { trade_id: _d, created_at: _e, updated_at: _f, ...closedFromKept } = kept;
    expect(closedFromKept).toStrictEqual(closedFromFile);
    expect(kept).toStrictEqual(reader.getTrade("T3"));
    expect(() => reader.closeTrade("T3", exit)).toThrow(/already closed/);
  });

  it("does not close twice a trade another connection closed meanwhile", () => {
    const j = openJournal();
    j.insertTrade(newTrade());
    const other = TradeJournal.open(dbPath);
    try {
      other.closeTrade("T1", exit);
    } finally {
      other.close();
    }
    expect(() => j.closeTrade("T1", { ...exit, exit_price: 90 })).toThrow(StateError);
    // The next attempt reads the journal, and the first close stands.
    expect(() => j.closeTrade("T1", exit)).toThrow(/already closed/);
    expect(rawQuery<{ exit_price: number }>("SELECT exit_price FROM trades WHERE trade_id = 'T1'")).toEqual({
      exit_price: 103,
    });
    expect(count("signal_conditions")).toBe(0);
  });

  it("forgets the trades of a group that was rolled back", () => {
    const j = openJournal();
    j.beginGroup();
    j.insertTrade(newTrade());
    j.rollbackGroup();
    expect(j.getTrade("T1")).toBeUndefined();
    expect(() => j.closeTrade("T1", exit)).toThrow(NotFoundError);
    expect(count("trades")).toBe(0);
  });
});

describe("TradeJournal stop moves, checked by hand", () => {
  it("accepts and refuses exactly what slUpdateSchema does", async () => {
    const { slUpdateSchema } = await import("../../src/domain/trade.js");
    const j = openJournal();
    j.insertTrade(newTrade());
    const base = { trade_id: "T1", ts: T0, stop: 99, highest_price: 101, sl_type: "fixed_percent" };
    const variants: Record<string, unknown>[] = [
      base,
      { ...base, stop: 0 },
      { ...base, stop: Number.NaN },
      { ...base, highest_price: -1 },
      { ...base, ts: -1 },
      { ...base, ts: Number.POSITIVE_INFINITY },
      { ...base, sl_type: "" },
      { ...base, sl_type: " padded " },
      { ...base, sl_type: "x".repeat(65) },
      { ...base, trade_id: "bad id" },
      { ...base, extra: 1 },
      { ...base, stop: "99" },
    ];
    for (const input of variants) {
      const zod = slUpdateSchema.safeParse(input);
      const ours = (() => {
        try {
          return { ok: true as const, value: j.trailStop(input as never) };
        } catch (err) {
          return { ok: false as const, err };
        }
      })();
      expect(ours.ok, JSON.stringify(input)).toBe(zod.success);
      if (ours.ok && zod.success) expect(ours.value).toStrictEqual(zod.data);
      if (!ours.ok) expect(ours.err).toBeInstanceOf(ValidationError);
    }
  });
});
