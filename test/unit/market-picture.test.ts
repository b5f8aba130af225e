import { describe, expect, it } from "vitest";
import type { Tick } from "../../src/domain/tick.js";
import { generateTicks, simulatedSector } from "../../src/market/simulator.js";
import { BarBook } from "../../src/trading/bar-book.js";
import { BarAggregator, timeframeMs } from "../../src/trading/bars.js";
import { marketSchema } from "../../src/trading/market-config.js";
import { MarketContext } from "../../src/trading/market-context.js";
import { MarketPicture } from "../../src/trading/market-picture.js";
import { formatDuration, PositionMonitor } from "../../src/trading/position-monitoring.js";
import type { OpenPosition } from "../../src/trading/position-tracker.js";
import { Screener } from "../../src/trading/screener.js";

const T0 = Date.UTC(2026, 10, 2, 9, 0, 0);
const MIN = 60_000;

function tick(symbol: string, at: number, price: number, volume = 100, range = 0): Tick {
  return {
    symbol,
    timestamp: at,
    open: price,
    high: price + range,
    low: price - range,
    close: price,
    volume,
    source: "replay",
  };
}

describe("bars", () => {
  it("aggregates OHLCV per bucket on event time and closes a bar on the next bucket's first tick", () => {
    const bars = new BarAggregator("1m");
    expect(bars.update(tick("A", T0 + 1_000, 10, 5))).toBeUndefined();
    expect(bars.update(tick("A", T0 + 20_000, 12, 7, 0.5))).toBeUndefined();
    // Another symbol's tick closes nothing of A.
    expect(bars.update(tick("B", T0 + 70_000, 50))).toBeUndefined();
    expect(bars.update(tick("A", T0 + 59_999, 9, 1))).toBeUndefined();
    const closed = bars.update(tick("A", T0 + MIN, 11, 2));
    expect(closed).toEqual({
      symbol: "A",
      timeframe: "1m",
      start: T0,
      end: T0 + MIN,
      open: 10,
      high: 12.5,
      low: 9,
      close: 9,
      volume: 13,
      ticks: 3,
    });
    // A late tick of an earlier bucket folds into the open bar instead of reopening one.
    expect(bars.update(tick("A", T0 + 30_000, 20, 1))).toBeUndefined();
    expect(bars.current("A")).toMatchObject({ start: T0 + MIN, high: 20, close: 20, volume: 3, ticks: 2 });
  });

  it("parses timeframes and refuses anything else", () => {
    expect(timeframeMs("30s")).toBe(30_000);
    expect(timeframeMs("5m")).toBe(300_000);
    expect(timeframeMs("1h")).toBe(3_600_000);
    for (const bad of ["0m", "5", "m5", "1d", "1.5m", ""])
      expect(() => timeframeMs(bad), bad).toThrow(/timeframe/);
  });

  it("names bar indicators with their timeframe", () => {
    const book = new BarBook(["1m"], {
      rsi: [3],
      ema: [2],
      atr: [2],
      macd: { fast: 2, slow: 3, signal: 2 },
      bollinger: { period: 2, stdDev: 2 },
    });
    const closes = [10, 11, 10.5, 12, 11.5, 13, 12];
    let last: ReturnType<BarBook["update"]> = [];
    closes.forEach((c, i) => {
      last = book.update(tick("A", T0 + i * MIN, c));
    });
    const named = book.named("A");
    expect(Object.keys(named).every((k) => k.endsWith("_1m"))).toBe(true);
    expect(named).toHaveProperty("rsi_3_1m");
    expect(last[0]?.named).toEqual(named);
    // Bollinger over the last 2 closed bars (11.5 and 13): mean 12.25, population sd 0.75.
    expect(named.bollinger_upper_1m).toBeCloseTo(12.25 + 2 * 0.75, 10);
    expect(book.periods().rsi_3_1m).toBe(3);
  });
});

/** Feeds per-minute closes (and volumes) as one tick per minute, then a tick that closes the last bar. */
function feed(
  book: BarBook,
  symbol: string,
  bars: { close: number; low?: number; high?: number; volume?: number }[],
) {
  bars.forEach((b, i) => {
    book.update({
      symbol,
      timestamp: T0 + i * MIN,
      open: b.close,
      high: b.high ?? b.close,
      low: b.low ?? b.close,
      close: b.close,
      volume: b.volume ?? 100,
    });
  });
  const last = bars.at(-1)?.close ?? 1;
  book.update({
    symbol,
    timestamp: T0 + bars.length * MIN,
    open: last,
    high: last,
    low: last,
    close: last,
    volume: 1,
  });
}

