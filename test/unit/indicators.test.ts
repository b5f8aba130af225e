import { ATR, BollingerBands, EMA, MACD, RSI } from "trading-signals";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_INDICATOR_CONFIG,
  IndicatorBook,
  IndicatorSet,
  mergeIndicatorConfig,
} from "../../src/trading/indicators.js";
import { only } from "../helpers/indicators.js";

const bar = (close: number) => ({ high: close, low: close, close });

describe("RSI (Wilder)", () => {
  // The RSI example series of StockCharts' ChartSchool (33 closes).
  const closes = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.1, 45.42, 45.84, 46.08, 45.89, 46.03, 45.61, 46.28, 46.28,
    46.0, 46.03, 46.41, 46.22, 45.64, 46.21, 46.25, 45.71, 46.45, 45.78, 45.35, 44.03, 44.18, 44.22, 44.57,
    43.42, 42.66, 43.13,
  ];
  // Wilder's RSI: first averages = simple means of the first 14 gains/losses, then
  // avg = (previous avg × 13 + today's) / 14. Rounded to two decimals.
  const expected = [
    70.46, 66.25, 66.48, 69.35, 66.29, 57.92, 62.88, 63.21, 56.01, 62.34, 54.67, 50.39, 40.02, 41.49, 41.9,
    45.5, 37.32, 33.09, 37.79,
  ];

  it("matches the textbook series from its 15th close on", () => {
    const set = new IndicatorSet(only({ rsi: [14] }));
    const rsi = closes.map((c) => set.update(bar(c)).rsi_14);
    expect(rsi.slice(0, 14)).toEqual(Array(14).fill(undefined)); // 14 closes = 13 changes: not ready
    rsi.slice(14).forEach((value, i) => {
      expect(value).toBeCloseTo(expected[i] ?? Number.NaN, 2);
    });
  });

  it("first value, by hand", () => {
    // Changes of the first 15 closes: gains 0.06 0.72 0.50 0.27 0.32 0.42 0.24 0.14 0.67 = 3.34,
    // losses 0.25 0.54 0.19 0.42 = 1.40 (the last change, 46.28 → 46.28, is 0).
    // RS = (3.34 / 14) / (1.40 / 14) = 3.34 / 1.40; RSI = 100 − 100 / (1 + RS) = 70.4641…
    const set = new IndicatorSet(only({ rsi: [14] }));
    let last: number | undefined;
    for (const c of closes.slice(0, 15)) last = set.update(bar(c)).rsi_14;
    expect(last).toBeCloseTo(100 - 100 / (1 + 3.34 / 1.4), 9);
  });
});

describe("EMA", () => {
  it("is seeded with the first close and reported after `period` closes", () => {
    // EMA(3): k = 2 / (3 + 1) = 0.5; e1 = 1, e2 = 0.5·2 + 0.5·1 = 1.5, e3 = 0.5·3 + 0.5·1.5 = 2.25,
    // e4 = 0.5·4 + 0.5·2.25 = 3.125, e5 = 0.5·5 + 0.5·3.125 = 4.0625 (all exact in binary)
    const set = new IndicatorSet(only({ ema: [3] }));
    const ema = [1, 2, 3, 4, 5].map((c) => set.update(bar(c)).ema_3);
    expect(ema).toEqual([undefined, undefined, 2.25, 3.125, 4.0625]);
  });
});

describe("ATR (Wilder)", () => {
  it("averages true ranges, then smooths them by (prev × (n − 1) + TR) / n", () => {
    const bars = [
      { high: 10, low: 8, close: 9 }, // TR = 10 − 8 = 2 (first bar: high − low)
      { high: 11, low: 9, close: 10.5 }, // TR = max(2, |11 − 9|, |9 − 9|) = 2
      { high: 13, low: 10, close: 12 }, // TR = max(3, |13 − 10.5|, |10 − 10.5|) = 3 → ATR = 7/3
      { high: 12.5, low: 11, close: 11.5 }, // TR = max(1.5, 0.5, 1) = 1.5 → ATR = (7/3·2 + 1.5)/3 = 37/18
      { high: 15, low: 14, close: 14.5 }, // gap: TR = max(1, |15 − 11.5|, |14 − 11.5|) = 3.5 → (37/18·2 + 3.5)/3 = 137/54
    ];
    const set = new IndicatorSet(only({ atr: [3] }));
    const atr = bars.map((b) => set.update(b).atr_3);
    expect(atr[0]).toBeUndefined();
    expect(atr[1]).toBeUndefined();
    expect(atr[2]).toBeCloseTo(7 / 3, 12);
    expect(atr[3]).toBeCloseTo(37 / 18, 12);
    expect(atr[4]).toBeCloseTo(137 / 54, 12);
  });
});

