/**
 * Every Redis key, channel and TTL VELOX uses, defined once. Writers, readers, tests and
 * dashboards import from here; nothing else spells a key.
 *
 * Families follow the seed key schema (stocks:*, watchlist:*, candidates:*, positions:*,
 * signals:*, system:*, metrics:*, context:*) plus the engine's own (sl:*, stats:*, stream:*).
 * Where the seeds name the same fact twice (tick:latest:{symbol} vs stocks:price:{symbol},
 * indicators:{symbol} vs stocks:indicators:{symbol}), one key holds it, with the shorter TTL.
 */

const SECOND = 1;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** TTLs in seconds. `undefined` means the key lives until replaced or deleted. */
export const TTL = {
  /** Latest tick per symbol: stale after a minute. */
  latestTick: 1 * MINUTE,
  /** Latest indicator values per symbol. */
  indicators: 5 * MINUTE,
  sentiment: 1 * HOUR,
  /** Open positions; refreshed on every write, so only abandoned ones expire. */
  position: 1 * DAY,
  positionMonitoring: 5 * MINUTE,
  /** Trailing stop state lives as long as the position it guards. */
  stopState: 1 * DAY,
  signal: 1 * DAY,
  /** Daily aggregates are kept one extra day so yesterday is still readable after midnight. */
  dailyStats: 2 * DAY,
  marketContext: 1 * HOUR,
  candidates: 1 * DAY,
} as const;

/** Key builders. Arguments are validated identifiers (symbols, strategy ids, trade ids). */
export const keys = {
  /** HASH last/open/high/low/close/volume/bid/ask/timestamp — the latest tick. */
  stockPrice: (symbol: string) => `stocks:price:${symbol}`,
  /** HASH indicator name -> value, plus timestamp. */
  stockIndicators: (symbol: string) => `stocks:indicators:${symbol}`,
  /** STRING (JSON): nested news list, read whole. */
  stockSentiment: (symbol: string) => `stocks:sentiment:${symbol}`,
  /** LIST of symbols, in watch order. */
  watchlist: () => "watchlist:current",
  /** ZSET symbol scored by rank score. */
  candidatesRanked: () => "candidates:ranked",
  /** HASH symbol -> JSON details (price, signals, timestamp) for the ranked candidates. */
  candidatesDetails: () => "candidates:details",
  /** HASH strategy_id -> JSON position: one symbol may be held by several strategies. */
  activePositions: (symbol: string) => `positions:active:${symbol}`,
  /** STRING (JSON): nested monitoring snapshot for a held symbol. */
  positionMonitoring: (symbol: string) => `positions:monitoring:${symbol}`,
  /** STRING (JSON): latest signal of a type (entry, exit, …) for a symbol. */
  signal: (signalType: string, symbol: string) => `signals:${signalType}:${symbol}`,
  /** HASH current_sl/highest_price/sl_type/updated_at for one trade. */
  stopState: (tradeId: string) => `sl:${tradeId}`,
  /** HASH of atomic counters: signals:{action}, trades, wins, losses, pnl. */
  strategyStats: (strategyId: string) => `stats:strategy:${strategyId}`,
  /** HASH of atomic counters for one UTC day (YYYY-MM-DD). */
  dailyStats: (day: string) => `stats:daily:${day}`,
  /** HASH state/market_status/counts/timestamps. */
  systemState: () => "system:state",
  /** HASH daily_pnl/win_rate/… */
  performance: () => "metrics:performance",
  /** STRING (JSON): nested sector/breadth data. */
  marketContext: () => "context:market",
  /**
   * STREAM of event-bus messages of one topic (`velox-ticks`, `velox-signals`, …), entries
   * `{type, data}` with `data` the message JSON; trimmed with `MAXLEN ~`.
   */
  eventStream: (topic: string) => `stream:${topic}`,
} as const;

/** SCAN patterns for the families that are listed. */
export const patterns = {
  activePositions: "positions:active:*",
  stopStates: "sl:*",
  stockPrices: "stocks:price:*",
} as const;

/** Pub/sub channels. */
export const channels = {
  /** A JSON message {type: "opened"|"updated"|"closed", strategy_id, symbol, …} per position change. */
  positionChanges: "positions:changes",
} as const;

/** The symbol part of a `positions:active:{symbol}` key. */
export function symbolFromActivePositionsKey(key: string): string {
  return key.slice("positions:active:".length);
}
