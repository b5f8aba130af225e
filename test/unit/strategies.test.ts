import { describe, expect, it } from "vitest";
import type { Signal } from "../../src/domain/signal.js";
import type { Tick } from "../../src/domain/tick.js";
import { IndicatorSet } from "../../src/trading/indicators.js";
import { RsiMeanReversion } from "../../src/trading/strategies/rsi-mean-reversion.js";
import type { StrategyPosition } from "../../src/trading/strategies/strategy.js";
import { tradesSymbol } from "../../src/trading/strategies/strategy.js";
import { SupertrendStrategy } from "../../src/trading/strategies/supertrend.js";

const T0 = 1_746_780_000_000; // epoch ms

function tick(i: number, close: number, range = 0.5, symbol = "RELIANCE"): Tick {
  return {
    symbol,
    timestamp: T0 + i * 1000,
    open: close,
    high: close + range,
    low: close - range,
    close,
    volume: 100,
    source: "simulator",
  };
}

const LONG: StrategyPosition = { trade_id: "rsi-RELIANCE-1", side: "long", entry_price: 90, quantity: 10 };

describe("RSI mean reversion", () => {
  // 15 closes alternating ±1 (RSI ≈ 50), then 12 falling by 1.5, then 14 rising by 2.
  const warmup = Array.from({ length: 15 }, (_, i) => (i % 2 === 0 ? 100 : 101));
  const falling = Array.from({ length: 12 }, (_, i) => 100 - 1.5 * (i + 1));
  const rising = Array.from({ length: 14 }, (_, i) => 82 + 2 * (i + 1));
  const closes = [...warmup, ...falling, ...rising];

  it("enters when a falling sequence pushes RSI under oversold and exits when it recovers above exit_level", () => {
    // Hold from the entry tick on (the tracker would have filled it), until the exit.
    let entryAt = -1;
    let exitAt = -1;
    const strategy = new RsiMeanReversion("rsi", "*", { oversold: 30, exit_level: 55 });
    const indicators = new IndicatorSet();
    const seen: { i: number; rsi: number | undefined; signal: Signal | undefined }[] = [];
    closes.forEach((close, i) => {
      const t = tick(i, close);
      const values = indicators.update(t);
      const open = entryAt >= 0 && i > entryAt && exitAt < 0;
      const signal = strategy.onTick(t, values, open ? LONG : undefined);
      if (signal?.kind === "entry" && entryAt < 0) entryAt = i;
      if (signal?.kind === "exit" && exitAt < 0) exitAt = i;
      seen.push({ i, rsi: values.rsi_14, signal });
    });

    // The entry is the first tick with RSI < 30, inside the fall.
    const firstOversold = seen.find((s) => s.rsi !== undefined && s.rsi < 30);
    expect(firstOversold).toBeDefined();
    expect(entryAt).toBe(firstOversold?.i);
    expect(entryAt).toBeGreaterThanOrEqual(15);
    expect(entryAt).toBeLessThan(27);
    const entry = seen[entryAt]?.signal as Signal;
    const rsiAtEntry = seen[entryAt]?.rsi as number;
    expect(entry).toMatchObject({
      strategy_id: "rsi",
      symbol: "RELIANCE",
      kind: "entry",
      action: "BUY",
      price: closes[entryAt],
      timestamp: T0 + entryAt * 1000,
      reason: "rsi_oversold",
      thresholds: { oversold: 30, exit_level: 55 },
    });
    expect(entry.indicators.rsi_14).toBe(rsiAtEntry);
    expect(entry.confidence).toBeCloseTo(0.5 + (0.5 * (30 - rsiAtEntry)) / 30, 12);

    // No signal between entry and exit; the exit is the first tick with RSI > 55 while holding.
    const firstRecovered = seen.find((s) => s.i > entryAt && s.rsi !== undefined && s.rsi > 55);
    expect(exitAt).toBe(firstRecovered?.i);
    expect(seen.filter((s) => s.i > entryAt && s.i < exitAt && s.signal)).toEqual([]);
    const exit = seen[exitAt]?.signal as Signal;
    const rsiAtExit = seen[exitAt]?.rsi as number;
    expect(exit).toMatchObject({
      kind: "exit",
      action: "SELL",
      reason: "rsi_recovered",
      price: closes[exitAt],
    });
    expect(exit.confidence).toBeCloseTo(0.5 + (0.5 * (rsiAtExit - 55)) / 45, 12);
    // Nothing before the RSI is ready.
    expect(seen.slice(0, 14).every((s) => s.signal === undefined)).toBe(true);
  });

  it("does not re-enter a symbol after a position until the RSI has been back at or above oversold", () => {
    // Held only on the tick right after the first entry (say it was stopped out there), flat after.
    const strategy = new RsiMeanReversion("rsi", "*");
    const indicators = new IndicatorSet();
    let firstEntry = -1;
    const entries: number[] = [];
    const oversoldWhileFlat: number[] = [];
    closes.forEach((close, i) => {
      const t = tick(i, close);
      const values = indicators.update(t);
      const holding = firstEntry >= 0 && i === firstEntry + 1;
      const signal = strategy.onTick(t, values, holding ? LONG : undefined);
      if (signal?.kind === "entry") {
        entries.push(i);
        if (firstEntry < 0) firstEntry = i;
      }
      if (firstEntry >= 0 && i > firstEntry + 1 && (values.rsi_14 ?? 100) < 30) oversoldWhileFlat.push(i);
    });
    expect(oversoldWhileFlat.length).toBeGreaterThan(0); // still oversold and flat after the stop-out…
    expect(entries).toEqual([firstEntry]); // …yet no second entry

    // A fresh dip after a recovery above 30 is traded again.
    const again = new RsiMeanReversion("rsi", "*");
    const set = new IndicatorSet();
    const series = [...closes, ...Array.from({ length: 15 }, (_, i) => 110 - 2 * i)];
    const kinds: { i: number; kind: string }[] = [];
    let lastEntry = -1; // each entry is held for one tick, then stopped out
    series.forEach((close, i) => {
      const t = tick(i, close);
      const signal = again.onTick(t, set.update(t), i === lastEntry + 1 ? LONG : undefined);
      if (signal) kinds.push({ i, kind: signal.kind });
      if (signal?.kind === "entry") lastEntry = i;
    });
    expect(kinds.filter((k) => k.kind === "entry").length).toBe(2);
    expect(kinds[1]?.i).toBeGreaterThan(closes.length);
  });

  it("rejects inconsistent thresholds", () => {
    expect(() => new RsiMeanReversion("rsi", "*", { oversold: 40, exit_level: 35 })).toThrow(/exit_level/);
  });
});

