import type { Logger } from "pino";
import { ValidationError } from "../domain/errors.js";
import { SYMBOL_PATTERN } from "../domain/identifiers.js";
import { type Tick, tickSchema } from "../domain/tick.js";

/**
 * Validation of raw ticks from any source (CSV rows, feed messages, simulator output).
 *
 * A bad tick is never an exception: it is rejected with one reason from a closed set, counted,
 * handed to an optional `onReject` callback, and logged once per reason (the first occurrence,
 * as a sample). What counts as valid is `tickSchema`; this module turns raw text into numbers
 * first, names the reason for each rule the schema enforces, and adds the one rule that needs
 * state: timestamps must increase per symbol.
 */

/**
 * Every reason a tick can be rejected for. Closed and small, so it can label a metric.
 * When a tick breaks several rules, the reason is the first one found in this order:
 * the row's shape, then field by field (timestamp, symbol, prices, volume), then the rules
 * across fields, then the order in time.
 */
export const REJECT_REASONS = [
  "malformed_row",
  "unknown_column",
  "missing_field",
  "bad_timestamp",
  "bad_symbol",
  "not_a_number",
  "non_positive_price",
  "negative_volume",
  "high_below_low",
  "crossed_quote",
  "out_of_order",
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** The fields of a raw tick, in CSV column order; `bid` and `ask` are optional. */
export const TICK_FIELDS = [
  "timestamp",
  "symbol",
  "open",
  "high",
  "low",
  "close",
  "volume",
  "bid",
  "ask",
] as const;
export type TickField = (typeof TICK_FIELDS)[number];
const OPTIONAL_TICK_FIELDS: readonly TickField[] = ["bid", "ask"];
export const REQUIRED_TICK_FIELDS: readonly TickField[] = TICK_FIELDS.filter(
  (f) => !OPTIONAL_TICK_FIELDS.includes(f),
);
const PRICE_FIELDS = ["open", "high", "low", "close", "bid", "ask"] as const;
const NUMERIC_FIELDS = ["open", "high", "low", "close", "volume", "bid", "ask"] as const;
/** Keys a raw object may carry: the tick fields and `source`, which is accepted but not used. */
const KNOWN_KEYS: ReadonlySet<string> = new Set<string>([...TICK_FIELDS, "source"]);

/** Where a raw tick came from, for the rejection report. */
export interface RawContext {
  /** 1-based line number in the source file (the header is line 1). */
  line?: number;
  /** The raw text of the row, as read. */
  row?: string;
}

/** One rejected tick, as reported to `onReject` and in the log sample. */
export interface Rejection {
  reason: RejectReason;
  message: string;
  /** The offending field or column, when one can be named. */
  field?: string;
  /** The raw value of that field (strings cut to 200 characters). */
  value?: unknown;
  symbol?: string;
  line?: number;
  row?: string;
}

export type Validation = { ok: true; tick: Tick } | { ok: false; rejection: Rejection };

export interface TickValidatorOptions {
  /** The `source` tag of every tick this validator passes; one validator serves one source. */
  source?: string;
  /** Logs the first rejection of each reason, at warn. */
  logger?: Logger;
  /** Called for every rejection, e.g. to list bad rows by line number. */
  onReject?: (rejection: Rejection) => void;
  /** Accept a tick whose timestamp equals the previous one of its symbol; default false. */
  allowEqualTimestamps?: boolean;
}

const SAMPLE_LIMIT = 200;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const EPOCH_MS = /^\d{1,16}(\.\d+)?$/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/i;
const ISO_HAS_ZONE = /(Z|[+-]\d{2}(:?\d{2})?)$/i;
/** The largest time a Date can hold. */
const MAX_EPOCH_MS = 8.64e15;

/**
 * Parses a timestamp given as epoch milliseconds (number or decimal string) or as ISO 8601
 * (`2024-01-02T14:30:00.250Z`; a date-time without an offset is taken as UTC, never as local
 * time). Returns undefined when it is neither.
 */
export function parseTimestamp(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && value >= 0 && value <= MAX_EPOCH_MS ? value : undefined;
  }
  if (typeof value !== "string") return undefined;
  const canonical = canonicalIso(value);
  if (canonical !== undefined) return canonical;
  const text = value.trim();
  if (EPOCH_MS.test(text)) {
    const ms = Number(text);
    return ms <= MAX_EPOCH_MS ? ms : undefined;
  }
  if (!ISO_8601.test(text)) return undefined;
  // Date-only forms are UTC already; a date-time without an offset would be local: make it UTC.
  const utc = text.length > 10 && !ISO_HAS_ZONE.test(text) ? `${text}Z` : text;
  const ms = Date.parse(utc.replace(" ", "T"));
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}

