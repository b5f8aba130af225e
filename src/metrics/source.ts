import type { EventBusStats } from "../events/event-bus.js";
import type { DataManagerStats } from "../storage/data-manager.js";
import type { ArchiverStats } from "../storage/history-archiver.js";
import type { InfluxWriterStats } from "../storage/influx-writer.js";
import type { HistoryStats } from "../storage/postgres-history.js";
import type { PipelineCounters } from "../trading/pipeline.js";

/**
 * What the exporter reads at scrape time, as an interface: the engine implements it, and the
 * metrics layer never imports the app.
 */
export interface MetricsSource {
  snapshot(): EngineSnapshot;
  readonly stores: {
    /** Absent: Redis not configured. */
    readonly cache?:
      | { readonly connected: boolean; memory(): Promise<{ usedBytes: number; maxBytes: number }> }
      | undefined;
    /** Absent: InfluxDB not configured. */
    readonly series?: { stats(): InfluxWriterStats } | undefined;
    /** Absent: PostgreSQL not configured. */
    readonly postgres?:
      | { readonly history: { stats(): HistoryStats }; readonly archiver: { stats(): ArchiverStats } }
      | undefined;
    readonly data: { stats(): DataManagerStats };
  };
  readonly bus: { stats(): EventBusStats };
}

export type TradeResult = "win" | "loss" | "flat";

/** Per-strategy trading figures for the exporter. */
export interface StrategyFigures {
  fills: Partial<Record<"BUY" | "SELL", number>>;
  closed: Record<TradeResult, number>;
  openPositions: number;
  realizedPnl: number;
  unrealizedPnl: number;
}

/** What the status line, the summary, the API and the exporter read. */
export interface EngineSnapshot {
  ticks: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  openPositions: number;
  realizedPnl: number;
  unrealizedPnl: number;
  pipeline: PipelineCounters;
  /** Epoch ms of the last tick processed (event time). */
  lastTickTime: number | undefined;
  /** Ticks processed per symbol (bounded: see MAX_SYMBOL_LABELS). */
  ticksBySymbol: Record<string, number>;
  /** Ticks per second over the last 10 s of wall time. */
  tickRate: number;
  /** A tick source is running. */
  feedRunning: boolean;
  /** Peak of realized + unrealized P&L minus its current value (≥ 0), sampled at each snapshot. */
  drawdown: number;
  /** Realized P&L of trades closed on the last tick's (UTC) day. */
  dailyPnl: number;
  strategies: Record<string, StrategyFigures>;
  /** The market picture: screener runs and the last scan's figures (absent before the first). */
  market: MarketFigures;
}

export interface MarketFigures {
  scans: number;
  /** Epoch ms of the last scan (event time). */
  lastScanTime: number | undefined;
  candidates: number;
  breadth: { advancing: number; declining: number; unchanged: number } | undefined;
  sectors: Record<string, number>;
  volatility: number | null;
}
