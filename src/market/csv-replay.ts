import { createReadStream, type ReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { parse as parseLine } from "csv-parse/sync";
import type { Logger } from "pino";
import { ConfigError, errorMessage, StateError, ValidationError } from "../domain/errors.js";
import type { Tick } from "../domain/tick.js";
import { MAX_BATCH, oneByOne, Pacer } from "./pacer.js";
import {
  REQUIRED_TICK_FIELDS,
  type Rejection,
  TICK_FIELDS,
  type TickField,
  TickValidator,
} from "./tick-validator.js";

/**
 * Replays a CSV file of ticks as an async iterator, streaming (the file is never read whole).
 *
 * Format: a header row naming the columns, then one tick per row:
 * `timestamp,symbol,open,high,low,close,volume[,bid,ask]`, in any column order; timestamps are
 * ISO 8601 or epoch milliseconds. A header with an unknown, missing or repeated column stops the
 * replay before it starts (`CsvReplay.open` throws). A bad row never does: it is rejected through
 * the validator, counted by reason and reported with its line number, and the replay goes on.
 */

/** The columns a tick CSV may have, in the order the sample files use. */
export const CSV_COLUMNS: readonly TickField[] = TICK_FIELDS;

/** A row longer than this is skipped (counted as malformed) up to the next line break. */
export const MAX_ROW_BYTES = 1024 * 1024;
/** Ticks due within this many ms are handed out without waiting. */
const PACE_SLACK_MS = 5;

export interface CsvReplayOptions {
  path: string;
  /** Multiple of real time, by the ticks' own timestamps (10 = ten times faster), or `max`; default `max`. */
  speed?: number | "max";
  /** Ends the iteration (without an error) when aborted. */
  signal?: AbortSignal;
  logger?: Logger;
  /** Called for every rejected row (reason, line number, raw row). Ignored when `validator` is given. */
  onReject?: (rejection: Rejection) => void;
  /** Validator to use, e.g. one shared with metrics; default a new one with source `replay`. */
  validator?: TickValidator;
}

export interface ReplayProgress {
  /** Data rows read so far (the header not counted), valid or not. */
  rowsRead: number;
  /** Bytes read from the file so far (reading runs at most one 64 KiB chunk ahead of the rows). */
  bytesRead: number;
  /** Size of the file. */
  totalBytes: number;
  ticks: number;
  rejected: number;
  done: boolean;
}

/** A line of the file: its fields, or why it has none (too long, a quote never closed). */
type ParsedRow =
  | { record: string[]; line: number; raw: string }
  | { unreadable: string; line: number; raw: string };

/**
 * The file's lines, one row each, split by hand rather than by a streaming CSV parser: a tick CSV
 * has no field that may hold a line break, so a line break always ends a row. A stray quote then
 * spoils its own line only, and a line longer than `maxBytes` is skipped up to the next break
 * (reported, never held whole in memory): the replay resynchronises at the next line either way.
 * Blank lines are skipped; a UTF-8 BOM is dropped. The rows come in arrays, those that end in
 * one chunk of the file (no await per row); an array may be empty.
 */
async function* rowsOf(input: AsyncIterable<Buffer>, maxBytes: number): AsyncGenerator<ParsedRow[]> {
  let parts: Buffer[] = [];
  let size = 0;
  let line = 0;
  let skipping = false;
  let first = true;
  const finish = (): ParsedRow | undefined => {
    line++;
    if (skipping) {
      skipping = false;
      return { unreadable: `longer than ${maxBytes} bytes; skipped to the next line`, line, raw: "" };
    }
    let text = Buffer.concat(parts, size).toString("utf8");
    parts = [];
    size = 0;
    if (first) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (text.endsWith("\r")) text = text.slice(0, -1);
    if (text.trim() === "") return undefined;
    return fieldsOf(text, line);
  };
  for await (const chunk of input) {
    const rows: ParsedRow[] = [];
    let start = 0;
    for (;;) {
      const end = chunk.indexOf(10, start);
      const piece = chunk.subarray(start, end === -1 ? chunk.length : end);
      if (!skipping) {
        if (size + piece.length > maxBytes) {
          skipping = true;
          parts = [];
          size = 0;
        } else if (piece.length > 0) {
          parts.push(piece);
          size += piece.length;
        }
      }
      if (end === -1) break;
      const row = finish();
      if (row) rows.push(row);
      start = end + 1;
    }
    yield rows;
  }
  if (size > 0 || skipping) {
    const row = finish();
    if (row) yield [row];
  }
}

/** The fields of one line; quotes are read by csv-parse (a quote left open spoils the line only). */
function fieldsOf(text: string, line: number): ParsedRow {
  if (!text.includes('"')) return { record: text.split(","), line, raw: text };
  try {
    const [record] = parseLine(text, { relax_quotes: true, relax_column_count: true }) as string[][];
    return { record: record ?? [], line, raw: text };
  } catch (err) {
    return { unreadable: (err as Error).message, line, raw: text };
  }
}

export class CsvReplay implements AsyncIterable<Tick> {
  private rowsRead = 0;
  private ticks = 0;
  private done = false;
  private started = false;

  private constructor(
    readonly path: string,
    /** The columns, as the header names them. */
    readonly columns: readonly TickField[],
    readonly validator: TickValidator,
    readonly totalBytes: number,
    private readonly input: ReadStream,
    private readonly rows: AsyncIterator<ParsedRow[]>,
    /** Rows read with the header, before the rest of the file. */
    private readonly firstRows: ParsedRow[],
    private readonly speed: number | "max",
    private readonly signal: AbortSignal | undefined,
    private readonly logger: Logger | undefined,
  ) {}

  /**
   * Opens the file and reads its header. Throws a ValidationError for a bad `speed` or header
   * (naming the file and the column), and the file system's error for a file that cannot be read.
   */
  static async open(options: CsvReplayOptions): Promise<CsvReplay> {
    const speed = options.speed ?? "max";
    if (speed !== "max" && !(typeof speed === "number" && Number.isFinite(speed) && speed > 0)) {
      throw new ValidationError("speed", 'must be a positive number or "max"');
    }
    const { path } = options;
    const totalBytes = (await stat(path)).size;
    const validator =
      options.validator ??
      new TickValidator({ source: "replay", logger: options.logger, onReject: options.onReject });

    const input = createReadStream(path, { highWaterMark: 64 * 1024 });
    const rows = rowsOf(input, MAX_ROW_BYTES);

    // The first chunks until one ends a line: the header, and the rows that came with it.
    let read: ParsedRow[] = [];
    try {
      while (read.length === 0) {
        const next = await rows.next();
        if (next.done) break;
        read = next.value;
      }
    } catch (error) {
      input.destroy();
      throw error;
    }
    const [header, ...firstRows] = read;
    if (header === undefined) {
      input.destroy();
      throw new ValidationError(`${path} header`, "the file is empty; expected a header row");
    }
    if ("unreadable" in header) {
      input.destroy();
      throw new ValidationError(`${path} header`, `unreadable: ${header.unreadable}`);
    }
    const columns = checkHeader(path, header.record, () => input.destroy());
    return new CsvReplay(
      path,
      columns,
      validator,
      totalBytes,
      input,
      rows,
      firstRows,
      speed,
      options.signal,
      options.logger,
    );
  }

  /**
   * Whether `path` can be replayed: it opens, reads the header and closes. Throws a ConfigError
   * naming the file (missing, unreadable, a directory, empty, a bad header), so a run that cannot
   * start says so in one line before anything else starts.
   */
  static async check(path: string): Promise<void> {
    try {
      const replay = await CsvReplay.open({ path });
      replay.close();
    } catch (err) {
      if (err instanceof ValidationError) throw new ConfigError(path, err.reason);
      const code = (err as NodeJS.ErrnoException).code;
      const reason =
        code === "ENOENT"
          ? "no such file"
          : code === "EISDIR"
            ? "is a directory, not a CSV file"
            : code === "EACCES"
              ? "permission denied"
              : errorMessage(err);
      throw new ConfigError(path, reason);
    }
  }

  progress(): ReplayProgress {
    return {
      rowsRead: this.rowsRead,
      bytesRead: Math.min(this.input.bytesRead, this.totalBytes),
      totalBytes: this.totalBytes,
      ticks: this.ticks,
      rejected: this.validator.rejected,
      done: this.done,
    };
  }

  /** Stops reading and releases the file; iteration, if running, ends. */
  close(): void {
    this.done = true;
    this.input.destroy();
  }

  /** The valid ticks, in file order, one at a time. A replay can be iterated once. */
  [Symbol.asyncIterator](): AsyncGenerator<Tick> {
    return oneByOne(this.batches(), this.signal);
  }

  /**
   * The valid ticks in file order, in batches: at most MAX_BATCH, those due together at `speed`,
   * so a consumer runs a batch without an await per tick. Between batches the event loop gets a
   * turn every TURN_MS when nothing else makes the replay wait. A replay can be iterated once.
   */
  batches(): AsyncGenerator<Tick[]> {
    if (this.started) throw new StateError("a CSV replay can be iterated only once");
    this.started = true;
    return this.replay();
  }

  private async *replay(): AsyncGenerator<Tick[]> {
    const { signal, speed } = this;
    const onAbort = () => this.close();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.logger?.info({ path: this.path, totalBytes: this.totalBytes, speed }, "Replay started");
    let firstTime: number | undefined;
    let wallStart = 0;
    // Until a tick is due, by its own time relative to the first tick's.
    const dueIn = (timestamp: number) =>
      speed === "max" ? 0 : wallStart + (timestamp - (firstTime ?? timestamp)) / speed - performance.now();
    const pacer = new Pacer({ slackMs: PACE_SLACK_MS, signal });
    let reachedEnd = false;
    let batch: Tick[] = [];
    try {
      for (let rows = this.firstRows; ; ) {
        for (const parsed of rows) {
          if (signal?.aborted) return;
          const tick = this.row(parsed);
          if (tick === undefined) continue;
          if (firstTime === undefined) {
            firstTime = tick.timestamp;
            wallStart = performance.now();
          }
          let wait = dueIn(tick.timestamp);
          if (batch.length >= MAX_BATCH || pacer.mustPause(wait)) {
            // What is due goes out before the replay waits; the consumer's time counts against the wait.
            if (batch.length > 0) {
              const out = batch;
              batch = [];
              this.ticks += out.length;
              yield out;
              wait = dueIn(tick.timestamp);
            }
            if (pacer.mustPause(wait) && !(await pacer.pause(wait))) return;
          }
          batch.push(tick);
        }
        if (signal?.aborted) return;
        let next: IteratorResult<ParsedRow[]>;
        try {
          next = await this.rows.next();
        } catch (error) {
          if (signal?.aborted) return;
          throw error;
        }
        if (next.done) {
          reachedEnd = true;
          break;
        }
        rows = next.value;
      }
      if (batch.length > 0) {
        this.ticks += batch.length;
        yield batch;
      }
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.close();
      this.logger?.info(
        {
          path: this.path,
          rows: this.rowsRead,
          ticks: this.ticks,
          rejected: this.validator.rejected,
          finished: reachedEnd,
        },
        "Replay ended",
      );
    }
  }

  /** One data row: the tick, or undefined when it was rejected. */
  private row(parsed: ParsedRow): Tick | undefined {
    this.rowsRead++;
    const { line, raw } = parsed;
    if ("unreadable" in parsed) {
      this.validator.reject("malformed_row", { line, row: raw, message: parsed.unreadable });
      return undefined;
    }
    const { record } = parsed;
    if (record.length !== this.columns.length) {
      this.validator.reject("malformed_row", {
        line,
        row: raw,
        message: `expected ${this.columns.length} fields, got ${record.length}`,
      });
      return undefined;
    }
    const fields: Record<string, string> = {};
    for (let i = 0; i < record.length; i++) {
      fields[this.columns[i] as TickField] = (record[i] as string).trim();
    }
    const result = this.validator.validate(fields, { line, row: raw });
    return result.ok ? result.tick : undefined;
  }
}

/** The header's columns, or a ValidationError naming what is wrong with it. */
function checkHeader(path: string, header: readonly string[], cleanUp: () => void): TickField[] {
  const names = header.map((name) => name.trim());
  const fail = (reason: string): never => {
    cleanUp();
    throw new ValidationError(
      `${path} header`,
      `${reason} (columns: ${CSV_COLUMNS.join(",")}; bid, ask optional)`,
    );
  };
  const known = new Set<string>(CSV_COLUMNS);
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    fail(
      `unknown column${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => JSON.stringify(n)).join(", ")}`,
    );
  }
  const repeated = names.filter((name, i) => names.indexOf(name) !== i);
  if (repeated.length > 0) fail(`repeated column ${JSON.stringify(repeated[0])}`);
  const missing = REQUIRED_TICK_FIELDS.filter((name) => !names.includes(name));
  if (missing.length > 0) fail(`missing column${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`);
  return names as TickField[];
}