describe("MACD", () => {
  it("fast EMA − slow EMA from the slow period on; signal and histogram once the signal EMA is ready", () => {
    // MACD(2, 3, 2) of 1, 2, 4, 8, 16:
    //   EMA(2), k = 2/3: 1, 5/3, 29/9, 173/27, 1037/81
    //   EMA(3), k = 1/2: 1, 3/2, 11/4, 43/8, 171/16
    //   macd (from close 3): 29/9 − 11/4 = 17/36; 173/27 − 43/8 = 223/216; 1037/81 − 171/16 = 2741/1296
    //   signal EMA(2) of macd: 17/36 (seed, not ready), 137/162, 3289/1944
    //   histogram: 223/216 − 137/162 = 121/648; 2741/1296 − 3289/1944 = 1645/3888
    const set = new IndicatorSet(only({ macd: { fast: 2, slow: 3, signal: 2 } }));
    const out = [1, 2, 4, 8, 16].map((c) => set.update(bar(c)));
    expect(out[0]).toEqual({});
    expect(out[1]).toEqual({});
    expect(Object.keys(out[2] ?? {})).toEqual(["macd"]);
    expect(out[2]?.macd).toBeCloseTo(17 / 36, 12);
    expect(out[3]?.macd).toBeCloseTo(223 / 216, 12);
    expect(out[3]?.macd_signal).toBeCloseTo(137 / 162, 12);
    expect(out[3]?.macd_histogram).toBeCloseTo(121 / 648, 12);
    expect(out[4]?.macd).toBeCloseTo(2741 / 1296, 12);
    expect(out[4]?.macd_signal).toBeCloseTo(3289 / 1944, 12);
    expect(out[4]?.macd_histogram).toBeCloseTo(1645 / 3888, 12);
  });
});

describe("Bollinger Bands", () => {
  it("mean ± k population standard deviations; width = upper − lower", () => {
    // Period 5 over 1..5: mean 3, variance (4 + 1 + 0 + 1 + 4) / 5 = 2, sd √2; k = 2.
    const set = new IndicatorSet(only({ bollinger: { period: 5, stdDev: 2 } }));
    const out = [1, 2, 3, 4, 5].map((c) => set.update(bar(c)));
    expect(out[3]).toEqual({});
    expect(out[4]?.bollinger_upper).toBeCloseTo(3 + 2 * Math.SQRT2, 12);
    expect(out[4]?.bollinger_lower).toBeCloseTo(3 - 2 * Math.SQRT2, 12);
    expect(out[4]?.bollinger_width).toBeCloseTo(4 * Math.SQRT2, 12);
  });
});

