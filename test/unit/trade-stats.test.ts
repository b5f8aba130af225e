import { describe, expect, it } from "vitest";
import { type ClosedTradeResult, computeStrategyStats } from "../../src/storage/trade-stats.js";

/**
 * Six trades, listed out of exit order on purpose (drawdown must sort by exit_time).
 * By exit_time:        t=100  t=200  t=300  t=400  t=500  t=600
 *   pnl                 −15    +30      0    +20     −5    +10
 *   cumulative          −15    +15    +15    +35    +30    +40
 *   peak (from 0)         0    +15    +15    +35    +35    +40
 *   peak − cumulative    15      0      0      0      5      0
 */
const SIX: ClosedTradeResult[] = [
  { pnl: 20, duration_seconds: 90, exit_time: 400 },
  { pnl: -15, duration_seconds: 60, exit_time: 100 },
  { pnl: 10, duration_seconds: 600, exit_time: 600 },
  { pnl: 30, duration_seconds: 120, exit_time: 200 },
  { pnl: -5, duration_seconds: 300, exit_time: 500 },
  { pnl: 0, duration_seconds: 30, exit_time: 300 },
];

describe("computeStrategyStats", () => {
  it("computes every figure on a hand-worked list with a first loss and a zero-pnl trade", () => {
    const s = computeStrategyStats(SIX);
    expect(s.total_trades).toBe(6);
    expect(s.winners).toBe(3); // +30, +20, +10
    expect(s.losers).toBe(2); // −15, −5; the 0 trade is neither
    expect(s.total_pnl).toBe(40); // −15 + 30 + 0 + 20 − 5 + 10 = 40
    expect(s.avg_pnl).toBeCloseTo(40 / 6, 12); // 40 / 6 = 6.667
    expect(s.avg_duration_seconds).toBe(200); // (60 + 120 + 30 + 90 + 300 + 600) / 6 = 1200 / 6 = 200
    expect(s.win_rate).toBe(0.5); // 3 winners / 6 trades
    expect(s.profit_factor).toBe(3); // profit factor = (30+20+10)/|−15−5| = 60/20 = 3
    // avg_win = 60/3 = 20, |avg_loss| = 20/2 = 10, loss_rate = 2/6
    // expectancy = 0.5 × 20 − (2/6) × 10 = 10 − 3.333 = 6.667 (= total_pnl / n = 40/6)
    expect(s.expectancy).toBeCloseTo(40 / 6, 12);
    expect(s.expectancy).toBeCloseTo(s.avg_pnl, 12);
    // expectancy ratio = (1 + 20/10) × 0.5 − 1 = 1.5 − 1 = 0.5
    expect(s.expectancy_ratio).toBeCloseTo(0.5, 12);
    // max drawdown = max(15, 0, 0, 0, 5, 0) = 15: the first loss, measured from starting equity 0
    expect(s.max_drawdown).toBe(15);
  });

  it("measures a drawdown that spans several trades from a later peak", () => {
    const s = computeStrategyStats([
      { pnl: 10, duration_seconds: 1, exit_time: 1 }, // cum 10, peak 10, dd 0
      { pnl: -4, duration_seconds: 1, exit_time: 2 }, // cum 6,  peak 10, dd 4
      { pnl: -8, duration_seconds: 1, exit_time: 3 }, // cum −2, peak 10, dd 12
      { pnl: 5, duration_seconds: 1, exit_time: 4 }, // cum 3,  peak 10, dd 7
      { pnl: 20, duration_seconds: 1, exit_time: 5 }, // cum 23, peak 23, dd 0
    ]);
    expect(s.max_drawdown).toBe(12); // peak 10 − trough −2 = 12
    expect(s.profit_factor).toBeCloseTo(35 / 12, 12); // (10+5+20)/|−4−8| = 35/12 = 2.917
    // avg_win = 35/3, |avg_loss| = 12/2 = 6, win_rate = 3/5
    // expectancy ratio = (1 + (35/3)/6) × 0.6 − 1 = (1 + 1.944) × 0.6 − 1 = 0.7667
    expect(s.expectancy_ratio).toBeCloseTo((1 + 35 / 3 / 6) * 0.6 - 1, 12);
    expect(s.expectancy).toBeCloseTo(23 / 5, 12); // total 23 / 5 trades = 4.6
  });

  it("returns zeros and nulls for an empty list, never NaN", () => {
    const s = computeStrategyStats([]);
    expect(s).toEqual({
      total_trades: 0,
      winners: 0,
      losers: 0,
      total_pnl: 0,
      avg_pnl: 0,
      avg_duration_seconds: 0,
      win_rate: 0,
      profit_factor: null,
      expectancy: 0,
      expectancy_ratio: null,
      max_drawdown: 0,
    });
    for (const value of Object.values(s)) {
      if (typeof value === "number") expect(Number.isFinite(value)).toBe(true);
    }
  });

  it("reports null profit factor and expectancy ratio when there is no loss", () => {
    const s = computeStrategyStats([
      { pnl: 10, duration_seconds: 100, exit_time: 1 },
      { pnl: 0, duration_seconds: 50, exit_time: 2 },
      { pnl: 5, duration_seconds: 30, exit_time: 3 },
    ]);
    expect(s.winners).toBe(2);
    expect(s.losers).toBe(0);
    expect(s.win_rate).toBeCloseTo(2 / 3, 12); // 2 winners / 3 trades; the 0 trade still counts
    expect(s.profit_factor).toBeNull(); // 15 / |0|: undefined
    expect(s.expectancy_ratio).toBeNull(); // needs avg_loss ≠ 0
    expect(s.expectancy).toBe(5); // (2/3) × 7.5 − 0 = 5 = 15 / 3
    expect(s.max_drawdown).toBe(0); // cum 10, 10, 15 never falls below its peak
    expect(s.avg_duration_seconds).toBe(60); // (100 + 50 + 30) / 3
  });

  it("handles a list of losses only", () => {
    const s = computeStrategyStats([
      { pnl: -3, duration_seconds: 10, exit_time: 1 }, // cum −3, dd 3
      { pnl: -7, duration_seconds: 10, exit_time: 2 }, // cum −10, dd 10
    ]);
    expect(s.profit_factor).toBe(0); // 0 / |−3−7| = 0
    expect(s.expectancy_ratio).toBe(-1); // (1 + 0/5) × 0 − 1 = −1
    expect(s.expectancy).toBe(-5); // 0 − 1 × 5 = −5
    expect(s.max_drawdown).toBe(10); // peak 0 − trough −10
  });

  it("does not reorder the caller's array", () => {
    const input = [...SIX];
    computeStrategyStats(input);
    expect(input).toEqual(SIX);
  });
});
