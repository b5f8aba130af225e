import { Point } from "@influxdata/influxdb-client";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import { INFLUX_SCHEMA, MEASUREMENTS, type MeasurementDef, msToNs } from "../../src/schema/influx.js";
import { batchLines, LineBatcher } from "../../src/storage/line-batcher.js";
import {
  type AnySeriesPoint,
  IndicatorLines,
  SERIALIZERS,
  type SeriesSerializer,
  toLineProtocol,
} from "../../src/storage/line-protocol.js";

/**
 * The compiled serialiser writes exactly what the client's `Point` writes for the same point (the
 * reference it replaced), and refuses what `Point` would silently drop or round.
 */

/** The client's own rendering of a point. */
function reference(point: AnySeriesPoint): string | undefined {
  const def: MeasurementDef = INFLUX_SCHEMA[point.measurement];
  const p = new Point(point.measurement).timestamp(point.timestampNs);
  for (const [k, v] of Object.entries(point.tags)) p.tag(k, v as string);
  for (const [k, v] of Object.entries(point.fields) as [string, number][]) {
    if (def.fields[k] === "integer") p.intField(k, v);
    else p.floatField(k, v);
  }
  return p.toLineProtocol();
}

/** A deterministic pseudo-random point of measurement `m` (tags in reverse order on purpose). */
function pointOf(m: (typeof MEASUREMENTS)[number], i: number): AnySeriesPoint {
  const def: MeasurementDef = INFLUX_SCHEMA[m];
  const tags = Object.fromEntries(
    [...def.tags].reverse().map((t, j) => [t, `${t.slice(0, 3)}-${(i * 7 + j) % 13}.X_${i % 5}`]),
  );
  const fields: Record<string, number> = {};
  for (const [j, [name, type]] of Object.entries(def.fields).entries()) {
    if ((i + j) % 4 === 3) continue; // some fields absent
    fields[name] =
      type === "integer"
        ? ((i * 31 + j) % 1000) - 500
        : ((i * 1.37 + j) % 997) * (i % 2 ? 1 : -1e-7) + 1e21 * (i % 11 === 0 ? 1 : 0);
  }
  if (Object.keys(fields).length === 0) fields[Object.keys(def.fields)[0] as string] = 1;
  return {
    measurement: m,
    tags,
    fields,
    timestampNs: msToNs(1_700_000_000_000 + i * 1.234),
  } as AnySeriesPoint;
}

describe("compiled line protocol", () => {
  it("writes byte for byte what the client's Point writes, for every measurement", () => {
    let compared = 0;
    for (const m of MEASUREMENTS) {
      for (let i = 0; i < 500; i++) {
        const point = pointOf(m, i);
        expect(toLineProtocol(point)).toBe(reference(point));
        compared++;
      }
    }
    expect(compared).toBe(MEASUREMENTS.length * 500);
  });

  it("turns milliseconds (with microseconds) into nanoseconds as BigInt arithmetic would", () => {
    for (const ms of [0, 1, 999.9995, 1_700_000_000_123.456, 1_700_000_000_000.5, 253_402_300_799_999]) {
      const whole = Math.floor(ms);
      const micros = Math.round((ms - whole) * 1000);
      expect(msToNs(ms), String(ms)).toBe((BigInt(whole) * 1_000_000n + BigInt(micros) * 1000n).toString());
    }
  });

  it("refuses what Point would drop or round: an empty or unsafe tag, no field, a fractional integer, int64 overflow", () => {
    const ok = pointOf("strategy_metrics", 1);
    const bad: [string, AnySeriesPoint][] = [
      ["tags.strategy_id", { ...ok, tags: { strategy_id: "" } } as AnySeriesPoint],
      ["tags.strategy_id", { ...ok, tags: { strategy_id: "a b,c=d" } } as AnySeriesPoint],
      ["tags.host", { ...ok, tags: { ...ok.tags, host: "x" } } as unknown as AnySeriesPoint],
      ["fields", { ...ok, fields: {} } as AnySeriesPoint],
      ["fields.positions_count", { ...ok, fields: { positions_count: 1.5 } } as AnySeriesPoint],
      ["fields.pnl", { ...ok, fields: { pnl: Number.NaN } } as AnySeriesPoint],
      ["fields.nope", { ...ok, fields: { pnl: 1, nope: 2 } } as unknown as AnySeriesPoint],
      ["timestampNs", { ...ok, timestampNs: "9223372036854775808" }],
      ["timestampNs", { ...ok, timestampNs: "1e18" }],
    ];
    for (const [field, point] of bad) {
      expect(() => toLineProtocol(point), field).toThrow(ValidationError);
      try {
        toLineProtocol(point);
      } catch (err) {
        expect((err as ValidationError).field, JSON.stringify(point)).toBe(field);
      }
    }
    expect(toLineProtocol({ ...ok, timestampNs: "9223372036854775807" })).toMatch(/ 9223372036854775807$/);
  });
});