describe("screener", () => {
  const config = marketSchema.parse({ screener: { lookback_bars: 5, top: 3 } });
  it("scores the named rules on a hand-made universe and ranks by score, then symbol", () => {
    const book = new BarBook(["1m", "5m"]);
    // A choppy range (100–104) whose last bar is well above its low: no bounce, no breakout.
    const flat = [100, 103, 101, 104, 102];
    // BRK: the last bar closes above every earlier high (breakout) on 3× volume (volume surge).
    feed(book, "BRK", [...flat.map((close) => ({ close })), { close: 105, volume: 300 }]);
    // VOL: volume surge alone.
    feed(book, "VOL", [...flat.map((close) => ({ close })), { close: 102.5, volume: 250 }]);
    // BNC: dips to the look-back's low, then closes up (support bounce).
    feed(book, "BNC", [
      { close: 101 },
      { close: 100, low: 99 },
      { close: 100.5 },
      { close: 100.4 },
      { close: 99.2, low: 99.1 },
      { close: 100 },
    ]);
    // QUIET: nothing fires.
    feed(book, "QUIET", [...flat.map((close) => ({ close })), { close: 102 }]);
    // BRK2: a breakout like BRK's, without the volume.
    feed(book, "BRK2", [...flat.map((close) => ({ close })), { close: 106 }]);
    const prices: Record<string, number> = { BRK: 105, VOL: 102.5, BNC: 100, QUIET: 102, BRK2: 106 };
    const ranked = new Screener(config.screener, book).run(Object.keys(prices), (s) => prices[s], T0);
    expect(ranked.map((c) => [c.symbol, c.score, c.signals])).toEqual([
      ["BRK", 0.55, ["breakout", "volume_surge"]],
      ["BRK2", 0.3, ["breakout"]],
      ["VOL", 0.25, ["volume_surge"]],
    ]);
    // Past `top`: BNC (0.2) is fourth. With a larger top it appears, QUIET never does.
    const all = new Screener({ ...config.screener, top: 10 }, book).run(
      Object.keys(prices),
      (s) => prices[s],
      T0,
    );
    expect(all.map((c) => c.symbol)).toEqual(["BRK", "BRK2", "VOL", "BNC"]);
    expect(all.at(-1)?.signals).toEqual(["support_bounce"]);
    expect(all.every((c) => c.timestamp === T0 && c.price === prices[c.symbol])).toBe(true);
  });
});

describe("market context", () => {
  const config = marketSchema.parse({});
  const sectors: Record<string, string> = {
    A: "technology",
    B: "technology",
    C: "energy",
    D: "energy",
    E: "financials",
  };
  it("counts breadth against the session open, averages sectors and labels the regime", () => {
    const context = new MarketContext(config.context, 10, (s) => sectors[s] ?? "unclassified");
    const opens = { A: 100, B: 50, C: 20, D: 10, E: 40 };
    for (const [s, p] of Object.entries(opens)) context.observe(s, p, T0);
    // A +2 %, B +1 %, C −1 %, D 0.005 % (inside the 1 bp band), E +0.4 %.
    context.observe("A", 102, T0 + 1000);
    context.observe("B", 50.5, T0 + 1000);
    context.observe("C", 19.8, T0 + 1000);
    context.observe("D", 10.0005, T0 + 1000);
    context.observe("E", 40.16, T0 + 1000);
    const figures = context.run(T0 + 1000);
    expect(figures.market_breadth).toEqual({ advancing: 3, declining: 1, unchanged: 1 });
    expect(figures.sector_performance).toEqual({ energy: -0.4975, financials: 0.4, technology: 1.5 });
    expect(figures.index_change_pct).toBeCloseTo((2 + 1 - 1 + 0.005 + 0.4) / 5, 4);
    expect(figures.vix).toBeNull();
    // Up 0.48 % with 3 of 5 advancing: consolidation (a trend needs > 0.5 % and 60 % breadth).
    expect(figures.market_regime).toBe("bullish_consolidation");
    expect(figures.symbols).toBe(5);
  });

  it("resets the open on a new UTC day, and a steady rise with broad breadth is a bullish trend", () => {
    const context = new MarketContext({ ...config.context, high_volatility: 1e9 }, 10, () => "x");
    context.observe("A", 50, T0 - 86_400_000);
    for (const s of ["A", "B", "C"]) context.observe(s, 100, T0);
    for (let i = 1; i <= 3; i++) {
      for (const s of ["A", "B", "C"]) context.observe(s, 100 + i, T0 + i * 10_000);
      context.run(T0 + i * 10_000);
    }
    const figures = context.run(T0 + 40_000);
    expect(figures.market_breadth.advancing).toBe(3);
    expect(figures.index_change_pct).toBeCloseTo(3, 6);
    expect(figures.market_regime).toBe("bullish_trend");
    expect(figures.vix).toBeGreaterThan(0);
  });
});

