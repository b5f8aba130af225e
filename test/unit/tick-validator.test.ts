import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import {
  parseTimestamp,
  REJECT_REASONS,
  type Rejection,
  type RejectReason,
  TickValidator,
} from "../../src/market/tick-validator.js";

const T0 = Date.UTC(2024, 0, 2, 14, 30);

/** A valid raw tick, as text the way a CSV row gives it. */
function raw(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    timestamp: String(T0),
    symbol: "AAPL",
    open: "100",
    high: "101",
    low: "99",
    close: "100.5",
    volume: "1200",
    bid: "100.4",
    ask: "100.6",
    ...overrides,
  };
}

/** A logger writing JSON lines to memory. */
function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { lines, logger: pino({ level: "info" }, sink).child({ component: "simulator" }) };
}

/** One hand-made bad tick per reason; each is rejected by a fresh validator that saw `before`. */
const BAD: Record<RejectReason, { before?: Record<string, unknown>; tick: Record<string, unknown> }> = {
  malformed_row: { tick: [1, 2, 3] as unknown as Record<string, unknown> },
  unknown_column: { tick: raw({ price: "100" }) },
  missing_field: { tick: raw({ volume: "" }) },
  bad_timestamp: { tick: raw({ timestamp: "yesterday" }) },
  bad_symbol: { tick: raw({ symbol: "aapl$" }) },
  not_a_number: { tick: raw({ close: "NaN" }) },
  non_positive_price: { tick: raw({ low: "-5" }) },
  negative_volume: { tick: raw({ volume: "-1" }) },
  high_below_low: { tick: raw({ high: "98" }) },
  crossed_quote: { tick: raw({ bid: "100.7", ask: "100.6" }) },
  out_of_order: { before: raw({ timestamp: String(T0 + 1000) }), tick: raw() },
};