/** Digits of `text` from `start` to `end` (exclusive) as a number, or -1 if one is not a digit. */
function digits(text: string, start: number, end: number): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * `YYYY-MM-DDTHH:MM:SS.sssZ` from 1970 on, every part in its range, read digit by digit: what
 * `toISOString` writes and CSV files mostly hold, about ten times cheaper than the regular
 * expressions and `Date.parse`. Anything else (another form, a day 31 in April) is undefined
 * here and left to the general path, so the answer is always the general path's.
 */
function canonicalIso(text: string): number | undefined {
  if (
    text.length !== 24 ||
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 || // T
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(19) !== 46 || // .
    text.charCodeAt(23) !== 90 // Z
  ) {
    return undefined;
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 7);
  const day = digits(text, 8, 10);
  const hour = digits(text, 11, 13);
  const minute = digits(text, 14, 16);
  const second = digits(text, 17, 19);
  const ms = digits(text, 20, 23);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return undefined;
  if (minute < 0 || minute > 59 || second < 0 || second > 59 || ms < 0) return undefined;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : (DAYS_IN_MONTH[month - 1] as number);
  if (day > days) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second, ms);
}

function isBlank(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === "string" && value.trim() === "");
}

function parseNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value !== "string") return undefined;
  const text = value.trim();
  if (!DECIMAL.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

function sample(value: unknown): unknown {
  return typeof value === "string" && value.length > SAMPLE_LIMIT
    ? `${value.slice(0, SAMPLE_LIMIT)}…`
    : value;
}

function zeroCounts(): Record<RejectReason, number> {
  return Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
}

export class TickValidator {
  private readonly source: string;
  private readonly logger: Logger | undefined;
  private readonly onReject: ((rejection: Rejection) => void) | undefined;
  private readonly allowEqual: boolean;
  private readonly rejectedBy = zeroCounts();
  private readonly lastBySymbol = new Map<string, number>();
  private acceptedCount = 0;

  constructor(options: TickValidatorOptions = {}) {
    const source = options.source ?? "simulator";
    if (!tickSchema.shape.source.safeParse(source).success) {
      throw new ValidationError("source", "must match [a-z0-9_-]{1,32}");
    }
    this.source = source;
    this.logger = options.logger;
    this.onReject = options.onReject;
    this.allowEqual = options.allowEqualTimestamps ?? false;
  }

  /**
   * Checks one raw tick: an object keyed by tick field, values as numbers or text (empty text
   * is a missing value; empty `bid`/`ask` are absent). Returns the Tick, or the rejection, which
   * has already been counted, reported and (the first of its reason) logged.
   */
  validate(raw: Readonly<Record<string, unknown>>, context?: RawContext): Validation {
    const found = this.check(raw);
    if ("reason" in found) {
      const { reason, ...details } = found;
      const symbol: unknown = typeof raw === "object" && raw !== null ? raw.symbol : undefined;
      if (typeof symbol === "string" && symbol !== "") details.symbol = symbol;
      return { ok: false, rejection: this.reject(reason, { ...details, ...context }) };
    }
    const tick = found;
    const last = this.lastBySymbol.get(tick.symbol);
    if (last !== undefined && (tick.timestamp < last || (tick.timestamp === last && !this.allowEqual))) {
      const rejection = this.reject("out_of_order", {
        ...context,
        field: "timestamp",
        value: raw.timestamp,
        symbol: tick.symbol,
        message: `timestamp ${new Date(tick.timestamp).toISOString()} is not after the previous ${tick.symbol} tick at ${new Date(last).toISOString()}`,
      });
      return { ok: false, rejection };
    }
    this.lastBySymbol.set(tick.symbol, tick.timestamp);
    this.acceptedCount++;
    return { ok: true, tick };
  }

  /**
   * Counts, reports and (once per reason) logs a rejection found outside `validate`, such as a
   * CSV row with the wrong number of fields. Returns the rejection.
   */
  reject(reason: RejectReason, details: Omit<Rejection, "reason">): Rejection {
    const rejection: Rejection = { reason, ...details };
    if ("value" in details) rejection.value = sample(details.value);
    if (details.symbol !== undefined) rejection.symbol = sample(details.symbol) as string;
    if (details.row !== undefined) rejection.row = sample(details.row.trim()) as string;
    const seen = this.rejectedBy[reason]++;
    if (seen === 0) {
      this.logger?.warn(
        { ...rejection, source: this.source },
        "Tick rejected; later rejections for the same reason are counted, not logged",
      );
    }
    this.onReject?.(rejection);
    return rejection;
  }

  /** Rejections so far, by reason; every reason is present. */
  counts(): Record<RejectReason, number> {
    return { ...this.rejectedBy };
  }

  get accepted(): number {
    return this.acceptedCount;
  }

  get rejected(): number {
    let total = 0;
    for (const reason of REJECT_REASONS) total += this.rejectedBy[reason];
    return total;
  }

  /** The timestamp of the last tick accepted for `symbol`. */
  lastTimestamp(symbol: string): number | undefined {
    return this.lastBySymbol.get(symbol);
  }

  /** The tick, or why it is rejected (a Rejection has a `reason`, a Tick never does). */
  private check(raw: Readonly<Record<string, unknown>>): Tick | Rejection {
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      return { reason: "malformed_row", message: "expected an object of tick fields", value: String(raw) };
    }
    const typed = typedTick(raw, this.source);
    if (typed) return typed;
    // for…in, not Object.keys: no array per tick.
    for (const key in raw) {
      if (Object.hasOwn(raw, key) && !KNOWN_KEYS.has(key)) {
        return { reason: "unknown_column", field: key, value: raw[key], message: `unknown field "${key}"` };
      }
    }
    for (const field of REQUIRED_TICK_FIELDS) {
      if (isBlank(raw[field])) return { reason: "missing_field", field, message: `${field} is missing` };
    }
    const timestamp = parseTimestamp(raw.timestamp);
    if (timestamp === undefined) {
      return {
        reason: "bad_timestamp",
        field: "timestamp",
        value: raw.timestamp,
        message: "expected epoch milliseconds or an ISO 8601 date-time",
      };
    }
    const symbol = raw.symbol;
    if (!(typeof symbol === "string" && SYMBOL_PATTERN.test(symbol))) {
      return {
        reason: "bad_symbol",
        field: "symbol",
        value: symbol,
        message: "symbol must match [A-Z0-9._-]{1,32}",
      };
    }
    const numbers: TickNumbers = {
      open: 0,
      high: 0,
      low: 0,
      close: 0,
      volume: 0,
      bid: undefined,
      ask: undefined,
    };
    for (const field of NUMERIC_FIELDS) {
      const value = raw[field];
      if ((field === "bid" || field === "ask") && isBlank(value)) continue;
      const n = parseNumber(value);
      if (n === undefined) {
        return { reason: "not_a_number", field, value, message: `${field} is not a finite number` };
      }
      numbers[field] = n;
    }
    // The schema's rules, checked by hand on the hot path; zod runs only to classify a failure.
    const { open, high, low, close, volume, bid, ask } = numbers;
    const tick = acceptedTick(open, high, low, close, volume, bid, ask, symbol, timestamp, this.source);
    if (tick) return tick;
    const input: Record<string, number | string> = { symbol, timestamp, source: this.source };
    for (const field of NUMERIC_FIELDS) {
      const n = numbers[field];
      if (n !== undefined) input[field] = n;
    }
    const result = tickSchema.safeParse(input);
    if (result.success) return result.data;
    // The first issue by reason order, so a tick with several faults is always classified alike.
    let best: { reason: RejectReason; field: string; message: string } | undefined;
    for (const issue of result.error.issues) {
      const field = String(issue.path[0] ?? "");
      const reason = reasonFor(field, issue.code);
      if (!best || REJECT_REASONS.indexOf(reason) < REJECT_REASONS.indexOf(best.reason)) {
        best = { reason, field, message: `${field} ${issue.message}` };
      }
    }
    const { reason, field, message } = best ?? {
      reason: "malformed_row",
      field: "",
      message: "invalid tick",
    };
    return field ? { reason, field, value: raw[field], message } : { reason, message };
  }
}

