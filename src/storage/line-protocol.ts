import { Point } from "@influxdata/influxdb-client";
import { ValidationError } from "../domain/errors.js";
import { ID_PATTERN } from "../domain/identifiers.js";
import {
  INFLUX_SCHEMA,
  type MeasurementDef,
  type MeasurementName,
  type SeriesPoint,
} from "../schema/influx.js";

/**
 * Serialisation of a {@link SeriesPoint} to one line of InfluxDB line protocol, checked against
 * INFLUX_SCHEMA first. The client's `Point` does the escaping and number formatting; this module
 * decides what is allowed to reach it, because `Point` itself silently drops what it cannot write
 * (an empty tag value, a point without fields) or rounds it (a fractional integer field).
 */

/** A point of any one measurement (a plain `SeriesPoint` would demand the tags of all of them). */
export type AnySeriesPoint = { [M in MeasurementName]: SeriesPoint<M> }[MeasurementName];

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TIMESTAMP_PATTERN = /^-?\d{1,19}$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

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
  if (typeof measurement !== "string" || !Object.hasOwn(INFLUX_SCHEMA, measurement)) {
    throw new ValidationError("measurement", `unknown measurement ${JSON.stringify(measurement)}`);
  }
  const def: MeasurementDef = INFLUX_SCHEMA[measurement as MeasurementName];
  const out = new Point(measurement);

  const tags: unknown = point.tags;
  if (!isRecord(tags)) throw new ValidationError("tags", "must be an object");
  for (const name of Object.keys(tags)) {
    if (!def.tags.includes(name)) {
      throw new ValidationError(`tags.${name}`, `not a tag of ${measurement} (tags: ${def.tags.join(", ")})`);
    }
  }
  for (const name of def.tags) {
    const value = tags[name];
    if (typeof value !== "string" || !ID_PATTERN.test(value)) {
      throw new ValidationError(`tags.${name}`, "must match [A-Za-z0-9._-]{1,64}");
    }
    out.tag(name, value);
  }

  const fields: unknown = point.fields;
  if (!isRecord(fields)) throw new ValidationError("fields", "must be an object");
  let fieldCount = 0;
  for (const [name, value] of Object.entries(fields)) {
    // An explicitly undefined optional field is an absent field, not a value.
    if (value === undefined) continue;
    const type = Object.hasOwn(def.fields, name) ? def.fields[name] : undefined;
    if (type === undefined) {
      throw new ValidationError(
        `fields.${name}`,
        `not a field of ${measurement} (fields: ${Object.keys(def.fields).join(", ")})`,
      );
    }
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new ValidationError(`fields.${name}`, `must be a finite number, got ${String(value)}`);
    }
    if (type === "integer") {
      if (!Number.isSafeInteger(value)) {
        throw new ValidationError(`fields.${name}`, `is an integer field, got ${value}`);
      }
      out.intField(name, value);
    } else {
      out.floatField(name, value);
    }
    fieldCount += 1;
  }
  if (fieldCount === 0) throw new ValidationError("fields", "at least one field is required");

  const timestamp: unknown = point.timestampNs;
  if (typeof timestamp !== "string" || !TIMESTAMP_PATTERN.test(timestamp)) {
    throw new ValidationError("timestampNs", "must be epoch nanoseconds as a decimal string");
  }
  const ns = BigInt(timestamp);
  if (ns < INT64_MIN || ns > INT64_MAX) throw new ValidationError("timestampNs", "out of the int64 range");
  out.timestamp(ns.toString());

  const line = out.toLineProtocol();
  // Unreachable after the checks above; guards against a client change that would drop a point.
  if (line === undefined) throw new ValidationError("point", "could not be serialised");
  return line;
}
