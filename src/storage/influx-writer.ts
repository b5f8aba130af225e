import { HttpError, InfluxDB } from "@influxdata/influxdb-client";
import type { Logger } from "pino";
import { z } from "zod";
import { StateError, ValidationError } from "../domain/errors.js";
import { parseOrThrow } from "../domain/identifiers.js";
import type { MeasurementName, SeriesPoint } from "../schema/influx.js";
import { batchLines, type LineBatch, LineBatcher } from "./line-batcher.js";
import { type AnySeriesPoint, INDICATOR_LINES, SERIALIZERS, toLineProtocol } from "./line-protocol.js";
import { LineSpool, type SpoolBatch } from "./line-spool.js";

/**
 * Writes series points to InfluxDB 2 without ever making the caller wait, and without losing
 * points when InfluxDB is away.
 *
 * Path of a point: `write()` serialises it at once (a bad point throws there, in the caller's
 * hands) and appends the line to an in-memory {@link LineBatcher}. A batch is cut when it holds
 * `batchSize` lines or `flushIntervalMs` after its oldest point arrived, and sent by a single loop with
 * up to `maxInFlight` requests at once (InfluxDB parses them in parallel; each point carries its
 * own timestamp, so the order in which batches arrive does not change what is stored).
 *
 * When a send fails for a reason that may pass (no connection, timeout, 5xx, 429) or that only an
 * operator can fix (401, 403, 404 bucket/org not found, redirects), the batch goes to the on-disk
 * spool ({@link LineSpool}) and the writer reports `up: false`. While the spool holds anything,
 * every new batch is appended behind it instead of being sent, and the loop retries the oldest
 * spooled batch with capped exponential backoff (honouring Retry-After), removing it only after a
 * 2xx. So per series the order is the write order, and a batch is deleted only once InfluxDB has
 * it. Any other 4xx means InfluxDB refuses the data itself: the batch is logged (status and the
 * offending line) and counted in `failedPoints`, never retried.
 *
 * Delivery is at least once: a request whose answer is lost (timeout) is sent again, and InfluxDB
 * stores an identical point once (same series, field and timestamp overwrite each other).
 *
 * Memory holds at most the points that arrive while requests are in flight (bounded by
 * `timeoutMs`); everything else waits in the spool, which is bounded by `maxSpoolPoints` and drops
 * its oldest batches, counted, when full.
 *
 * Sending uses the client's transport (its auth, gzip and HttpError), not its WriteApi: this class
 * cuts its own batches and owns every retry. Bodies larger than `GZIP_THRESHOLD_BYTES` are gzipped
 * (`Content-Encoding: gzip`) unless `gzip` is false.
 */

/** Bodies above this many bytes are gzipped by the client (every real batch is). */
export const GZIP_THRESHOLD_BYTES = 1000;

/** Window of the `pointsPerSecond` rate. */
const RATE_WINDOW_MS = 10_000;
/** A Retry-After longer than this is not waited for in full. */
const MAX_RETRY_AFTER_MS = 60_000;
/** Longest error text kept in `lastError` and logs. */
const MAX_ERROR_TEXT = 500;

const optionsSchema = z.object({
  url: z.url(),
  token: z.string().optional(),
  org: z.string().min(1),
  bucket: z.string().min(1),
  spoolPath: z.string().min(1),
  maxSpoolPoints: z.number().int().positive().default(2_000_000),
  batchSize: z.number().int().positive().default(5000),
  flushIntervalMs: z.number().int().positive().default(1000),
  timeoutMs: z.number().int().positive().default(10_000),
  maxInFlight: z.number().int().positive().default(4),
  minBackoffMs: z.number().int().positive().default(250),
  maxBackoffMs: z.number().int().positive().default(10_000),
  closeTimeoutMs: z.number().int().nonnegative().default(5000),
  gzip: z.boolean().default(true),
});