describe("market scans", () => {
  it("are the same for the same seed, and change with it", () => {
    const config = marketSchema.parse({
      timeframes: ["5s"],
      screener: { interval_seconds: 2, timeframe: "5s", lookback_bars: 5 },
    });
    const scans = (seed: number) => {
      const book = new BarBook(config.timeframes);
      const picture = new MarketPicture(config, book, (s) => simulatedSector(s) ?? "unclassified");
      const out: unknown[] = [];
      for (const t of generateTicks({ seed, rate: 50, ticks: 4000, symbols: 20, startTime: T0 })) {
        book.update(t);
        const scan = picture.onTick(t);
        if (scan) out.push({ candidates: scan.candidates, context: scan.context });
      }
      return out;
    };
    const first = scans(9);
    expect(first.length).toBeGreaterThan(30);
    expect(JSON.stringify(first).includes("breakout")).toBe(true);
    expect(scans(9)).toEqual(first);
    expect(scans(10)).not.toEqual(first);
  });
});

describe("position monitoring", () => {
  it("gives targets, stop distances, time in trade and per-timeframe signals", () => {
    const book = new BarBook(["1m"], {
      rsi: [2],
      ema: [2],
      atr: [2],
      macd: { fast: 2, slow: 3, signal: 2 },
      bollinger: { period: 2, stdDev: 2 },
    });
    feed(book, "A", [{ close: 10 }, { close: 11 }, { close: 12, high: 12.4 }, { close: 13 }, { close: 14 }]);
    const config = marketSchema.parse({ timeframes: ["1m"], monitoring: { profit_target_percent: 5 } });
    const monitor = new PositionMonitor(config.monitoring, book, ["1m"]);
    const position = {
      trade_id: "t-1",
      strategy_id: "s",
      symbol: "A",
      side: "long",
      entry_price: 12,
      quantity: 1,
      entry_time: T0,
      entry_fees: 0,
      last_price: 12.2,
      last_timestamp: T0 + 27 * MIN + 15_000,
      unrealized_pnl: 0.2,
      stop: 11.5,
      highest: 12.2,
      max_price: 12.2,
      min_price: 12,
      sl_type: "fixed_percent",
    } satisfies OpenPosition;
    const doc = monitor.document("A", [position], position.last_timestamp);
    expect(doc?.time_in_trade).toBe("00:27:15");
    expect(doc?.profit_target).toEqual({
      value: 12.6,
      distance: "3.3%",
      distance_price: 0.4,
      distance_pct: 3.279,
    });
    expect(doc?.stop_loss).toEqual({
      value: 11.5,
      distance: "5.7%",
      distance_price: 0.7,
      distance_pct: 5.738,
    });
    // Rising closes: RSI(2) at 100, overbought.
    expect(doc?.technical_signals.rsi_1m).toEqual({ value: 100, signal: "overbought" });
    expect(doc?.technical_signals.macd_1m).toMatchObject({
      signal: expect.stringMatching(/^(strengthening|weakening|bullish_cross|steady)$/),
    });
    // The next level ahead of a long at 12.2: the lowest high above it, 12.4.
    expect(doc?.technical_signals.support_resistance).toEqual({ next_level: 12.4, type: "resistance" });
    expect(doc?.positions).toHaveLength(1);
    expect(formatDuration(27 * 3_600_000 + 61_000)).toBe("27:01:01");
  });
});
