import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";
import { z } from "zod";
import { StateError, ValidationError } from "../domain/errors.js";
import { parseOrThrow } from "../domain/identifiers.js";
import { batchLines, batchOf, type LineBatch } from "./line-batcher.js";

/** The spool's file name inside the data directory (`${dataDir}/influx-spool.db`). */
export const INFLUX_SPOOL_FILE = "influx-spool.db";

/** SQLite's and the file system's word for a full disk. */
function isDiskFull(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return (
    code === "SQLITE_FULL" ||
    code === "ENOSPC" ||
    (typeof code === "string" && code.startsWith("SQLITE_FULL"))
  );
}

export interface LineSpoolOptions {
  /** Upper bound of the points held, over all batches. */
  maxPoints: number;
  /** How long opening waits for another process that holds the file; default 2000 ms. */
  lockTimeoutMs?: number;
}

/** One spooled batch: its lines in the order they were written, joined as `text`. */
export interface SpoolBatch extends LineBatch {
  readonly id: number;
  /** The lines, split from `text` when asked for. */
  readonly lines: string[];
}

const optionsSchema = z.object({
  maxPoints: z.number().int().positive(),
  lockTimeoutMs: z.number().int().nonnegative().default(2000),
});

/**
 * A bounded, durable, ordered queue of batches of text lines: the place InfluxDB points (line
 * protocol) and PostgreSQL history rows (COPY text) wait while their server cannot take them; a
 * "point" below is one line. One SQLite table in its own file; batches leave it oldest first, and
 * only when the caller says the batch was written (`peek`, send, `remove`).
 *
 * The bound is on points, not batches. An append that would exceed it deletes the oldest batches
 * until the new one fits, and counts what it deleted in `droppedPoints`: when the spool is full the
 * newest data wins, because that is what dashboards look at first when InfluxDB returns. A single
 * batch larger than the whole bound keeps its newest `maxPoints` lines (the older lines of the
 * batch and every spooled batch are counted as dropped) rather than being refused, for the same
 * reason.
 *
 * One process owns a spool file at a time (an exclusive lock held from open to close): two writers
 * draining the same queue would send every batch twice.
 */
export class LineSpool {
  readonly maxPoints: number;
  private readonly db: Database.Database;
  private readonly stmt: ReturnType<typeof LineSpool.prepareAll>;
  private totalPoints: number;
  private batchCount: number;
  private dropped = 0;
  private full = false;