export interface InfluxWriterOptions {
  /** Base URL of InfluxDB 2, e.g. `http://localhost:8086`. */
  url: string;
  token?: string | undefined;
  org: string;
  bucket: string;
  /** The spool file, normally `${dataDir}/${INFLUX_SPOOL_FILE}`. */
  spoolPath: string;
  /** Bound of the spool in points; default 2,000,000. */
  maxSpoolPoints?: number;
  /** Points per request; default 5000. */
  batchSize?: number;
  /** Longest a point waits in memory before its batch is cut; default 1000 ms. */
  flushIntervalMs?: number;
  /** Per request; default 10,000 ms. */
  timeoutMs?: number;
  /**
   * Requests sent at once while the spool is empty; default 4. InfluxDB parses them in parallel;
   * every point carries its own timestamp, so arrival order does not change what is stored.
   */
  maxInFlight?: number;
  /** First retry delay after a failure, doubled per failure up to `maxBackoffMs`; default 250 ms. */
  minBackoffMs?: number;
  /** Default 10,000 ms. */
  maxBackoffMs?: number;
  /** How long `close()` keeps trying to send before leaving the rest in the spool; default 5000 ms. */
  closeTimeoutMs?: number;
  /** Whether bodies above `GZIP_THRESHOLD_BYTES` are gzipped; default true (config: VELOX_INFLUX_GZIP). */
  gzip?: boolean;
  /** The caller's component logger (e.g. "timeseries"), used as given. */
  logger?: Logger | undefined;
}

/** Counters and gauges for the exporter. Counters count since this writer was created. */
export interface InfluxWriterStats {
  /** Points InfluxDB answered 2xx for. */
  pointsWritten: number;
  batchesWritten: number;
  /** Failed sends that will be tried again (each failed attempt counts). */
  retries: number;
  /** Points InfluxDB refused with a 4xx (bad data); logged, not retried. */
  failedPoints: number;
  /** Points refused by validation in `write`/`writeMany`. */
  rejectedPoints: number;
  /** Points appended to the spool. */
  spooledPoints: number;
  /** Points the full spool dropped (oldest first). */
  droppedPoints: number;
  /** Points in the spool now. */
  spoolPoints: number;
  spoolBatches: number;
  /** Points in memory now: buffered, or in a request that is not yet answered and not spooled. */
  bufferedPoints: number;
  /** False from a failed send (retryable or configuration) until the next 2xx. */
  up: boolean;
  lastError: string | null;
  /** Points written per second over the last 10 s (or since creation, if younger). */
  pointsPerSecond: number;
}

/** What to do with a batch whose send failed. */
export type WriteFailureKind =
  /** May pass by itself (connection, timeout, 5xx, 429, 408): spool and retry. */
  | "retry"
  /** A configuration problem (401, 403, 404, 3xx): the data is fine, so keep it spooled and retry. */
  | "hold"
  /** InfluxDB refuses the data (other 4xx): log and drop, retrying cannot help. */
  | "reject";

export function classifyWriteError(err: unknown): WriteFailureKind {
  if (!(err instanceof HttpError)) return "retry";
  const status = err.statusCode;
  if (status === 408 || status === 429 || status >= 500) return "retry";
  if (status === 401 || status === 403 || status === 404 || (status >= 300 && status < 400)) return "hold";
  if (status >= 400) return "reject";
  return "retry";
}

/** The delay a Retry-After header (seconds or an HTTP date) asks for, if the error carries one. */
export function retryAfterMs(err: unknown, now = Date.now()): number | undefined {
  if (!(err instanceof HttpError)) return undefined;
  const raw = err.headers?.["retry-after"];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/**
 * The line a 4xx answer is about: the one the error body names (`line N`, or `unable to parse
 * '…'`), else the batch's first line.
 */
export function offendingLine(err: HttpError, lines: readonly string[]): { line: string; named: boolean } {
  const text = `${err.body ?? ""} ${err.message}`;
  const numbered = /\bline (\d+)\b/i.exec(text);
  if (numbered) {
    const line = lines[Number(numbered[1]) - 1];
    if (line !== undefined) return { line, named: true };
  }
  const quoted = /unable to parse '([^']+)'/i.exec(text);
  if (quoted?.[1]) return { line: quoted[1], named: true };
  return { line: lines[0] ?? "", named: false };
}