describe("Supertrend", () => {
  // ATR period 2, multiplier 1. By hand (hl2 = (high + low) / 2, bands = hl2 ± ATR):
  //  1: h11 l9 c10      TR 2
  //  2: h11 l9 c10      TR 2, ATR 2; bands 12 / 8; close 10 ≤ 12 → bearish, line 12 (first value)
  //  3: h11 l9 c10      TR 2, ATR 2; final upper stays 12, lower 8; bearish, line 12
  //  4: h15 l12 c14.5   TR max(3, |15−10|, |12−10|) = 5, ATR (2 + 5)/2 = 3.5; basic 17 / 10;
  //                     final upper 12 (17 is not tighter), lower 10; close 14.5 > 12 → FLIP UP, line 10
  //  5: h16 l14 c15.5   TR 2, ATR 2.75; basic 17.75 / 12.25; previous close 14.5 > 12 resets upper to 17.75,
  //                     lower 12.25; close ≥ 12.25 → bullish, line 12.25
  //  6: h15 l10 c11     TR max(5, 0.5, 5.5) = 5.5, ATR 4.125; basic 16.625 / 8.375; upper 16.625 (tighter),
  //                     lower stays 12.25; close 11 < 12.25 → FLIP DOWN, line 16.625
  const bars = [
    [11, 9, 10],
    [11, 9, 10],
    [11, 9, 10],
    [15, 12, 14.5],
    [16, 14, 15.5],
    [15, 10, 11],
  ] as const;
  const ticks = bars.map(([high, low, close], i) => ({ ...tick(i, close), high, low, open: close }));

  it("enters on the flip up and exits on the flip down, with hand-computed lines and confidence", () => {
    const strategy = new SupertrendStrategy("st", ["RELIANCE"], { atr_period: 2, multiplier: 1 });
    const signals = ticks.map((t, i) => strategy.onTick(t, { rsi_14: 42 }, i >= 4 ? LONG : undefined));
    expect(signals.map((s) => s?.kind)).toEqual([
      undefined,
      undefined,
      undefined,
      "entry",
      undefined,
      "exit",
    ]);

    // confidence = 0.5 + 0.5 × |close − previous line| / ATR = 0.5 + 0.5 × |14.5 − 12| / 3.5 = 6/7
    expect(signals[3]).toEqual({
      strategy_id: "st",
      symbol: "RELIANCE",
      kind: "entry",
      action: "BUY",
      price: 14.5,
      timestamp: T0 + 3000,
      reason: "supertrend_flip_up",
      indicators: { rsi_14: 42, supertrend: 10, supertrend_direction: 1, atr_2: 3.5 },
      confidence: expect.closeTo(6 / 7, 12),
      thresholds: { atr_period: 2, multiplier: 1 },
    });
    // 0.5 + 0.5 × |11 − 12.25| / 4.125 = 0.5 + 0.625 / 4.125
    expect(signals[5]).toMatchObject({
      kind: "exit",
      action: "SELL",
      price: 11,
      reason: "supertrend_flip_down",
      indicators: { supertrend: 16.625, supertrend_direction: -1, atr_2: 4.125 },
    });
    expect(signals[5]?.confidence).toBeCloseTo(0.5 + 0.625 / 4.125, 12);
  });

  it("does not enter while holding, nor exit without a position", () => {
    const holding = new SupertrendStrategy("st", "*", { atr_period: 2, multiplier: 1 });
    expect(ticks.map((t) => holding.onTick(t, {}, LONG)?.kind)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
      "exit",
    ]);
    const flat = new SupertrendStrategy("st", "*", { atr_period: 2, multiplier: 1 });
    expect(ticks.map((t) => flat.onTick(t, {}, undefined)?.kind)).toEqual([
      undefined,
      undefined,
      undefined,
      "entry",
      undefined,
      undefined,
    ]);
  });

  it("keeps separate state per symbol", () => {
    const strategy = new SupertrendStrategy("st", "*", { atr_period: 2, multiplier: 1 });
    const kinds: (string | undefined)[] = [];
    ticks.forEach((t, i) => {
      kinds.push(strategy.onTick(t, {}, undefined)?.kind);
      // Interleave a flat second symbol: it must not disturb the first one's bands.
      strategy.onTick({ ...tick(i, 50, 1, "TCS") }, {}, undefined);
    });
    expect(kinds).toEqual([undefined, undefined, undefined, "entry", undefined, undefined]);
  });
});

describe("symbol selection", () => {
  it('"*" trades every symbol, a list only its own', () => {
    expect(tradesSymbol({ symbols: "*" }, "ANY")).toBe(true);
    expect(tradesSymbol({ symbols: ["AAA"] }, "AAA")).toBe(true);
    expect(tradesSymbol({ symbols: ["AAA"] }, "BBB")).toBe(false);
  });
});