  constructor(
    readonly path: string,
    options: LineSpoolOptions,
  ) {
    const opts = parseOrThrow(optionsSchema, options, "spool options");
    this.maxPoints = opts.maxPoints;
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { timeout: opts.lockTimeoutMs });
    try {
      try {
        LineSpool.initialise(db);
      } catch (err) {
        if (err instanceof Database.SqliteError && err.code.startsWith("SQLITE_BUSY")) {
          throw new StateError(`spool ${path} is in use by another process`);
        }
        throw err;
      }
      this.db = db;
      this.stmt = LineSpool.prepareAll(db);
      const totals = this.stmt.totals.get() as { points: number; batches: number };
      this.totalPoints = totals.points;
      this.batchCount = totals.batches;
      // A spool written under a larger bound is cut down to the current one.
      if (this.totalPoints > this.maxPoints) {
        this.commitRoom(this.db.transaction(() => this.makeRoom(0))());
      }
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private static initialise(db: Database.Database): void {
    // Exclusive locking, set before WAL is entered: no shared-memory index, and the write lock
    // taken below is held until close, so a second process cannot open the same spool.
    db.pragma("locking_mode = EXCLUSIVE");
    db.pragma("journal_mode = WAL");
    // NORMAL syncs at checkpoints, not on every commit. In WAL mode a committed append survives
    // the process being killed (the WAL is in the OS's hands); only a power cut or kernel crash
    // can lose the last appends. That is the right trade for a buffer of time series that is
    // written at the rate ticks arrive while InfluxDB is down; trades go to the journal, which
    // uses FULL.
    db.pragma("synchronous = NORMAL");
    // Takes effect for a new file only: lets the file shrink again after a long outage.
    db.pragma("auto_vacuum = INCREMENTAL");
    db.exec(`CREATE TABLE IF NOT EXISTS batches (
               id         INTEGER PRIMARY KEY AUTOINCREMENT,
               lines      TEXT    NOT NULL,
               points     INTEGER NOT NULL CHECK (points > 0),
               created_at INTEGER NOT NULL
             )`);
    db.exec("BEGIN IMMEDIATE; COMMIT");
  }

  private static prepareAll(db: Database.Database) {
    return {
      totals: db.prepare("SELECT COALESCE(SUM(points), 0) AS points, COUNT(*) AS batches FROM batches"),
      insert: db.prepare("INSERT INTO batches (lines, points, created_at) VALUES (?, ?, ?)"),
      oldest: db.prepare("SELECT id, lines, points FROM batches ORDER BY id LIMIT 1"),
      oldestSize: db.prepare("SELECT id, points FROM batches ORDER BY id LIMIT 1"),
      remove: db.prepare("DELETE FROM batches WHERE id = ? RETURNING points").pluck(),
    };
  }

  /**
   * Appends one batch (at the end: it will be sent after everything spooled before it). Returns
   * the number of points dropped to make room (0 when it fit). Lines must be single lines of line
   * protocol; an empty batch is a no-op.
   */
  append(lines: readonly string[]): number {
    if (lines.length === 0) return 0;
    for (const [index, line] of lines.entries()) {
      if (line === "" || line.includes("\n")) {
        throw new ValidationError(`lines.${index}`, "must be one non-empty line");
      }
    }
    return this.appendBatch(batchOf(lines));
  }

  /**
   * Appends a batch whose text is already joined lines (a {@link LineBatcher}'s, whose lines were
   * checked when they were built), as {@link append} does.
   */
  appendBatch(batch: LineBatch): number {
    if (batch.points === 0) return 0;
    const cut = Math.max(0, batch.points - this.maxPoints);
    const kept = cut > 0 ? batchOf(batchLines(batch).slice(cut)) : batch;
    const { text } = kept;
    let room: { dropped: number; batches: number };
    try {
      room = this.db.transaction(() => {
        const made = this.makeRoom(kept.points);
        this.stmt.insert.run(text, kept.points, Date.now());
        return made;
      })();
      this.full = false;
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      // A full disk is a full bound: the oldest batches make room for this one, or, when even
      // that cannot be written, this batch is the one dropped. Counted either way, never thrown.
      this.full = true;
      return this.appendOnFullDisk(text, kept.points) + cut;
    }
    this.commitRoom(room);
    this.totalPoints += kept.points;
    this.batchCount += 1;
    this.dropped += cut;
    return room.dropped + cut;
  }

  /** Whether the last append met a full disk (and dropped points for it). */
  get diskFull(): boolean {
    return this.full;
  }

  /**
   * After SQLITE_FULL: checkpoints (the WAL's pages back into the file, the WAL truncated), drops
   * oldest batches as many points as the new one holds, and tries once more; if that too fails,
   * drops the new batch. Returns the points dropped.
   */
  private appendOnFullDisk(text: string, points: number): number {
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      // Nothing gained; the deletes below may still free pages.
    }
    let dropped = 0;
    try {
      const room = this.db.transaction(() => this.makeRoom(points, this.totalPoints))();
      this.commitRoom(room);
      dropped += room.dropped;
      this.stmt.insert.run(text, points, Date.now());
      this.totalPoints += points;
      this.batchCount += 1;
      return dropped;
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.dropped += points;
      return dropped + points;
    }
  }

  /** The oldest batch, or undefined when the spool is empty. */
  peek(): SpoolBatch | undefined {
    const row = this.stmt.oldest.get() as { id: number; lines: string; points: number } | undefined;
    if (row === undefined) return undefined;
    return {
      id: row.id,
      text: row.lines,
      points: row.points,
      get lines() {
        return batchLines(this);
      },
    };
  }

  /**
   * Removes a batch once it has been written. Returns its point count, or 0 if it was no longer
   * there (dropped by an append that needed the room meanwhile).
   */
  remove(id: number): number {
    const points = this.stmt.remove.get(id) as number | undefined;
    if (points === undefined) return 0;
    this.totalPoints -= points;
    this.batchCount -= 1;
    if (this.batchCount === 0) this.db.pragma("incremental_vacuum");
    return points;
  }

  /** Points currently spooled. */
  points(): number {
    return this.totalPoints;
  }

  /** Batches currently spooled. */
  batches(): number {
    return this.batchCount;
  }

  /** Points dropped to keep the bound since this spool was opened. */
  get droppedPoints(): number {
    return this.dropped;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /**
   * Deletes oldest batches until `incoming` more points fit under `bound` (the spool's bound, or
   * what it holds now when the disk is full). Runs inside a transaction.
   */
  private makeRoom(incoming: number, bound = this.maxPoints): { dropped: number; batches: number } {
    let total = this.totalPoints;
    let dropped = 0;
    let batches = 0;
    while (total + incoming > bound) {
      const oldest = this.stmt.oldestSize.get() as { id: number; points: number } | undefined;
      if (oldest === undefined) break;
      this.stmt.remove.get(oldest.id);
      total -= oldest.points;
      dropped += oldest.points;
      batches += 1;
    }
    return { dropped, batches };
  }

  /** Applies a committed makeRoom to the in-memory totals. */
  private commitRoom(room: { dropped: number; batches: number }): void {
    this.totalPoints -= room.dropped;
    this.batchCount -= room.batches;
    this.dropped += room.dropped;
  }
}