function truncate(text: string, max = MAX_ERROR_TEXT): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function describeError(err: unknown): string {
  if (err instanceof HttpError) return truncate(`HTTP ${err.statusCode}: ${err.body || err.message}`);
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return truncate(code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message);
  }
  return truncate(String(err));
}

type SendOutcome = { ok: true } | { ok: false; kind: WriteFailureKind; error: unknown };

export class InfluxWriter {
  readonly batchSize: number;
  readonly flushIntervalMs: number;
  private readonly opts: z.output<typeof optionsSchema>;
  private readonly log: Logger | undefined;
  private readonly client: InfluxDB;
  /** The write endpoint with org, bucket and precision. */
  private readonly writePath: string;
  private readonly spool: LineSpool;
  private readonly createdAt = Date.now();

  /** Serialised lines not yet sent or spooled, oldest first, in batches of `batchSize`. */
  private readonly pending: LineBatcher;
  /** Batches being sent straight from memory (only while the spool is empty), at most `maxInFlight`. */
  private readonly inFlight = new Set<Promise<void>>();
  /** Points in those batches. */
  private inFlightPoints = 0;
  /** The batches in flight in the order they were cut, with their outcome once answered. */
  private readonly answers: { batch: LineBatch; outcome?: SendOutcome }[] = [];
  private flushTimer: NodeJS.Timeout | undefined;
  /** Cut the buffer even if it is smaller than a batch (timer, flush(), close()). */
  private flushWanted = false;
  private flushWaiters: (() => void)[] = [];

  private pumping = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private wake: (() => void) | undefined;

  private up = true;
  /** In an episode of spool drops (bound or full disk): logged at its start, ended by a delivery. */
  private dropping = false;
  private lastError: string | null = null;
  private failuresInARow = 0;
  private nextAttemptAt = 0;

  private stopping = false;
  private deadline = 0;
  private closed: Promise<void> | undefined;

  private readonly counters = {
    pointsWritten: 0,
    batchesWritten: 0,
    retries: 0,
    failedPoints: 0,
    rejectedPoints: 0,
    spooledPoints: 0,
  };
  /** Spool batches counted as dropped by the spool that had in fact been written meanwhile. */
  private droppedButWritten = 0;
  /** (time, points) of recent successful writes, for pointsPerSecond. */
  private recent: { at: number; points: number }[] = [];

  constructor(options: InfluxWriterOptions) {
    const { logger, ...rest } = options;
    this.opts = parseOrThrow(optionsSchema, rest, "influx writer options");
    this.log = logger;
    this.batchSize = this.opts.batchSize;
    this.flushIntervalMs = this.opts.flushIntervalMs;
    this.pending = new LineBatcher(this.batchSize);
    this.client = new InfluxDB({
      url: this.opts.url,
      ...(this.opts.token ? { token: this.opts.token } : {}),
      timeout: this.opts.timeoutMs,
    });
    const query = new URLSearchParams({ org: this.opts.org, bucket: this.opts.bucket, precision: "ns" });
    this.writePath = `/api/v2/write?${query}`;
    this.spool = new LineSpool(this.opts.spoolPath, { maxPoints: this.opts.maxSpoolPoints });
    const spooled = this.spool.points();
    if (this.spool.droppedPoints > 0) {
      this.log?.warn(
        { dropped: this.spool.droppedPoints, maxSpoolPoints: this.opts.maxSpoolPoints },
        "influx spool was larger than its bound: oldest points dropped",
      );
    }
    if (spooled > 0) {
      this.log?.info(
        { spoolPoints: spooled, spoolBatches: this.spool.batches(), path: this.opts.spoolPath },
        "influx spool holds points from an earlier run: draining",
      );
      this.kick();
    }
  }

  /**
   * Queues one point. Throws ValidationError (counted in `rejectedPoints`) if it does not fit the
   * schema, StateError after close(). Never waits for the network.
   */
  write(point: AnySeriesPoint): void {
    this.assertOpen();
    let line: string;
    try {
      line = toLineProtocol(point);
    } catch (err) {
      this.counters.rejectedPoints += 1;
      throw err;
    }
    this.enqueue([line]);
  }