describe("TickValidator", () => {
  it("turns a valid raw tick into a Tick with the validator's source", () => {
    const v = new TickValidator({ source: "replay" });
    const result = v.validate(raw());
    expect(result).toEqual({
      ok: true,
      tick: {
        symbol: "AAPL",
        timestamp: T0,
        open: 100,
        high: 101,
        low: 99,
        close: 100.5,
        volume: 1200,
        bid: 100.4,
        ask: 100.6,
        source: "replay",
      },
    });
    expect(v.accepted).toBe(1);
    expect(v.rejected).toBe(0);
  });

  it("accepts numbers as well as text, and leaves out empty bid/ask", () => {
    const v = new TickValidator();
    const result = v.validate({ ...raw({ bid: "", ask: " " }), timestamp: T0, close: 100.5 });
    expect(result.ok).toBe(true);
    if (result.ok) {
      expect(result.tick).not.toHaveProperty("bid");
      expect(result.tick.source).toBe("simulator");
    }
  });

  it.each(REJECT_REASONS.map((r) => [r]))("rejects a tick for %s", (reason) => {
    const rejections: Rejection[] = [];
    const v = new TickValidator({ onReject: (r) => rejections.push(r) });
    const bad = BAD[reason];
    if (bad.before) expect(v.validate(bad.before).ok).toBe(true);
    const result = v.validate(bad.tick, { line: 7, row: "the,raw,row" });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.rejection.reason).toBe(reason);
    expect(rejections).toHaveLength(1);
    expect(rejections[0]).toMatchObject({ reason, line: 7, row: "the,raw,row" });
    expect(v.counts()[reason]).toBe(1);
    expect(v.rejected).toBe(1);
  });

  it("names the offending field and its raw value", () => {
    const v = new TickValidator();
    const result = v.validate(raw({ open: "12abc" }), { line: 3 });
    expect(result).toEqual({
      ok: false,
      rejection: {
        reason: "not_a_number",
        field: "open",
        value: "12abc",
        symbol: "AAPL",
        line: 3,
        message: "open is not a finite number",
      },
    });
  });

  it("classifies a tick with several faults by the first reason in order", () => {
    const v = new TickValidator();
    const both = v.validate(raw({ symbol: "bad symbol", close: "x" }));
    expect(!both.ok && both.rejection.reason).toBe("bad_symbol");
    const prices = v.validate(raw({ high: "-1", low: "5", volume: "-3" }));
    expect(!prices.ok && prices.rejection.reason).toBe("non_positive_price");
  });

  it("counts exactly, per reason, and logs once per reason with a sample", () => {
    const { lines, logger } = memoryLogger();
    const v = new TickValidator({ logger, source: "replay" });
    // 3 × not_a_number, 2 × bad_symbol, 1 × high_below_low, 4 valid.
    const ticks = [
      raw({ timestamp: String(T0) }),
      raw({ timestamp: String(T0 + 1), close: "abc" }),
      raw({ timestamp: String(T0 + 2), symbol: "a b" }),
      raw({ timestamp: String(T0 + 3) }),
      raw({ timestamp: String(T0 + 4), close: "Infinity" }),
      raw({ timestamp: String(T0 + 5), symbol: "" }),
      raw({ timestamp: String(T0 + 6), symbol: "lower" }),
      raw({ timestamp: String(T0 + 7), high: "1" }),
      raw({ timestamp: String(T0 + 8) }),
      raw({ timestamp: String(T0 + 9), open: "0x10" }),
      raw({ timestamp: String(T0 + 10) }),
    ];
    ticks.forEach((t, i) => {
      v.validate(t, { line: i + 2 });
    });
    const expected = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0]));
    expect(v.counts()).toEqual({
      ...expected,
      not_a_number: 3,
      bad_symbol: 2,
      missing_field: 1,
      high_below_low: 1,
    });
    expect(v.accepted).toBe(4);
    expect(v.rejected).toBe(7);

    const rejected = lines.filter((l) => l.msg?.toString().startsWith("Tick rejected"));
    expect(rejected.map((l) => l.reason)).toEqual([
      "not_a_number",
      "bad_symbol",
      "missing_field",
      "high_below_low",
    ]);
    expect(rejected[0]).toMatchObject({
      level: 40,
      component: "simulator",
      source: "replay",
      reason: "not_a_number",
      field: "close",
      value: "abc",
      line: 3,
    });
    expect(rejected[1]).toMatchObject({ reason: "bad_symbol", value: "a b", line: 4 });
  });

  it("keeps the last timestamp per symbol; equal timestamps only when allowed", () => {
    const v = new TickValidator();
    expect(v.validate(raw({ timestamp: String(T0 + 10) })).ok).toBe(true);
    // Another symbol has its own clock.
    expect(v.validate(raw({ symbol: "MSFT", timestamp: String(T0) })).ok).toBe(true);
    expect(v.validate(raw({ timestamp: String(T0 + 10) })).ok).toBe(false);
    expect(v.validate(raw({ timestamp: String(T0 + 5) })).ok).toBe(false);
    // A rejected tick does not move the clock.
    expect(v.lastTimestamp("AAPL")).toBe(T0 + 10);
    expect(v.validate(raw({ timestamp: String(T0 + 11) })).ok).toBe(true);
    expect(v.counts().out_of_order).toBe(2);

    const lenient = new TickValidator({ allowEqualTimestamps: true });
    expect(lenient.validate(raw()).ok).toBe(true);
    expect(lenient.validate(raw()).ok).toBe(true);
  });

  it("never throws for bad data", () => {
    const v = new TickValidator();
    const odd: unknown[] = [
      null,
      undefined,
      42,
      "text",
      {},
      { symbol: {} },
      raw({ open: { x: 1 } }),
      raw({ volume: true }),
    ];
    for (const value of odd) {
      expect(() => v.validate(value as Record<string, unknown>)).not.toThrow();
    }
    expect(v.rejected).toBe(odd.length);
  });

  it("refuses a bad source tag up front", () => {
    expect(() => new TickValidator({ source: "Not Valid" })).toThrow(ValidationError);
  });
});

describe("parseTimestamp", () => {
  it.each([
    ["1704205800000", T0],
    ["1704205800000.5", T0 + 0.5],
    [T0, T0],
    ["2024-01-02T14:30:00Z", T0],
    ["2024-01-02T14:30:00.250Z", T0 + 250],
    ["2024-01-02T15:30:00+01:00", T0],
    ["2024-01-02 14:30:00", T0],
    ["2024-01-02T14:30:00", T0],
    ["2024-01-02", Date.UTC(2024, 0, 2)],
  ])("reads %s", (text, expected) => {
    expect(parseTimestamp(text)).toBe(expected);
  });

  it.each(["", "yesterday", "-1", "2024-13-45T00:00:00Z", "Jan 2 2024", "1e12", "NaN", Number.NaN, -5])(
    "rejects %s",
    (text) => {
      expect(parseTimestamp(text)).toBeUndefined();
    },
  );
});