describe("per-measurement serialisers (the hot path)", () => {
  const serialize = (p: AnySeriesPoint) =>
    (SERIALIZERS[p.measurement] as SeriesSerializer<typeof p.measurement>).line(
      p.tags as never,
      p.fields as never,
      p.timestampNs,
    );

  it("write the same bytes as toLineProtocol, including on cached prefixes", () => {
    for (const m of MEASUREMENTS) {
      // Twice over the same points: the second pass is served from the prefix cache.
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < 300; i++) expect(serialize(pointOf(m, i))).toBe(toLineProtocol(pointOf(m, i)));
      }
    }
  });

  it("refuse what toLineProtocol refuses, naming the same field", () => {
    const good = pointOf("indicators", 1);
    serialize(good); // its prefix is now cached
    const bad = [
      { ...good, fields: { value: Number.NaN } },
      { ...good, fields: { value: 1, period: 1.5 } },
      { ...good, fields: {} },
      { ...good, fields: { value: 1, bogus: 2 } as never },
      { ...good, tags: { ...good.tags, symbol: "bad symbol" } },
      { ...good, tags: { ...good.tags, extra: "x" } as never },
      { ...good, timestampNs: "99999999999999999999" },
    ] as AnySeriesPoint[];
    for (const point of bad) {
      const expected = (() => {
        try {
          toLineProtocol(point);
        } catch (err) {
          return err;
        }
        throw new Error(`toLineProtocol accepted ${JSON.stringify(point)}`);
      })();
      expect(expected).toBeInstanceOf(ValidationError);
      expect(() => serialize(point)).toThrow(
        expect.objectContaining({ field: (expected as ValidationError).field }),
      );
    }
    // Normalised, not refused: a zero-padded timestamp loses its padding on both paths.
    const padded = { ...good, timestampNs: "000123" };
    expect(serialize(padded)).toBe(toLineProtocol(padded));
  });

  it("write the same lines straight into a batch, and nothing of a point they refuse", () => {
    const batcher = new LineBatcher(100_000);
    const expected: string[] = [];
    const write = (p: AnySeriesPoint) =>
      (SERIALIZERS[p.measurement] as SeriesSerializer<typeof p.measurement>).writeTo(
        batcher,
        p.tags as never,
        p.fields as never,
        p.timestampNs,
      );
    for (const m of MEASUREMENTS) {
      for (let i = 0; i < 300; i++) {
        const point = pointOf(m, i);
        write(point);
        expected.push(toLineProtocol(point));
        // A refused point between good ones leaves no trace in the batch.
        if (i % 50 === 0) {
          expect(() => write({ ...point, fields: { bogus: 1 } } as unknown as AnySeriesPoint)).toThrow(
            ValidationError,
          );
          expect(() =>
            write({
              ...point,
              tags: { ...point.tags, [Object.keys(point.tags)[0] as string]: "a b" },
            } as never),
          ).toThrow(ValidationError);
        }
      }
    }
    expect(batcher.points).toBe(expected.length);
    expect(batchLines(batcher.take(true) ?? { text: "", points: 0 })).toEqual(expected);
  });
});

describe("indicator lines (the indicators hot path)", () => {
  /** What SERIALIZERS.indicators writes for the point, or the error it throws. */
  const reference = (symbol: string, type: string, value: number, period: number | undefined, ns: string) => {
    try {
      return SERIALIZERS.indicators.line(
        { symbol, indicator_type: type },
        period === undefined ? { value } : { value, period },
        ns,
      );
    } catch (err) {
      return err as ValidationError;
    }
  };

  it("write what the measurement's serialiser writes, on first sight and from their cache, and refuse what it refuses", () => {
    const lines = new IndicatorLines();
    const batcher = new LineBatcher(1_000_000);
    const expected: string[] = [];
    const symbols = ["AAPL", "SYM001", "BRK.B", "x-1_2"];
    const types = ["rsi_14", "ema_20", "macd", "bollinger_width"];
    let refused = 0;
    let cut = 0;
    for (let i = 0; i < 4_000; i++) {
      const symbol = symbols[i % symbols.length] as string;
      const type = types[(i >> 2) % types.length] as string;
      // Mostly plain points; now and then what the cache must not carry: a value that is not
      // finite, another period for the same name, a zero-padded or out-of-range timestamp, a bad tag.
      let value = (i % 7 === 0 ? -1 : 1) * ((i * 1.37) % 997) * 10 ** ((i % 9) - 4);
      let period: number | undefined = type === "macd" ? undefined : 14 + (i % 500 === 7 ? 1 : 0);
      let ns = msToNs(1_700_000_000_000 + Math.floor(i / 8) * 0.25);
      let tag = symbol;
      if (i % 97 === 5) value = Number.NaN;
      if (i % 89 === 3) value = Number.POSITIVE_INFINITY;
      if (i % 83 === 2) ns = `00${ns.slice(2)}`;
      if (i % 211 === 9) ns = "99999999999999999999";
      if (i % 101 === 4) period = 2.5;
      if (i % 103 === 6) tag = "bad symbol";
      const want = reference(tag, type, value, period, ns);
      if (want instanceof ValidationError) {
        refused++;
        const before = batcher.points;
        expect(() => lines.writeTo(batcher, tag, type, value, period, ns), `${i}`).toThrow(
          expect.objectContaining({ field: want.field }),
        );
        expect(batcher.points, "a refused point writes nothing").toBe(before);
      } else {
        if (typeof want !== "string") throw want;
        lines.writeTo(batcher, tag, type, value, period, ns);
        expected.push(want);
        if (ns.startsWith("00")) cut++;
      }
    }
    expect(refused).toBeGreaterThan(50);
    expect(cut).toBeGreaterThan(10);
    expect(batchLines(batcher.take(true) ?? { text: "", points: 0 })).toEqual(expected);
  });
});
