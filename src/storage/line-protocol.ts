import { ValidationError } from "../domain/errors.js";
import { ID_PATTERN } from "../domain/identifiers.js";
import {
  type FieldType,
  INFLUX_SCHEMA,
  type MeasurementDef,
  type MeasurementName,
  type SeriesPoint,
} from "../schema/influx.js";
import type { LineSink } from "./line-batcher.js";

/**
 * Serialisation of a {@link SeriesPoint} to one line of InfluxDB line protocol, checked against
 * INFLUX_SCHEMA first, by a serialiser compiled once per measurement: tag and field names sorted
 * once (InfluxDB's preferred order, as the client's `Point` writes them), tag values checked once
 * per distinct value, numbers formatted as `Point` formats them (`String(n)`, integers with `i`).
 * No escaping is needed: measurement, tag and field names come from the schema and tag values
 * match the shared identifier rule, which admits no character line protocol would have to escape.
 */

/** A point of any one measurement (a plain `SeriesPoint` would demand the tags of all of them). */
export type AnySeriesPoint = { [M in MeasurementName]: SeriesPoint<M> }[MeasurementName];

const TIMESTAMP_PATTERN = /^-?\d{1,19}$/;
const INT64_MAX_DIGITS = "9223372036854775807";
const INT64_MIN_DIGITS = "9223372036854775808";
/** Distinct tag values remembered as checked, per measurement, before the memo starts over. */
const CHECKED_TAG_VALUES_MAX = 100_000;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Whether a decimal string (already matching TIMESTAMP_PATTERN) fits int64, without BigInt. */
function withinInt64(timestamp: string): boolean {
  const negative = timestamp.startsWith("-");
  const digits = negative ? timestamp.slice(1) : timestamp;
  if (digits.length < 19) return true;
  return digits <= (negative ? INT64_MIN_DIGITS : INT64_MAX_DIGITS);
}

interface CompiledMeasurement {
  def: MeasurementDef;
  /** Tag names, sorted. */
  tags: readonly string[];
  /** Tag values known to be valid (checked once each). */
  checkedValues: Set<string>;
  /** Field names, sorted, with their types. */
  fields: readonly (readonly [string, FieldType])[];
  /** Per field (same order): its text as the line's first field (` name=`) and as a later one (`,name=`). */
  fieldTexts: readonly (readonly [string, string])[];
}

const COMPILED = new Map<string, CompiledMeasurement>(
  (Object.entries(INFLUX_SCHEMA) as [MeasurementName, MeasurementDef][]).map(([name, def]) => {
    const fields = (Object.entries(def.fields) as [string, FieldType][]).sort(([a], [b]) => (a < b ? -1 : 1));
    return [
      name,
      {
        def,
        tags: [...def.tags].sort(),
        checkedValues: new Set<string>(),
        fields,
        fieldTexts: fields.map(([field]) => [` ${field}=`, `,${field}=`] as const),
      },
    ];
  }),
);

/**
 * The line for `point`, e.g. `indicators,indicator_type=rsi,symbol=AAPL period=14i,value=61.5 1700000000123456000`.
 *
 * Rules (each broken one is a ValidationError naming the field):
 * - the measurement is one of INFLUX_SCHEMA;
 * - every tag of the measurement is present, no other; values follow the shared identifier rule
 *   ([A-Za-z0-9._-]{1,64}), so a tag can never be empty (line protocol cannot carry that);
 * - at least one field; every field is defined for the measurement; values are finite numbers;
 *   `integer` fields take safe integers only (written with the `i` suffix), `float` fields any
 *   finite number (an integral value stays a float, so the field type never flips);
 * - the timestamp is the event's own, epoch nanoseconds as a decimal string within int64 (a line
 *   without one would take the server's arrival time).
 */