describe("IndicatorSet with the default periods", () => {
  it("reports each indicator only once it is ready", () => {
    const set = new IndicatorSet();
    const readyAt: Record<string, number> = {};
    for (let i = 1; i <= 40; i++) {
      const close = 100 + 5 * Math.sin(i / 3) + i * 0.1;
      const values = set.update({ high: close + 0.5, low: close - 0.5, close });
      for (const name of Object.keys(values)) readyAt[name] ??= i;
    }
    expect(readyAt).toEqual({
      atr_14: 14,
      rsi_14: 15, // 14 changes need 15 closes
      ema_20: 20,
      bollinger_upper: 20,
      bollinger_lower: 20,
      bollinger_width: 20,
      macd: 26,
      macd_signal: 34, // 9 MACD values: closes 26..34
      macd_histogram: 34,
    });
  });

  it("returns, warming up and ready, what the library gives, in one fixed order of names", () => {
    const config = mergeIndicatorConfig(DEFAULT_INDICATOR_CONFIG, { rsi: [7], ema: [5, 50], atr: [3] });
    const set = new IndicatorSet(config);
    // The library fed directly, the values put in by hand in the documented order.
    const rsi = config.rsi.map((p) => [`rsi_${p}`, new RSI(p)] as const);
    const ema = config.ema.map((p) => [`ema_${p}`, new EMA(p), p] as const);
    const atr = config.atr.map((p) => [`atr_${p}`, new ATR(p)] as const);
    const macd = new MACD(new EMA(12), new EMA(26), new EMA(9));
    const bands = new BollingerBands(20, 2);
    let macdValues = 0;
    let sawAllReady = false;
    for (let i = 1; i <= 80; i++) {
      const close = 100 + 5 * Math.sin(i / 3) + i * 0.1;
      const tick = { high: close + 0.5, low: close - 0.5, close };
      const expected: Record<string, number> = {};
      for (const [name, r] of rsi) {
        const v = r.add(close);
        if (v !== null) expected[name] = v;
      }
      for (const [name, e, period] of ema) {
        const v = e.add(close);
        if (i >= period && v !== null) expected[name] = v;
      }
      for (const [name, a] of atr) {
        const v = a.add(tick);
        if (v !== null) expected[name] = v;
      }
      const m = macd.add(close);
      if (m) {
        expected.macd = m.macd;
        if (++macdValues >= 9) {
          expected.macd_signal = m.signal;
          expected.macd_histogram = m.histogram;
        }
      }
      const b = bands.add(close);
      if (b) {
        expected.bollinger_upper = b.upper;
        expected.bollinger_lower = b.lower;
        expected.bollinger_width = b.upper - b.lower;
      }
      const values = set.update(tick);
      expect(Object.entries(values)).toEqual(Object.entries(expected));
      expect(set.values()).toEqual(expected);
      sawAllReady ||= Object.keys(values).length === 13;
    }
    expect(sawAllReady).toBe(true);
  });

  it("leaves out a value that stops being finite, also once every indicator has been ready", () => {
    const set = new IndicatorSet();
    for (let i = 1; i <= 40; i++) set.update(bar(100 + Math.sin(i)));
    expect(Object.keys(set.update(bar(101)))).toHaveLength(9);
    // A close near the largest double: its square overflows, so the bands are not finite.
    const values = set.update(bar(1e300));
    expect(Object.keys(values).filter((k) => k.startsWith("bollinger"))).toEqual([]);
    expect(Object.values(values).every(Number.isFinite)).toBe(true);
    expect(values.ema_20).toBeGreaterThan(1e298);
    // The copied shape of later results is untouched by this one.
    expect(set.values()).toEqual(values);
  });

  it("gives the Influx period of each indicator (none for the MACD family)", () => {
    expect(new IndicatorSet().periods()).toEqual({
      rsi_14: 14,
      ema_20: 20,
      atr_14: 14,
      bollinger_upper: 20,
      bollinger_lower: 20,
      bollinger_width: 20,
    });
  });
});

describe("IndicatorBook", () => {
  it("keeps one set per symbol", () => {
    const book = new IndicatorBook(only({ ema: [2] }));
    // EMA(2), k = 2/3. AAA: 10, 13 → 10 + (13 − 10)·2/3 = 12. BBB: 50, 20 → 50 − 30·2/3 = 30.
    book.update({ symbol: "AAA", ...bar(10) });
    book.update({ symbol: "BBB", ...bar(50) });
    expect(book.update({ symbol: "AAA", ...bar(13) })).toEqual({ ema_2: 12 });
    expect(book.update({ symbol: "BBB", ...bar(20) })).toEqual({ ema_2: 30 });
    expect(book.values("AAA")).toEqual({ ema_2: 12 });
    expect(book.values("ZZZ")).toEqual({});
    expect(book.symbols()).toEqual(["AAA", "BBB"]);
  });

  it("merges the periods strategies and stops ask for", () => {
    const merged = mergeIndicatorConfig(DEFAULT_INDICATOR_CONFIG, { rsi: [7, 14] }, { atr: [10] }, undefined);
    expect(merged.rsi).toEqual([7, 14]);
    expect(merged.atr).toEqual([10, 14]);
    expect(merged.ema).toEqual([20]);
  });

  it("rejects unusable periods", () => {
    expect(() => new IndicatorSet(only({ rsi: [0] }))).toThrow(/indicators.rsi\[0\]/);
    expect(
      () => new IndicatorSet({ ...DEFAULT_INDICATOR_CONFIG, macd: { fast: 26, slow: 12, signal: 9 } }),
    ).toThrow(/indicators.macd.fast/);
  });
});
