/**
 * The InfluxDB schema: every measurement with its tags and typed fields, defined once. The writer
 * serialises from it, the Flux queries and the dashboards take their names from it, and the tests
 * check every name a query uses against it.
 *
 * Field types are fixed here because InfluxDB rejects a point whose field type differs from the
 * one first written to the shard (a "field type conflict"); quantities and volumes are floats so
 * fractional sizes never conflict with whole ones.
 */

export type FieldType = "float" | "integer";

export interface MeasurementDef {
  readonly tags: readonly string[];
  readonly fields: Readonly<Record<string, FieldType>>;
}

export const INFLUX_SCHEMA = {
  ticks: {
    tags: ["symbol", "source"],
    fields: {
      open: "float",
      high: "float",
      low: "float",
      close: "float",
      volume: "float",
      bid: "float",
      ask: "float",
    },
  },
  indicators: {
    tags: ["symbol", "indicator_type"],
    fields: { value: "float", period: "integer" },
  },
  /** Position snapshots. Tagged by trade_id so one trade's history is one series. */
  positions: {
    tags: ["strategy_id", "symbol", "trade_id"],
    fields: { price: "float", quantity: "float", unrealized_pnl: "float", unrealized_pnl_pct: "float" },
  },
  trailing_sl: {
    tags: ["strategy_id", "symbol", "trade_id", "sl_type"],
    fields: { current_sl: "float", highest_price: "float" },
  },
  trades: {
    tags: ["strategy_id", "symbol", "action"],
    fields: { price: "float", quantity: "float", pnl: "float" },
  },
  strategy_metrics: {
    tags: ["strategy_id"],
    fields: { positions_count: "integer", signals_count: "integer", pnl: "float", win_rate: "float" },
  },
} as const satisfies Record<string, MeasurementDef>;

export type Schema = typeof INFLUX_SCHEMA;
export type MeasurementName = keyof Schema;
export type TagName<M extends MeasurementName> = Schema[M]["tags"][number];
export type FieldName<M extends MeasurementName> = keyof Schema[M]["fields"] & string;

export const MEASUREMENTS = Object.keys(INFLUX_SCHEMA) as MeasurementName[];

/** One point of measurement M: every tag, any subset of its fields, the event's own time. */
export interface SeriesPoint<M extends MeasurementName = MeasurementName> {
  measurement: M;
  tags: Record<TagName<M>, string>;
  fields: Partial<Record<FieldName<M>, number>>;
  /** Event time in epoch nanoseconds, as a decimal string (beyond Number's exact range). */
  timestampNs: string;
}

/** Epoch milliseconds (fractions kept down to the microsecond) to the nanosecond string line protocol wants. */
export function msToNs(epochMs: number): string {
  let whole = Math.floor(epochMs);
  let micros = Math.round((epochMs - whole) * 1000);
  if (micros === 1000) {
    whole += 1;
    micros = 0;
  }
  // Digits appended as text: no BigInt on the hot path (whole ms stay exact far beyond year 9999).
  if (whole > 0) return `${whole}${String(micros).padStart(3, "0")}000`;
  return (BigInt(whole) * 1_000_000n + BigInt(micros) * 1000n).toString();
}

/** Whether `measurement` defines a tag or field called `name` (used by the query checks). */
export function schemaHasColumn(measurement: MeasurementName, name: string): boolean {
  const def: MeasurementDef = INFLUX_SCHEMA[measurement];
  return def.tags.includes(name) || name in def.fields;
}
