import { ATR, BollingerBands, EMA, MACD, RSI, SuperTrend, WSMA } from "trading-signals";
import { describe, expect, it } from "vitest";
import { SupertrendKernel, wilderAdd, wilderSlots } from "../../src/trading/indicator-kernels.js";
import { type IndicatorConfig, IndicatorSet } from "../../src/trading/indicators.js";
import { only } from "../helpers/indicators.js";

/** A seeded series of candles: a random walk with flat stretches (zero changes) and gaps. */
function candles(seed: number, length: number) {
  let state = seed >>> 0;
  const random = () => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out: { high: number; low: number; close: number }[] = [];
  let close = 100;
  for (let i = 0; i < length; i++) {
    const r = random();
    if (r < 0.1) {
      // unchanged close: RSI's loss and gain are both 0 for this step
    } else if (r < 0.12) {
      close *= 1 + (random() - 0.5) * 0.2; // a gap
    } else {
      close = Math.round((close + (random() - 0.5)) * 100) / 100;
    }
    const spread = random() * 0.8;
    out.push({ high: close + spread, low: close - spread * random(), close });
  }
  return out;
}

const SERIES = [1, 2, 3].map((seed) => candles(seed, 600));
/** A series that only rises: RSI's average loss stays 0 (RSI 100). */
const RISING = Array.from({ length: 60 }, (_, i) => ({ high: 10 + i, low: 10 + i, close: 10 + i }));
const ALL = [...SERIES, RISING];

/** Both sides value for value, as doubles (`Object.is`: no tolerance, -0 and NaN included). */
function expectSame(ours: (number | undefined)[], library: (number | null | undefined)[]) {
  expect(ours.length).toBe(library.length);
  const mismatches = ours
    .map((v, i) => ({ i, ours: v, library: library[i] ?? undefined }))
    .filter((m) => !Object.is(m.ours, m.library));
  expect(mismatches.slice(0, 3)).toEqual([]);
}

const PERIODS = [1, 2, 3, 5, 9, 14, 20, 26, 50];

type Candle = (typeof RISING)[number];

/** Over every series and period: a kernel and its library indicator fed the same input, value for value. */
function expectSameOverPeriods<I>(
  ours: (period: number) => { add(input: I): number | undefined },
  library: (period: number) => { add(input: I): number | null | undefined },
  input: (c: Candle) => I,
) {
  for (const series of ALL) {
    for (const period of PERIODS) {
      const a = ours(period);
      const b = library(period);
      expectSame(
        series.map((c) => a.add(input(c))),
        series.map((c) => b.add(input(c))),
      );
    }
  }
}

/** One indicator of an IndicatorSet fed closes: its value, undefined while the set leaves it out. */
function reading(config: IndicatorConfig, name: string) {
  const set = new IndicatorSet(config);
  return { add: (close: number) => set.update({ high: close, low: close, close })[name] };
}

describe("the indicator arithmetic gives trading-signals' doubles", () => {
  it("EMA, from the first value, reported once the library's isStable says so", () => {
    expectSameOverPeriods(
      (p) => reading(only({ ema: [p] }), `ema_${p}`),
      (p) => {
        const ema = new EMA(p);
        return { add: (x: number) => (ema.add(x) !== null && ema.isStable ? ema.getResult() : undefined) };
      },
      (c) => c.close,
    );
  });

  it("Wilder's smoothing", () => {
    expectSameOverPeriods(
      (p) => {
        const slots: number[] = [];
        const at = wilderSlots(slots, p);
        const state = Float64Array.from(slots);
        return {
          add: (x: number) => {
            const v = wilderAdd(state, at, x);
            return Number.isNaN(v) ? undefined : v;
          },
        };
      },
      (p) => new WSMA(p),
      (c) => c.high - c.low,
    );
  });

  it("RSI, including period 1 (never ready, as in the library) and an average loss of 0", () => {
    expectSameOverPeriods(
      (p) => reading(only({ rsi: [p] }), `rsi_${p}`),
      (p) => new RSI(p),
      (c) => c.close,
    );
    const rising = reading(only({ rsi: [14] }), "rsi_14");
    expect(RISING.map((c) => rising.add(c.close)).at(-1)).toBe(100);
  });

  it("ATR", () => {
    expectSameOverPeriods(
      (p) => {
        const set = new IndicatorSet(only({ atr: [p] }));
        return { add: (c: Candle) => set.update(c)[`atr_${p}`] };
      },
      (p) => new ATR(p),
      (c) => c,
    );
  });

  it("MACD, its signal line and histogram", () => {
    const settings = [
      [12, 26, 9],
      [2, 3, 2],
      [1, 2, 1],
      [5, 35, 5],
    ] as const;
    for (const series of ALL) {
      for (const [fast, slow, signal] of settings) {
        const set = new IndicatorSet(only({ macd: { fast, slow, signal } }));
        const library = new MACD(new EMA(fast), new EMA(slow), new EMA(signal));
        const got: (number | undefined)[] = [];
        const want: (number | undefined)[] = [];
        let macdValues = 0;
        for (const c of series) {
          const v = set.update(c);
          got.push(v.macd, v.macd_signal, v.macd_histogram);
          const r = library.add(c.close);
          // The signal line (and the histogram) once it has seen `signal` MACD values.
          const signalReady = r !== null && ++macdValues >= signal;
          want.push(r?.macd, signalReady ? r?.signal : undefined, signalReady ? r?.histogram : undefined);
        }
        expectSame(got, want);
      }
    }
  });

  it("Bollinger Bands", () => {
    for (const series of ALL) {
      for (const [period, deviations] of [
        [20, 2],
        [1, 2],
        [5, 1.5],
        [50, 3],
      ] as const) {
        const set = new IndicatorSet(only({ bollinger: { period, stdDev: deviations } }));
        const library = new BollingerBands(period, deviations);
        const got: (number | undefined)[] = [];
        const want: (number | undefined)[] = [];
        for (const c of series) {
          const v = set.update(c);
          got.push(v.bollinger_upper, v.bollinger_lower, v.bollinger_width);
          const r = library.add(c.close);
          want.push(r?.upper, r?.lower, r ? r.upper - r.lower : undefined);
        }
        expectSame(got, want);
      }
    }
  });

  it("Supertrend: its line, its trend and its ATR", () => {
    const trends: (number | undefined)[] = [];
    for (const series of ALL) {
      for (const [period, multiplier] of [
        [10, 3],
        [1, 1],
        [3, 0.5],
        [14, 2],
      ] as const) {
        const ours = new SupertrendKernel(period, multiplier);
        const library = new SuperTrend({ interval: period, multiplier });
        const atr = new ATR(period);
        const got: (number | undefined)[] = [];
        const want: (number | undefined)[] = [];
        for (const c of series) {
          const ready = ours.add(c);
          got.push(...(ready ? [ours.line, ours.up ? 1 : -1, ours.atr] : [undefined, undefined, undefined]));
          const r = library.add(c);
          const a = atr.add(c);
          want.push(
            ...(r
              ? [r.supertrend, r.trend === "BULLISH" ? 1 : -1, a ?? Number.NaN]
              : [undefined, undefined, undefined]),
          );
        }
        expectSame(got, want);
        trends.push(...got.filter((_, i) => i % 3 === 1));
      }
    }
    // Both trends occur, so both branches of the bands are compared.
    expect(new Set(trends.filter((t) => t !== undefined))).toEqual(new Set([1, -1]));
  });
});
