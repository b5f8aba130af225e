import { StoreUnavailableError } from "../domain/errors.js";
import type { MonitoringPackage } from "../schema/monitoring-package.js";
import type { DataManager } from "../storage/data-manager.js";
import type { JsonObject, RedisCache } from "../storage/redis-cache.js";

/**
 * Builds the decision package of one symbol (see src/schema/monitoring-package.ts) from the
 * cache's keys — latest tick, indicators (split by timeframe suffix), sentiment, monitoring,
 * entry and exit signals, market context — and the open positions, which come from the journal
 * when Redis cannot answer. A cache part that cannot be read is null and `sources.redis` false.
 */

export interface PackageDeps {
  data: DataManager;
  cache?: RedisCache | undefined;
  /** The bar timeframes (`1m`, `5m`): an indicator named `…_1m` belongs to 1m. */
  timeframes: readonly string[];
}

const iso = (ms: number) => new Date(ms).toISOString();

function stamp(ms: number, now: number): { timestamp: string; age_seconds: number } {
  return { timestamp: iso(ms), age_seconds: Math.max(0, Math.round(now - ms) / 1000) };
}

/** `{rsi_14: …, rsi_14_1m: …}` → `{tick: {rsi_14}, 1m: {rsi_14}}`. */
export function byTimeframe(
  values: Record<string, number>,
  timeframes: readonly string[],
): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = { tick: {} };
  for (const tf of timeframes) out[tf] = {};
  for (const [name, value] of Object.entries(values)) {
    const tf = timeframes.find((t) => name.endsWith(`_${t}`));
    if (tf) (out[tf] as Record<string, number>)[name.slice(0, -tf.length - 1)] = value;
    else (out.tick as Record<string, number>)[name] = value;
  }
  return out;
}

/** A cached document's epoch-ms `timestamp` as ISO, with its age. */
function stampedDocument(
  doc: JsonObject | null,
  now: number,
): (JsonObject & { timestamp: string; age_seconds: number }) | null {
  if (!doc || typeof doc.timestamp !== "number") return null;
  return { ...doc, ...stamp(doc.timestamp, now) };
}

export async function monitoringPackage(
  symbol: string,
  deps: PackageDeps,
  now = Date.now(),
): Promise<MonitoringPackage> {
  const { data, cache } = deps;
  const positions = (await data.getOpenPositions())
    .filter((p) => p.symbol === symbol)
    .map((p) => ({
      trade_id: p.trade_id,
      strategy_id: p.strategy_id,
      side: p.side,
      entry_price: p.entry_price,
      quantity: p.quantity,
      entry_time: iso(p.entry_time * 1000),
      current_price: p.current_price,
      unrealized_pnl: p.unrealized_pnl,
      unrealized_pnl_pct: p.unrealized_pnl_pct,
      stop_loss: p.stop_loss,
    }));
  const empty: MonitoringPackage = {
    symbol,
    generated_at: iso(now),
    sources: { redis: false, journal: true },
    price: null,
    indicators: null,
    sentiment: null,
    positions,
    monitoring: null,
    signals: { entry: null, exit: null },
    market_context: null,
  };
  if (!cache?.connected) return empty;
  try {
    const [tick, indicators, sentiment, monitoring, entry, exit, context] = await Promise.all([
      cache.getLatestTick(symbol),
      cache.getIndicators(symbol),
      cache.getSentiment(symbol),
      cache.getPositionMonitoring(symbol),
      cache.getSignal("entry", symbol),
      cache.getSignal("exit", symbol),
      cache.getMarketContext(),
    ]);
    const signal = (s: typeof entry) =>
      s && {
        reason: s.reason,
        price: s.price,
        indicators: s.indicators,
        confidence: s.confidence,
        ...stamp(s.timestamp, now),
      };
    return {
      ...empty,
      sources: { redis: true, journal: true },
      price: tick && {
        last: tick.last,
        open: tick.open,
        high: tick.high,
        low: tick.low,
        close: tick.close,
        volume: tick.volume,
        bid: tick.bid,
        ask: tick.ask,
        ...stamp(tick.timestamp, now),
      },
      indicators: indicators && {
        by_timeframe: byTimeframe(indicators.values, deps.timeframes),
        ...stamp(indicators.timestamp, now),
      },
      sentiment: sentiment && {
        ...sentiment,
        latest_news: sentiment.latest_news.map((n) => ({ ...n, timestamp: iso(n.timestamp) })),
        ...stamp(sentiment.timestamp, now),
      },
      monitoring: stampedDocument(monitoring, now) as MonitoringPackage["monitoring"],
      signals: { entry: signal(entry), exit: signal(exit) },
      market_context: stampedDocument(context, now) as MonitoringPackage["market_context"],
    };
  } catch (err) {
    // Redis went away between the check and the reads: what the journal knows still answers.
    if (err instanceof StoreUnavailableError) return empty;
    throw err;
  }
}