/** A raw tick's numbers, parsed and finite; bid and ask may be absent. */
interface TickNumbers {
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  bid: number | undefined;
  ask: number | undefined;
}

/**
 * The tick when its numbers (finite, with a valid symbol and timestamp) pass every rule of
 * `tickSchema` — positive prices, volume ≥ 0, high ≥ low, bid ≤ ask — else undefined. The same
 * object zod would return, built without it: a test holds the two to the same verdicts.
 */
function acceptedTick(
  open: number,
  high: number,
  low: number,
  close: number,
  volume: number,
  bid: number | undefined,
  ask: number | undefined,
  symbol: string,
  timestamp: number,
  source: string,
): Tick | undefined {
  if (!(open > 0 && high > 0 && low > 0 && close > 0 && volume >= 0 && high >= low)) return undefined;
  if (bid !== undefined && !(bid > 0)) return undefined;
  if (ask !== undefined && !(ask > 0)) return undefined;
  if (bid !== undefined && ask !== undefined && bid > ask) return undefined;
  // One literal when quoted (the simulator's ticks, most CSV rows): keys added afterwards would
  // leave every tick with its quote in a slower, out-of-object layout.
  if (bid !== undefined && ask !== undefined) {
    return { symbol, timestamp, open, high, low, close, volume, source, bid, ask };
  }
  const tick: Tick = { symbol, timestamp, open, high, low, close, volume, source };
  if (bid !== undefined) tick.bid = bid;
  if (ask !== undefined) tick.ask = ask;
  return tick;
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/**
 * The tick when the raw tick is already typed (finite numbers, as the simulator hands them over)
 * and passes every rule; undefined sends it down the general path, which parses text and names
 * the fault. The verdicts are the general path's: the same checks without the parsing.
 */
function typedTick(raw: Readonly<Record<string, unknown>>, source: string): Tick | undefined {
  const { timestamp, symbol, open, high, low, close, volume, bid, ask } = raw;
  if (typeof timestamp !== "number" || !(timestamp >= 0 && timestamp <= MAX_EPOCH_MS)) return undefined;
  if (typeof symbol !== "string" || !SYMBOL_PATTERN.test(symbol)) return undefined;
  if (
    !isFiniteNumber(open) ||
    !isFiniteNumber(high) ||
    !isFiniteNumber(low) ||
    !isFiniteNumber(close) ||
    !isFiniteNumber(volume)
  ) {
    return undefined;
  }
  if (bid !== undefined && !isFiniteNumber(bid)) return undefined;
  if (ask !== undefined && !isFiniteNumber(ask)) return undefined;
  for (const key in raw) if (Object.hasOwn(raw, key) && !KNOWN_KEYS.has(key)) return undefined;
  return acceptedTick(open, high, low, close, volume, bid, ask, symbol, timestamp, source);
}

function reasonFor(field: string, code: string): RejectReason {
  if (field === "symbol") return "bad_symbol";
  if (field === "timestamp") return "bad_timestamp";
  if (field === "volume") return "negative_volume";
  if (code === "custom") return field === "high" ? "high_below_low" : "crossed_quote";
  if ((PRICE_FIELDS as readonly string[]).includes(field)) return "non_positive_price";
  return "malformed_row";
}