describe("parseTimestamp on toISOString's form, read digit by digit", () => {
  /** What the general path makes of a date-time with a Z: Date.parse, kept when it is a time from 1970 on. */
  const general = (text: string) => {
    const ms = Date.parse(text);
    return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
  };

  it("gives Date.parse's answer for random times, month ends, leap days and every field's bounds", () => {
    let state = 7;
    const random = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const texts: string[] = [];
    for (let i = 0; i < 20_000; i++) texts.push(new Date(Math.floor(random() * 4.1e12)).toISOString());
    const pad = (n: number, width: number) => String(n).padStart(width, "0");
    // Every day 28-32 of every month of a leap, a common and a century year, at the day's edges.
    for (const year of [1970, 2000, 2023, 2024, 2100])
      for (let month = 0; month <= 13; month++)
        for (const day of [0, 1, 28, 29, 30, 31, 32])
          for (const time of [
            "00:00:00.000",
            "23:59:59.999",
            "24:00:00.000",
            "24:30:00.000",
            "24:00:00.001",
            "12:60:00.000",
            "12:00:60.000",
          ])
            texts.push(`${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}T${time}Z`);
    // Right length, wrong characters; years before 1970 (Date.UTC reads 0050 as 1950).
    texts.push("2024-01-02T14:30:00.25xZ", "2024-01-02t14:30:00.250Z", "2024-01-02T14:30:00.250z");
    texts.push("0050-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "+024-01-02T14:30:00.250Z");
    let read = 0;
    for (const text of texts) {
      const expected = general(text);
      if (expected !== undefined) read++;
      expect(parseTimestamp(text), text).toBe(expected);
    }
    expect(read).toBeGreaterThan(20_000);
    expect(read).toBeLessThan(texts.length);
  });
});

describe("TickValidator fast path", () => {
  // The validator accepts ticks without zod when they pass the schema's rules by hand. Every
  // verdict must be zod's: the same ticks accepted (equal objects), the same rejected.
  it("accepts and rejects exactly what tickSchema does, over many random ticks", async () => {
    const { tickSchema } = await import("../../src/domain/tick.js");
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
    const prices = [0, -1, 0.0001, 99, 100, 101, 1e9, -0.5];
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 5_000; i++) {
      const fields: Record<string, number> = {
        open: pick(prices),
        high: pick(prices),
        low: pick(prices),
        close: pick(prices),
        volume: pick([0, 1, -1, 1e6]),
      };
      if (random() < 0.7) fields.bid = pick(prices);
      if (random() < 0.7) fields.ask = pick(prices);
      // A fresh validator per tick: order checks stay out of the comparison.
      const verdict = new TickValidator().validate({ symbol: "AAPL", timestamp: T0, ...fields });
      const zod = tickSchema.safeParse({ symbol: "AAPL", timestamp: T0, source: "simulator", ...fields });
      expect(verdict.ok, JSON.stringify(fields)).toBe(zod.success);
      if (verdict.ok && zod.success) {
        expect(verdict.tick).toStrictEqual(zod.data);
        accepted++;
      } else rejected++;
    }
    // Both sides of the rule set were exercised.
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });

  it("gives a typed tick (numbers) the verdict of the same tick as text, reason and all", () => {
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)] as T;
    // Mostly good values, so that acceptance is common and each fault often comes alone.
    const mostly = <T>(good: readonly T[], bad: readonly T[]) => pick(random() < 0.93 ? good : bad);
    const price = () => mostly([99, 100, 100.5, 101, 0.0001], [0, -1, Number.NaN, Number.POSITIVE_INFINITY]);
    const timestamps = [T0, 0, 8.64e15, T0 + 0.5];
    const reasons = new Set<string>();
    let accepted = 0;
    for (let i = 0; i < 5_000; i++) {
      const typed: Record<string, unknown> = {
        symbol: mostly(["AAPL", "BRK.B"], ["aapl", ""]),
        timestamp: mostly(timestamps, [-1, 8.64e15 + 1, Number.NaN]),
        open: price(),
        high: price(),
        low: price(),
        close: price(),
        volume: mostly([0, 1, 1e6], [-1, Number.NaN]),
      };
      if (random() < 0.6) typed.bid = price();
      if (random() < 0.6) typed.ask = price();
      if (random() < 0.05) typed.extra = 1;
      if (random() < 0.05) typed.source = "csv";
      const text = Object.fromEntries(
        Object.entries(typed).map(([k, v]) => [
          k,
          typeof v === "number" && Number.isFinite(v) ? String(v) : v,
        ]),
      );
      const a = new TickValidator().validate(typed);
      const b = new TickValidator().validate(text);
      // The same verdict; a rejection names the same reason and field (its value is the raw one).
      const verdict = (v: typeof a) =>
        v.ok ? v : { reason: v.rejection.reason, field: v.rejection.field, message: v.rejection.message };
      expect(verdict(a), JSON.stringify(typed)).toStrictEqual(verdict(b));
      if (a.ok) accepted++;
      else reasons.add(a.rejection.reason);
    }
    expect(accepted).toBeGreaterThan(50);
    // Every reason a single tick can have, so the typed path was held to each.
    expect([...reasons].sort()).toEqual(
      [
        "bad_symbol",
        "bad_timestamp",
        "crossed_quote",
        "high_below_low",
        "missing_field",
        "negative_volume",
        "non_positive_price",
        "not_a_number",
        "unknown_column",
      ].sort(),
    );
  });
});