export function toLineProtocol(point: AnySeriesPoint): string {
  if (!isRecord(point)) throw new ValidationError("point", "must be an object");
  const measurement: unknown = point.measurement;
  const compiled = typeof measurement === "string" ? COMPILED.get(measurement) : undefined;
  if (compiled === undefined) {
    throw new ValidationError("measurement", `unknown measurement ${JSON.stringify(measurement)}`);
  }
  const { def } = compiled;

  const tags: unknown = point.tags;
  if (!isRecord(tags)) throw new ValidationError("tags", "must be an object");
  let line = measurement as string;
  let tagCount = 0;
  for (const name of compiled.tags) {
    const value = tags[name];
    if (typeof value !== "string" || !compiled.checkedValues.has(value)) {
      if (typeof value !== "string" || !ID_PATTERN.test(value)) {
        throw new ValidationError(`tags.${name}`, "must match [A-Za-z0-9._-]{1,64}");
      }
      if (compiled.checkedValues.size >= CHECKED_TAG_VALUES_MAX) compiled.checkedValues.clear();
      compiled.checkedValues.add(value);
    }
    line += `,${name}=${value}`;
    tagCount++;
  }
  for (const name in tags) {
    if (!def.tags.includes(name)) {
      throw new ValidationError(`tags.${name}`, `not a tag of ${measurement} (tags: ${def.tags.join(", ")})`);
    }
  }
  if (tagCount !== compiled.tags.length) throw new ValidationError("tags", "a tag is missing");

  const fields: unknown = point.fields;
  if (!isRecord(fields)) throw new ValidationError("fields", "must be an object");
  let fieldText = "";
  for (const [name, type] of compiled.fields) {
    const value = fields[name];
    // An explicitly undefined optional field is an absent field, not a value.
    if (value === undefined) continue;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new ValidationError(`fields.${name}`, `must be a finite number, got ${String(value)}`);
    }
    if (type === "integer") {
      if (!Number.isSafeInteger(value)) {
        throw new ValidationError(`fields.${name}`, `is an integer field, got ${value}`);
      }
      fieldText += `${fieldText === "" ? "" : ","}${name}=${value}i`;
    } else {
      fieldText += `${fieldText === "" ? "" : ","}${name}=${String(value)}`;
    }
  }
  for (const name in fields) {
    if (!Object.hasOwn(def.fields, name) && fields[name] !== undefined) {
      throw new ValidationError(
        `fields.${name}`,
        `not a field of ${measurement} (fields: ${Object.keys(def.fields).join(", ")})`,
      );
    }
  }
  if (fieldText === "") throw new ValidationError("fields", "at least one field is required");

  const timestamp: unknown = point.timestampNs;
  if (typeof timestamp !== "string" || !TIMESTAMP_PATTERN.test(timestamp)) {
    throw new ValidationError("timestampNs", "must be epoch nanoseconds as a decimal string");
  }
  if (!withinInt64(timestamp)) throw new ValidationError("timestampNs", "out of the int64 range");
  return `${line} ${fieldText} ${timestamp.replace(/^(-?)0+(?=\d)/, "$1")}`;
}

/** Epoch ns as toLineProtocol would write it unchanged: digits, no leading zero, within int64. */
function plainTimestamp(ns: string): boolean {
  const first = ns.charCodeAt(0);
  return first > 48 && first <= 57 && TIMESTAMP_PATTERN.test(ns) && withinInt64(ns);
}

/** A line built by a {@link SeriesSerializer}: already checked against the schema. */
export type SchemaLine = string & { readonly __schemaLine: true };

/** Distinct tag-value combinations remembered per measurement before the prefix cache starts over. */
const PREFIX_CACHE_MAX = 100_000;

type PrefixNode = Map<string, PrefixNode | string>;

/**
 * The hot-path serialiser of one measurement: the line `toLineProtocol` would write for the same
 * point (a test holds the two byte-equal), with the `measurement,tag=…` prefix built and checked
 * once per distinct tag values, fields read in the schema's sorted order, and no point object.
 */
export class SeriesSerializer<M extends MeasurementName> {
  private readonly compiled: CompiledMeasurement;
  private prefixes: PrefixNode = new Map();
  private cached = 0;

  constructor(readonly measurement: M) {
    this.compiled = COMPILED.get(measurement) as CompiledMeasurement;
  }

  /**
   * The line for `tags`, `fields` at `timestampNs` (epoch ns as a decimal string, e.g. from
   * `msToNs`). Throws ValidationError as `toLineProtocol` does: an unknown tag value, a field
   * that is not a finite number (or not a safe integer for an integer field), no field at all.
   */
  line(tags: SeriesPoint<M>["tags"], fields: SeriesPoint<M>["fields"], timestampNs: string): SchemaLine {
    const text = new TextSink();
    this.writeTo(text, tags, fields, timestampNs);
    return text.line as SchemaLine;
  }