  /**
   * Queues one point of `measurement`, written by its {@link SERIALIZERS} entry straight into the
   * batch (the hot path: no point object, no line string). Throws ValidationError as
   * `SeriesSerializer.line` does, having queued nothing; StateError after close(). Never waits
   * for the network.
   */
  writeSeries<M extends MeasurementName>(
    measurement: M,
    tags: SeriesPoint<M>["tags"],
    fields: SeriesPoint<M>["fields"],
    timestampNs: string,
  ): void {
    this.assertOpen();
    SERIALIZERS[measurement].writeTo(this.pending, tags, fields, timestampNs);
    this.afterEnqueue();
  }

  /**
   * Queues one `indicators` point ({@link INDICATOR_LINES}: the hot path, about nine per tick).
   * Throws as {@link writeSeries} does, having queued nothing.
   */
  writeIndicator(
    symbol: string,
    indicatorType: string,
    value: number,
    period: number | undefined,
    timestampNs: string,
  ): void {
    this.assertOpen();
    INDICATOR_LINES.writeTo(this.pending, symbol, indicatorType, value, period, timestampNs);
    this.afterEnqueue();
  }

  /**
   * Queues several points, all or none: if one is invalid, none is queued, all are counted as
   * rejected, and the ValidationError names the element (`points.<i>.<field>`).
   */
  writeMany(points: readonly AnySeriesPoint[]): void {
    this.assertOpen();
    const lines: string[] = new Array(points.length);
    for (let i = 0; i < points.length; i += 1) {
      try {
        lines[i] = toLineProtocol(points[i] as AnySeriesPoint);
      } catch (err) {
        this.counters.rejectedPoints += points.length;
        if (err instanceof ValidationError) throw new ValidationError(`points.${i}.${err.field}`, err.reason);
        throw err;
      }
    }
    this.enqueue(lines);
  }

  /**
   * Cuts the buffer now. Resolves once every buffered point has been sent, spooled, or refused;
   * it does not wait for the spool to drain.
   */
  flush(): Promise<void> {
    if (this.pending.points === 0 && this.inFlight.size === 0) return Promise.resolve();
    this.flushWanted = true;
    const done = new Promise<void>((resolve) => this.flushWaiters.push(resolve));
    this.kick();
    return done;
  }

  /** Points in memory now (buffered or in flight): what a source paces itself by. Cheap. */
  get backlog(): number {
    return this.pending.points + this.inFlightPoints;
  }

  stats(): InfluxWriterStats {
    const now = Date.now();
    this.pruneRecent(now);
    const windowMs = Math.min(RATE_WINDOW_MS, Math.max(1000, now - this.createdAt));
    const recentPoints = this.recent.reduce((sum, entry) => sum + entry.points, 0);
    return {
      ...this.counters,
      droppedPoints: this.spool.droppedPoints - this.droppedButWritten,
      spoolPoints: this.spool.points(),
      spoolBatches: this.spool.batches(),
      bufferedPoints: this.pending.points + this.inFlightPoints,
      up: this.up,
      lastError: this.lastError,
      pointsPerSecond: recentPoints / (windowMs / 1000),
    };
  }

  /** Whether the server answers its `/health` endpoint with a 2xx (InfluxDB 2 and VictoriaMetrics have one). */
  async health(): Promise<boolean> {
    try {
      await this.client.transport.request("/health", "", { method: "GET" });
      return true;
    } catch (err) {
      this.log?.debug({ err: describeError(err) }, "influx health check failed");
      return false;
    }
  }

  /**
   * Stops accepting points, then keeps sending (buffer first into the queue, spool oldest first)
   * for up to `closeTimeoutMs`; whatever is left goes to, or stays in, the spool for the next
   * writer on the same file. A request still in flight at the deadline is waited for (at most
   * `timeoutMs`), since abandoning it could lose or duplicate its batch. Until close() is called,
   * a writer with points still to deliver keeps retrying (and keeps the process alive).
   */
  close(): Promise<void> {
    this.closed ??= this.shutdown();
    return this.closed;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    this.deadline = Date.now() + this.opts.closeTimeoutMs;
    this.clearFlushTimer();
    // One attempt right away rather than waiting out a long backoff.
    this.nextAttemptAt = Math.min(this.nextAttemptAt, Date.now());
    this.kick();
    while (this.pumping) await this.pumpDone;
    try {
      this.spoolBuffer(true);
    } catch (err) {
      this.log?.error(
        { err: describeError(err), lostPoints: this.pending.points },
        "influx spool unavailable at shutdown: buffered points lost",
      );
    }
    this.spool.close();
    this.settleFlushWaiters(true);
    const stats = this.stats();
    this.log?.info(
      {
        pointsWritten: stats.pointsWritten,
        spoolPoints: stats.spoolPoints,
        droppedPoints: stats.droppedPoints,
      },
      stats.spoolPoints > 0 ? "influx writer closed; points left in the spool" : "influx writer closed",
    );
  }

