/**
 * Per-strategy performance figures over closed trades. Pure arithmetic, no I/O, so the formulas
 * can be checked by hand. Definitions follow freqtrade's (freqtrade/data/metrics.py) where it has
 * one, so numbers are comparable with its backtest reports.
 *
 * A trade with pnl > 0 is a winner, pnl < 0 a loser; pnl == 0 is neither, but still counts in
 * total_trades (and so lowers win_rate).
 */

export interface ClosedTradeResult {
  /** Net pnl of the trade, after fees. */
  pnl: number;
  duration_seconds: number;
  /** Unix seconds; orders the trades for the drawdown curve. */
  exit_time: number;
}

export interface StrategyStats {
  total_trades: number;
  winners: number;
  losers: number;
  total_pnl: number;
  avg_pnl: number;
  avg_duration_seconds: number;
  win_rate: number;
  profit_factor: number | null;
  expectancy: number;
  expectancy_ratio: number | null;
  max_drawdown: number;
}

/**
 * Computes the stats below. An empty list gives zeros, and null where the figure is undefined;
 * nothing is ever NaN or Infinity.
 *
 * - total_trades = n; winners = #(pnl > 0); losers = #(pnl < 0).
 * - total_pnl = Σ pnl; avg_pnl = total_pnl / n.
 * - avg_duration_seconds = Σ duration_seconds / n.
 * - win_rate = winners / n, in 0..1.
 * - profit_factor = Σ winning pnl / |Σ losing pnl|; null when there is no losing trade.
 * - expectancy = win_rate × avg_win − loss_rate × |avg_loss| (freqtrade), where
 *   avg_win = Σ winning pnl / winners, avg_loss = Σ losing pnl / losers, loss_rate = losers / n.
 *   This equals total_pnl / n, because zero-pnl trades add nothing to either sum.
 * - expectancy_ratio = (1 + avg_win / |avg_loss|) × win_rate − 1 (freqtrade); null when there is
 *   no losing trade (freqtrade reports a sentinel 100 there, which would read as a real value).
 * - max_drawdown = max over t of (peak_t − cum_t), where cum_t is the cumulative pnl after the
 *   t-th trade by exit_time and peak_t = max(0, cum_1 … cum_t). The running peak starts at 0 so
 *   that losing from the starting equity counts: a first trade of −15 is a drawdown of 15. This is
 *   freqtrade's calculate_max_drawdown in its absolute form (high_value = max(0, cummax)).
 *   Reported as a positive amount in pnl currency; 0 when equity never fell below a peak.
 */
export function computeStrategyStats(closedTrades: readonly ClosedTradeResult[]): StrategyStats {
  const n = closedTrades.length;
  let winners = 0;
  let losers = 0;
  let grossProfit = 0;
  let grossLoss = 0; // ≤ 0
  let totalPnl = 0;
  let totalDuration = 0;
  for (const t of closedTrades) {
    totalPnl += t.pnl;
    totalDuration += t.duration_seconds;
    if (t.pnl > 0) {
      winners += 1;
      grossProfit += t.pnl;
    } else if (t.pnl < 0) {
      losers += 1;
      grossLoss += t.pnl;
    }
  }

  const winRate = n > 0 ? winners / n : 0;
  const lossRate = n > 0 ? losers / n : 0;
  const avgWin = winners > 0 ? grossProfit / winners : 0;
  const avgLossAbs = losers > 0 ? Math.abs(grossLoss) / losers : 0;

  return {
    total_trades: n,
    winners,
    losers,
    total_pnl: totalPnl,
    avg_pnl: n > 0 ? totalPnl / n : 0,
    avg_duration_seconds: n > 0 ? totalDuration / n : 0,
    win_rate: winRate,
    profit_factor: losers > 0 ? grossProfit / Math.abs(grossLoss) : null,
    expectancy: winRate * avgWin - lossRate * avgLossAbs,
    expectancy_ratio: losers > 0 ? (1 + avgWin / avgLossAbs) * winRate - 1 : null,
    max_drawdown: maxDrawdown(closedTrades),
  };
}

/** Absolute max drawdown of the cumulative pnl curve, peak starting at 0 (see computeStrategyStats). */
function maxDrawdown(trades: readonly ClosedTradeResult[]): number {
  // Stable sort on a copy: the caller's array is left alone, and equal exit times keep their order.
  const ordered = [...trades].sort((a, b) => a.exit_time - b.exit_time);
  let cumulative = 0;
  let peak = 0;
  let worst = 0;
  for (const t of ordered) {
    cumulative += t.pnl;
    if (cumulative > peak) peak = cumulative;
    if (peak - cumulative > worst) worst = peak - cumulative;
  }
  return worst;
}