  /**
   * Writes the point's line into `sink`, piece by piece, without building it:
   * the hot path (a tick's ten points). Checks come first, so a point that throws (as `line`
   * throws) writes nothing.
   */
  writeTo(
    sink: LineSink,
    tags: SeriesPoint<M>["tags"],
    fields: SeriesPoint<M>["fields"],
    timestampNs: string,
  ): void {
    const values = fields as Record<string, unknown>;
    if (!this.plain(tags as Record<string, unknown>, values, timestampNs)) {
      sink.append(this.slow(tags, fields, timestampNs));
      sink.endLine();
      return;
    }
    // Throws (before anything is written) for a tag value that breaks the identifier rule.
    const prefix = this.prefix(tags as Record<string, unknown>);
    sink.append(prefix);
    const { fields: defs, fieldTexts } = this.compiled;
    let first = true;
    for (let i = 0; i < defs.length; i++) {
      const [name, type] = defs[i] as readonly [string, FieldType];
      const value = values[name];
      if (value === undefined) continue;
      const [asFirst, asNext] = fieldTexts[i] as readonly [string, string];
      sink.append(first ? asFirst : asNext);
      first = false;
      sink.append(String(value));
      if (type === "integer") sink.append("i");
    }
    sink.append(" ");
    sink.append(timestampNs);
    sink.endLine();
  }

  /**
   * Whether a point takes the fast path as it is: every field a finite number (a safe integer for
   * an integer field) of the schema, at least one, every tag there, a plain timestamp.
   */
  private plain(
    tags: Record<string, unknown>,
    values: Record<string, unknown>,
    timestampNs: string,
  ): boolean {
    const { def } = this.compiled;
    let fieldCount = 0;
    for (const [name, type] of this.compiled.fields) {
      const value = values[name];
      if (value === undefined) continue;
      if (typeof value !== "number" || !Number.isFinite(value)) return false;
      if (type === "integer" && !Number.isSafeInteger(value)) return false;
      fieldCount++;
    }
    if (fieldCount === 0 || !plainTimestamp(timestampNs)) return false;
    for (const name in values) {
      if (values[name] !== undefined && !Object.hasOwn(def.fields, name)) return false;
    }
    let tagCount = 0;
    for (const _ in tags) tagCount++;
    return tagCount === this.compiled.tags.length;
  }

  private slow(tags: unknown, fields: unknown, timestampNs: string): SchemaLine {
    return toLineProtocol({
      measurement: this.measurement,
      tags,
      fields,
      timestampNs,
    } as AnySeriesPoint) as SchemaLine;
  }

  /** `measurement,tag=value,…` for these tag values, built and checked on first sight. */
  private prefix(tags: Record<string, unknown>): string {
    const names = this.compiled.tags;
    let node: PrefixNode = this.prefixes;
    for (let i = 0; i < names.length; i++) {
      const value = tags[names[i] as string];
      const next = typeof value === "string" ? node.get(value) : undefined;
      if (next === undefined) return this.build(tags);
      if (i === names.length - 1) return next as string;
      node = next as PrefixNode;
    }
    return this.build(tags);
  }

  private build(tags: Record<string, unknown>): string {
    // toLineProtocol checks every tag; its line, cut before the fields, is the prefix.
    const probe = toLineProtocol({
      measurement: this.measurement,
      tags,
      fields: this.probeFields(),
      timestampNs: "0",
    } as AnySeriesPoint);
    // A flat copy, not a slice of the probe line: it is read byte by byte on every point.
    const prefix = Buffer.from(probe.slice(0, probe.indexOf(" ")), "latin1").toString("latin1");
    if (this.cached >= PREFIX_CACHE_MAX) {
      this.prefixes = new Map();
      this.cached = 0;
    }
    const names = this.compiled.tags;
    let node = this.prefixes;
    for (let i = 0; i < names.length - 1; i++) {
      const value = tags[names[i] as string] as string;
      let next = node.get(value) as PrefixNode | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(value, next);
      }
      node = next;
    }
    node.set(tags[names[names.length - 1] as string] as string, prefix);
    this.cached++;
    return prefix;
  }

  /** One valid field, so the probe line passes the field rules. */
  private probeFields(): Record<string, number> {
    const [name] = this.compiled.fields[0] as readonly [string, FieldType];
    return { [name]: 0 };
  }
}