  private assertOpen(): void {
    if (this.stopping) throw new StateError("influx writer is closed");
  }

  private enqueue(lines: readonly string[]): void {
    if (lines.length === 0) return;
    for (const line of lines) this.pending.push(line);
    this.afterEnqueue();
  }

  private afterEnqueue(): void {
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      this.flushWanted = true;
      this.kick();
    }, this.flushIntervalMs);
    if (this.pending.hasFullBatch) this.kick();
  }

  private clearFlushTimer(): void {
    if (this.flushTimer !== undefined) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Starts the send loop, or wakes it from a backoff wait so it can move new batches to the spool. */
  private kick(): void {
    this.wake?.();
    if (this.pumping) return;
    this.pumping = true;
    this.pumpDone = this.pump().catch((err: unknown) => {
      // pump() handles its own failures; this only keeps a bug from becoming an unhandled rejection.
      this.log?.error({ err: describeError(err) }, "influx writer loop failed");
    });
  }

  private async pump(): Promise<void> {
    try {
      for (;;) {
        try {
          if (!(await this.step())) return;
        } catch (err) {
          // The spool itself failed (disk full, I/O error). The points stay where they were.
          this.noteFailure(err, "retry", "influx spool error");
          await this.sleepUntilNextAttempt();
        } finally {
          this.settleFlushWaiters(false);
        }
      }
    } finally {
      // Runs in the same turn as the last check, so a kick() cannot fall between them.
      this.pumping = false;
    }
  }

  /** One unit of work. Returns false when there is nothing left to do until the next kick. */
  private async step(): Promise<boolean> {
    if (this.stopping && Date.now() >= this.deadline) {
      // Requests in flight are waited for (each bounded by timeoutMs): abandoning one could lose
      // or duplicate its batch.
      await Promise.all(this.inFlight);
      this.spoolBuffer(true);
      return false;
    }
    const cutAll = this.flushWanted || this.stopping;

    if (this.spool.batches() > 0) {
      // Direct sends still out go to the spool (if they fail) before anything newer does.
      if (this.inFlight.size > 0) {
        await Promise.race(this.inFlight);
        return true;
      }
      // Queue mode: new batches go behind the spooled ones, the oldest spooled batch is sent.
      this.spoolBuffer(cutAll);
      if (Date.now() < this.nextAttemptAt) {
        await this.sleepUntilNextAttempt();
        return true;
      }
      const head = this.spool.peek();
      if (head === undefined) return true;
      this.afterSpoolSend(head, await this.send(head));
      return true;
    }

    // Direct mode: send from memory, up to `maxInFlight` batches at once.
    const due = this.pending.points > 0 && (cutAll || this.pending.hasFullBatch);
    if (!due || this.inFlight.size >= this.opts.maxInFlight) {
      if (this.inFlight.size === 0) return false;
      // Wait for a send to finish: it frees a slot, or may have failed and started the spool.
      await Promise.race(this.inFlight);
      return true;
    }
    if (Date.now() < this.nextAttemptAt) {
      // A send failed (or the spool did) and the spool is empty: it can be empty because a full
      // disk dropped what came in. What is buffered goes to the spool while the backoff runs, so
      // memory and a waiting flush() do not wait for InfluxDB (a spool failure throws here again,
      // and the loop retries it).
      this.spoolBuffer(cutAll);
      await this.sleepUntilNextAttempt();
      return true;
    }
    const batch = this.pending.take(cutAll) as LineBatch;
    if (this.pending.points === 0) this.bufferEmptied();
    this.inFlightPoints += batch.points;
    // Outcomes are handled in the order the batches were cut, whatever order the answers come
    // in: failed batches reach the spool in write order.
    const slot: { batch: LineBatch; outcome?: SendOutcome } = { batch };
    this.answers.push(slot);
    const sending: Promise<void> = this.send(batch).then((outcome) => {
      slot.outcome = outcome;
      while (this.answers[0]?.outcome) {
        const done = this.answers.shift() as { batch: LineBatch; outcome: SendOutcome };
        this.inFlightPoints -= done.batch.points;
        try {
          this.afterDirectSend(done.batch, done.outcome);
        } catch (err) {
          // The spool failed (disk full, I/O error); the batch is back in the buffer.
          this.noteFailure(err, "retry", "influx spool error");
        }
      }
      this.inFlight.delete(sending);
      this.settleFlushWaiters(false);
    });
    this.inFlight.add(sending);
    return true;
  }

  private afterDirectSend(batch: LineBatch, outcome: SendOutcome): void {
    if (outcome.ok) {
      this.noteSuccess(batch.points);
    } else if (outcome.kind === "reject") {
      this.noteRejected(outcome.error, batch, batch.points);
    } else {
      this.noteFailure(outcome.error, outcome.kind, "influx write failed: spooling");
      try {
        this.toSpool(batch);
      } catch (err) {
        // Keep the batch in memory, in front of everything newer; the loop retries both.
        this.pending.putBack(batch);
        this.flushWanted = true;
        throw err;
      }
    }
  }

  private afterSpoolSend(head: SpoolBatch, outcome: SendOutcome): void {
    if (outcome.ok) {
      // 0: an append dropped it for room while it was in flight; it was written all the same.
      if (this.spool.remove(head.id) === 0) this.droppedButWritten += head.points;
      this.noteSuccess(head.points);
      this.spoolDelivered();
    } else if (outcome.kind === "reject") {
      this.noteRejected(outcome.error, head, this.spool.remove(head.id));
    } else {
      this.noteFailure(outcome.error, outcome.kind, "influx write failed: spooling");
    }
  }

  /** Moves full batches (and with `all`, the rest) from memory to the end of the spool. */
  private spoolBuffer(all: boolean): void {
    for (let batch = this.pending.take(all); batch; batch = this.pending.take(all)) {
      try {
        this.toSpool(batch);
      } catch (err) {
        // Not spooled: it stays in memory, in front, for the next attempt.
        this.pending.putBack(batch);
        throw err;
      }
    }
    if (this.pending.points === 0) this.bufferEmptied();
    this.settleFlushWaiters(false);
  }

  private bufferEmptied(): void {
    this.flushWanted = false;
    this.clearFlushTimer();
  }

  private toSpool(batch: LineBatch): void {
    const dropped = this.spool.appendBatch(batch);
    this.counters.spooledPoints += batch.points;
    // Said once per episode (bound reached, or disk full), not once per batch; every dropped point
    // is counted (droppedPoints, velox_influx_points_dropped_total).
    if (dropped > 0 && !this.dropping) {
      this.dropping = true;
      this.log?.warn(
        {
          dropped,
          spoolPoints: this.spool.points(),
          maxSpoolPoints: this.opts.maxSpoolPoints,
          diskFull: this.spool.diskFull,
        },
        this.spool.diskFull
          ? "influx spool's disk is full: oldest points dropped (counted) until there is room"
          : "influx spool full: oldest points dropped",
      );
    }
  }

  /**
   * An episode of drops ends when InfluxDB takes points from the spool, not when one append fits:
   * on a nearly full disk a small batch fits between large ones that do not, and the log would
   * flap between "full" and "room again" for as long as the outage lasts.
   */
  private spoolDelivered(): void {
    if (!this.dropping) return;
    this.dropping = false;
    this.log?.info({ spoolPoints: this.spool.points() }, "influx spool has room again");
  }

  private async send(batch: LineBatch): Promise<SendOutcome> {
    try {
      await this.post(batch.bytes ?? batch.text);
      return { ok: true };
    } catch (error) {
      // The transport fails a request only for a status of 300 or more, or no answer at all.
      return { ok: false, kind: classifyWriteError(error), error };
    }
  }

  /**
   * POSTs one body through the client's transport (auth header, gzip above the threshold,
   * HttpError on ≥ 300), without its WriteApi, whose per-line bookkeeping this class does not
   * need: it cuts its own batches. `send`, not `request`: `request` turns a body that is not a
   * string into JSON, and a batch goes as its bytes (the transport copies a Buffer as it is).
   */
  private post(body: Buffer | string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.transport.send(
        this.writePath,
        body as string,
        {
          method: "POST",
          headers: { "content-type": "text/plain; charset=utf-8" },
          // Without a threshold the client sends the body as it is.
          ...(this.opts.gzip ? { gzipThreshold: GZIP_THRESHOLD_BYTES } : {}),
        },
        { error: reject, complete: () => resolve() },
      );
    });
  }

  private noteSuccess(points: number): void {
    const now = Date.now();
    this.counters.pointsWritten += points;
    this.counters.batchesWritten += 1;
    this.recent.push({ at: now, points });
    this.pruneRecent(now);
    this.failuresInARow = 0;
    this.nextAttemptAt = 0;
    if (!this.up) {
      this.up = true;
      this.log?.info(
        { spoolPoints: this.spool.points(), lastError: this.lastError },
        "influx writes succeed again",
      );
    }
  }

  private noteRejected(error: unknown, batch: LineBatch, points: number): void {
    this.counters.failedPoints += points;
    // The server answered: it is reachable, the data was the problem.
    this.failuresInARow = 0;
    this.nextAttemptAt = 0;
    this.up = true;
    this.lastError = describeError(error);
    const status = error instanceof HttpError ? error.statusCode : undefined;
    const lines = batchLines(batch);
    const { line, named } =
      error instanceof HttpError ? offendingLine(error, lines) : { line: lines[0] ?? "", named: false };
    this.log?.error(
      { status, err: this.lastError, points, [named ? "line" : "firstLine"]: truncate(line, 1000) },
      "influx refused a batch: dropped, not retried",
    );
  }

  private noteFailure(error: unknown, kind: WriteFailureKind, message: string): void {
    const wasUp = this.up;
    const previous = this.lastError;
    this.up = false;
    this.lastError = describeError(error);
    this.counters.retries += 1;
    this.failuresInARow += 1;
    const backoff = Math.min(
      this.opts.maxBackoffMs,
      this.opts.minBackoffMs * 2 ** Math.min(this.failuresInARow - 1, 30),
    );
    const asked = retryAfterMs(error);
    const delay = asked === undefined ? backoff : Math.min(Math.max(backoff, asked), MAX_RETRY_AFTER_MS);
    this.nextAttemptAt = Date.now() + delay;
    const fields = {
      err: this.lastError,
      kind,
      status: error instanceof HttpError ? error.statusCode : undefined,
      retryInMs: delay,
      spoolPoints: this.spool.points(),
    };
    // Loud on the change of state (or of the error), quiet while the same outage goes on.
    if (wasUp || previous !== this.lastError) {
      if (kind === "hold")
        this.log?.error(fields, `${message} (configuration: check url, token, org, bucket)`);
      else this.log?.warn(fields, message);
    } else {
      this.log?.debug(fields, message);
    }
  }

  /** Waits until the next attempt is due (bounded by the close deadline), or until kicked. */
  private sleepUntilNextAttempt(): Promise<void> {
    let ms = this.nextAttemptAt - Date.now();
    if (this.stopping) ms = Math.min(ms, this.deadline - Date.now());
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }

  private settleFlushWaiters(force: boolean): void {
    if (this.flushWaiters.length === 0) return;
    if (!force && (this.pending.points > 0 || this.inFlight.size > 0)) return;
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private pruneRecent(now: number): void {
    const from = now - RATE_WINDOW_MS;
    let drop = 0;
    while (drop < this.recent.length && (this.recent[drop]?.at ?? now) < from) drop += 1;
    if (drop > 0) this.recent.splice(0, drop);
  }
}
