import type { BarBook } from "./bar-book.js";
import type { Timeframe } from "./bars.js";
import type { MarketConfig } from "./market-config.js";
import type { OpenPosition } from "./position-tracker.js";

/**
 * Seed 004's `positions:monitoring:{symbol}`: for the positions held on one symbol, technical
 * signals per timeframe (RSI level, MACD momentum, the next support or resistance of the bars),
 * the profit target and the stop with their distance from the price, and the time in trade. The
 * top level describes the oldest position (the seed's shape has one); `positions` lists each.
 */

export interface Level {
  value: number;
  /** The seed's form, e.g. "1.9%": the distance from the current price, in percent. */
  distance: string;
  distance_price: number;
  distance_pct: number;
}

export interface PositionFigures {
  trade_id: string;
  strategy_id: string;
  side: "long" | "short";
  entry_price: number;
  current_price: number;
  profit_target: Level;
  stop_loss: Level;
  time_in_trade: string;
}

export interface MonitoringDocument extends PositionFigures {
  symbol: string;
  technical_signals: Record<string, { value: number; signal: string } | { next_level: number; type: string }>;
  positions: PositionFigures[];
  timestamp: number;
}

const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits;

/** "HH:MM:SS" of a duration in ms (hours beyond 24 keep counting). */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${pad(Math.floor(total / 3600))}:${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
}

function level(value: number, price: number): Level {
  const distancePrice = Math.abs(value - price);
  const pct = price > 0 ? (distancePrice / price) * 100 : 0;
  return {
    value: round(value),
    distance: `${pct.toFixed(1)}%`,
    distance_price: round(distancePrice),
    distance_pct: round(pct, 3),
  };
}

export class PositionMonitor {
  constructor(
    private readonly config: MarketConfig["monitoring"],
    private readonly bars: BarBook,
    private readonly timeframes: readonly Timeframe[],
  ) {}

  figures(p: OpenPosition, now: number): PositionFigures {
    const price = p.last_price;
    const target =
      p.side === "long"
        ? p.entry_price * (1 + this.config.profit_target_percent / 100)
        : p.entry_price * (1 - this.config.profit_target_percent / 100);
    return {
      trade_id: p.trade_id,
      strategy_id: p.strategy_id,
      side: p.side,
      entry_price: p.entry_price,
      current_price: price,
      profit_target: level(target, price),
      stop_loss: level(p.stop, price),
      time_in_trade: formatDuration(now - p.entry_time),
    };
  }

  /** The document of one symbol's positions (oldest first), at `now` (epoch ms of the last tick). */
  document(symbol: string, positions: readonly OpenPosition[], now: number): MonitoringDocument | undefined {
    const held = [...positions].sort((a, b) => a.entry_time - b.entry_time);
    const first = held[0];
    if (!first) return undefined;
    const figures = held.map((p) => this.figures(p, now));
    return {
      symbol,
      technical_signals: this.signals(symbol, first),
      ...(figures[0] as PositionFigures),
      positions: figures,
      timestamp: now,
    };
  }

  private signals(symbol: string, p: OpenPosition): MonitoringDocument["technical_signals"] {
    const out: MonitoringDocument["technical_signals"] = {};
    for (const tf of this.timeframes) {
      const { latest, previous } = this.bars.values(symbol, tf);
      const rsiName = Object.keys(latest).find((k) => /^rsi_\d+$/.test(k));
      if (rsiName) {
        const rsi = latest[rsiName] as number;
        const signal =
          rsi >= this.config.overbought ? "overbought" : rsi <= this.config.oversold ? "oversold" : "neutral";
        out[`rsi_${tf}`] = { value: round(rsi, 2), signal };
      }
      const macd = latest.macd;
      const hist = latest.macd_histogram;
      if (macd !== undefined && hist !== undefined) {
        const before = previous.macd_histogram;
        let signal = "steady";
        if (before !== undefined) {
          if (before <= 0 && hist > 0) signal = "bullish_cross";
          else if (before >= 0 && hist < 0) signal = "bearish_cross";
          else signal = Math.abs(hist) > Math.abs(before) ? "strengthening" : "weakening";
        }
        out[`macd_${tf}`] = { value: round(macd), signal };
      }
    }
    const tf = this.timeframes[0];
    if (tf !== undefined) {
      const bars = this.bars.bars(symbol, tf);
      const price = p.last_price;
      const above = bars.map((b) => b.high).filter((h) => h > price);
      const below = bars.map((b) => b.low).filter((l) => l < price);
      const resistance =
        above.length > 0 ? { next_level: round(Math.min(...above)), type: "resistance" } : undefined;
      const support =
        below.length > 0 ? { next_level: round(Math.max(...below)), type: "support" } : undefined;
      // Ahead of the position first: resistance for a long, support for a short.
      const next = p.side === "long" ? (resistance ?? support) : (support ?? resistance);
      if (next) out.support_resistance = next;
    }
    return out;
  }
}