/** A sink that keeps the one line written to it as a string (for {@link SeriesSerializer.line}). */
class TextSink implements LineSink {
  line = "";
  append(ascii: string): void {
    this.line += ascii;
  }
  appendBytes(ascii: Uint8Array): void {
    this.line += Buffer.from(ascii.buffer, ascii.byteOffset, ascii.length).toString("latin1");
  }
  endLine(): void {}
}

/** A line's text up to its value, as bytes, and the period it was built with. */
interface IndicatorHead {
  readonly period: number | undefined;
  readonly bytes: Uint8Array;
}

/**
 * The hot path of the `indicators` measurement (about nine points per tick): one indicator value
 * of one symbol. The line's text up to the value, `indicators,indicator_type=rsi_14,symbol=AAPL
 * period=14i,value=`, is cut from the line {@link SERIALIZERS} wrote for the first point of that
 * symbol, name and period (so it passed every check), and kept as bytes; a point after it is that
 * copy, its value and its timestamp. Byte-equal to `SERIALIZERS.indicators` (by test); a point
 * the copy cannot carry (a value that is not finite, a new period, a timestamp not yet checked)
 * goes through the serialiser, which throws as it always does.
 */
export class IndicatorLines {
  private heads = new Map<string, Map<string, IndicatorHead>>();
  private cached = 0;
  /** The last timestamp found plain: a tick's points share one. */
  private checkedTimestamp = "";
  private readonly tags = { symbol: "", indicator_type: "" };
  private readonly valueOnly = { value: 0 };
  private readonly withPeriod = { value: 0, period: 0 };

  writeTo(
    sink: LineSink,
    symbol: string,
    indicatorType: string,
    value: number,
    period: number | undefined,
    timestampNs: string,
  ): void {
    const head = this.heads.get(symbol)?.get(indicatorType);
    if (
      head !== undefined &&
      head.period === period &&
      Number.isFinite(value) &&
      (timestampNs === this.checkedTimestamp || this.plainTimestamp(timestampNs))
    ) {
      sink.appendBytes(head.bytes);
      sink.append(String(value));
      sink.append(" ");
      sink.append(timestampNs);
      sink.endLine();
      return;
    }
    const tags = this.tags;
    tags.symbol = symbol;
    tags.indicator_type = indicatorType;
    let fields: SeriesPoint<"indicators">["fields"];
    if (period === undefined) {
      this.valueOnly.value = value;
      fields = this.valueOnly;
    } else {
      this.withPeriod.value = value;
      this.withPeriod.period = period;
      fields = this.withPeriod;
    }
    // Throws (writing nothing) for a point that breaks the schema.
    const line = SERIALIZERS.indicators.line(tags, fields, timestampNs);
    const tail = `${String(value)} ${timestampNs}`;
    sink.append(line);
    sink.endLine();
    if (!line.endsWith(tail)) return;
    this.remember(symbol, indicatorType, period, line.slice(0, line.length - tail.length));
  }

  private plainTimestamp(timestampNs: string): boolean {
    if (!plainTimestamp(timestampNs)) return false;
    this.checkedTimestamp = timestampNs;
    return true;
  }

  private remember(symbol: string, indicatorType: string, period: number | undefined, head: string): void {
    if (this.cached >= PREFIX_CACHE_MAX) {
      this.heads = new Map();
      this.cached = 0;
    }
    let bySymbol = this.heads.get(symbol);
    if (bySymbol === undefined) {
      bySymbol = new Map();
      this.heads.set(symbol, bySymbol);
    }
    if (!bySymbol.has(indicatorType)) this.cached++;
    bySymbol.set(indicatorType, { period, bytes: Buffer.from(head, "latin1") });
  }
}

/** One serialiser per measurement, shared (their caches are per measurement). */
export const SERIALIZERS: { readonly [M in MeasurementName]: SeriesSerializer<M> } = Object.fromEntries(
  [...COMPILED.keys()].map((name) => [name, new SeriesSerializer(name as MeasurementName)]),
) as { readonly [M in MeasurementName]: SeriesSerializer<M> };

/** The `indicators` hot path, shared (its cache is per symbol and name). */
export const INDICATOR_LINES = new IndicatorLines();
