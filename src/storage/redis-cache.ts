import { performance } from "node:perf_hooks";
import { type ChainableCommander, Redis } from "ioredis";
import type { Logger } from "pino";
import { z } from "zod";
import { errorMessage, StoreUnavailableError } from "../domain/errors.js";
import { assertId, assertSymbol, parseOrThrow } from "../domain/identifiers.js";
import { channels, keys, patterns, symbolFromActivePositionsKey, TTL } from "../schema/redis-keys.js";
import {
  type CacheWindow,
  type Candidate,
  dayOf,
  type FlatRecord,
  fieldName,
  flatRecordSchema,
  type IndicatorSnapshot,
  type JsonObject,
  jsonObjectSchema,
  type LatestTick,
  type Position,
  type PositionChange,
  type PositionWrite,
  type RedisCacheOptions,
  type RedisHealth,
  type Sentiment,
  type Signal,
  type StateListener,
  type StopState,
  type StoredPosition,
  type StrategyCounters,
  sentimentSchema,
  signalSchema,
  signalType,
  stopStateSchema,
  tickSchema,
} from "./redis-cache-schemas.js";
import { putRankedCandidates, putWatchlist, validateCandidates, validateWatchlist } from "./redis-market.js";
import { failFastRedisOptions } from "./redis-options.js";
import {
  DELETE_POSITION,
  upsertPosition,
  upsertPositionCall,
  validatePositionWrite,
} from "./redis-positions.js";
import { putIndicators, putLatestTick, validateIndicatorWrite, windowWriter } from "./redis-window.js";

export type {
  CacheWindow,
  Candidate,
  FlatRecord,
  IndicatorSnapshot,
  IndicatorWrite,
  JsonObject,
  LatestTick,
  MarketScanWrite,
  Position,
  PositionChange,
  PositionWrite,
  RedisCacheOptions,
  RedisHealth,
  Sentiment,
  Signal,
  StateListener,
  StopState,
  StoredPosition,
  StrategyCounters,
  TradeResultsWrite,
} from "./redis-cache-schemas.js";

/**
 * The cache, for data that lives only in Redis: a StoreUnavailableError (the API's 503) naming
 * why Redis is needed when it is not configured or not connected. `why`, e.g. "sentiment is kept
 * in Redis".
 */
export function requireConnectedCache(cache: RedisCache | undefined, why: string): RedisCache {
  if (!cache) throw new StoreUnavailableError("redis", `not configured (set VELOX_REDIS_URL); ${why}`);
  if (!cache.connected) throw new StoreUnavailableError("redis", `not connected; ${why}`);
  return cache;
}

/**
 * Hot cache over Redis. Every time stored here is epoch milliseconds (`Date.now()`), so hashes hold
 * only numbers and strings and nothing needs a date parser on the way out.
 */

/** Redis' answers to a wrong password or user (Redis 6+ and older). */
const AUTH_REFUSED = /WRONGPASS|NOAUTH|invalid password|invalid username-password/i;

export class RedisCache {
  private readonly listeners = new Set<StateListener>();
  private readonly subscribers = new Set<Redis>();
  private readonly log: Logger | undefined;
  private wasReady = false;
  private closing = false;

  private constructor(
    private readonly redis: Redis,
    target: string,
    logger: Logger | undefined,
  ) {
    // The caller passes its component logger (e.g. "cache"); only the target is added.
    this.log = logger?.child({ target });
    // Transitions are logged once each; the per-retry 'close' and 'error' events are not.
    redis.on("ready", () => {
      if (this.wasReady) return;
      this.wasReady = true;
      this.log?.info("redis connected");
      this.emitState(true);
    });
    redis.on("close", () => {
      if (!this.wasReady) return;
      this.wasReady = false;
      if (this.closing) this.log?.debug("redis connection closed");
      else this.log?.warn("redis connection lost; reconnecting");
      this.emitState(false);
    });
    // Without a listener ioredis prints every failed reconnect attempt.
    // A refused password or user is no passing outage: said once at error level (until the
    // next successful connect), with what Redis answered; the rest stays at debug.
    let refusedSaid = false;
    redis.on("ready", () => {
      refusedSaid = false;
    });
    redis.on("error", (err: Error) => {
      if (AUTH_REFUSED.test(err.message)) {
        if (!refusedSaid) {
          refusedSaid = true;
          this.log?.error(
            { reason: err.message },
            "redis refused the credentials (check the password in VELOX_REDIS_URL or VELOX_REDIS_PASSWORD_FILE)",
          );
        }
        return;
      }
      this.log?.debug({ reason: err.message }, "redis connection error");
    });
  }

  /** Connects and waits until Redis is ready; rejects with StoreUnavailableError if the first attempt fails. */
  static async connect(url: string, opts: RedisCacheOptions = {}): Promise<RedisCache> {
    const cache = RedisCache.build(url, opts);
    try {
      await cache.redis.connect();
    } catch (err) {
      cache.redis.disconnect();
      throw unavailable(err);
    }
    return cache;
  }

  /**
   * Returns at once and connects in the background, retrying until Redis answers: for an engine
   * that must start (and trade) while its cache is down. Watch `connected` / `onStateChange`.
   */
  static create(url: string, opts: RedisCacheOptions = {}): RedisCache {
    const cache = RedisCache.build(url, opts);
    // A failed first attempt is retried by retryStrategy like any later loss.
    cache.redis.connect().catch(() => {});
    return cache;
  }

  private static build(url: string, opts: RedisCacheOptions): RedisCache {
    // Fail fast while disconnected instead of queueing: callers degrade rather than wait.
    const redis = new Redis(url, failFastRedisOptions(opts.commandTimeoutMs ?? 500));
    return new RedisCache(redis, describeTarget(url), opts.logger);
  }

  /** True only while the connection is ready to serve commands. */
  get connected(): boolean {
    return this.redis.status === "ready";
  }

  /** Calls `listener(true)` on every (re)connect and `listener(false)` on every loss. Returns an unsubscribe. */
  onStateChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async health(): Promise<RedisHealth> {
    if (!this.connected) return { up: false, latencyMs: null, error: `not connected (${this.redis.status})` };
    const started = performance.now();
    try {
      await this.redis.ping();
      return { up: true, latencyMs: performance.now() - started };
    } catch (err) {
      return { up: false, latencyMs: null, error: errorMessage(err) };
    }
  }

  /** `INFO memory`: bytes used and the configured maxmemory (0 = no limit). */
  async memory(): Promise<{ usedBytes: number; maxBytes: number }> {
    const info = await this.run((r) => r.info("memory"));
    const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, "m").exec(info)?.[1] ?? Number.NaN);
    return { usedBytes: field("used_memory"), maxBytes: field("maxmemory") };
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all([...this.subscribers].map((sub) => closeClient(sub)));
    this.subscribers.clear();
    await closeClient(this.redis);
  }

  // --- latest tick -------------------------------------------------------------------------------

  async setLatestTick(tick: LatestTick): Promise<void> {
    const valid = parseOrThrow(tickSchema, tick, "tick");
    await this.exec((tx) => putLatestTick(tx, valid));
  }

  async getLatestTick(symbol: string): Promise<LatestTick | null> {
    const sym = assertSymbol(symbol);
    const hash = await this.run((r) => r.hgetall(keys.stockPrice(sym)));
    return isEmpty(hash) ? null : ({ symbol: sym, ...numbers(hash) } as LatestTick);
  }

  // --- indicators --------------------------------------------------------------------------------

  async setIndicators(symbol: string, values: Record<string, number>, timestamp: number): Promise<void> {
    const valid = validateIndicatorWrite({ symbol, values, timestamp });
    await this.exec((tx) => putIndicators(tx, valid));
  }

  /**
   * Latest ticks and indicator snapshots for many symbols in one pipeline: the write-behind flush,
   * so Redis cost grows with the number of symbols, not the tick rate. Each key's write is atomic.
   */
  async writeLatest(batch: CacheWindow): Promise<void> {
    const write = windowWriter(batch);
    if (write) await this.exec(write);
  }

  async getIndicators(symbol: string): Promise<IndicatorSnapshot | null> {
    const hash = await this.run((r) => r.hgetall(keys.stockIndicators(assertSymbol(symbol))));
    if (isEmpty(hash)) return null;
    const { timestamp, ...values } = numbers(hash);
    return { values, timestamp: timestamp ?? 0 };
  }

  // --- sentiment ---------------------------------------------------------------------------------

  async setSentiment(symbol: string, sentiment: Sentiment): Promise<void> {
    const key = keys.stockSentiment(assertSymbol(symbol));
    await this.setJson(key, parseOrThrow(sentimentSchema, sentiment, "sentiment"), TTL.sentiment);
  }

  async getSentiment(symbol: string): Promise<Sentiment | null> {
    return this.getJson<Sentiment>(keys.stockSentiment(assertSymbol(symbol)));
  }

  // --- watchlist ---------------------------------------------------------------------------------

  /** Replaces the watchlist atomically, keeping the given order. */
  async setWatchlist(symbols: readonly string[]): Promise<void> {
    const list = validateWatchlist(symbols, "watchlist");
    await this.exec((tx) => putWatchlist(tx, list));
  }

  async getWatchlist(): Promise<string[]> {
    return this.run((r) => r.lrange(keys.watchlist(), 0, -1));
  }

  // --- ranked candidates -------------------------------------------------------------------------

  /** Replaces the ranked set and its details atomically; old members disappear. */
  async setRankedCandidates(candidates: readonly Candidate[]): Promise<void> {
    const list = validateCandidates(candidates, "candidates");
    await this.exec((tx) => putRankedCandidates(tx, list));
  }

  /** Highest score first. */
  async getRankedCandidates(limit?: number): Promise<Candidate[]> {
    const stop = limit === undefined ? -1 : parseOrThrow(z.number().int().positive(), limit, "limit") - 1;
    // One transaction, so the ranking and the details come from the same replace.
    const [ranked, details] = (await this.exec((tx) =>
      tx.zrevrange(keys.candidatesRanked(), 0, stop, "WITHSCORES").hgetall(keys.candidatesDetails()),
    )) as [string[], Record<string, string>];
    const result: Candidate[] = [];
    for (let i = 0; i < ranked.length; i += 2) {
      const symbol = ranked[i] as string;
      const detail = details[symbol];
      if (detail === undefined) continue;
      result.push({ symbol, score: Number(ranked[i + 1]), ...JSON.parse(detail) });
    }
    return result;
  }

  // --- positions ---------------------------------------------------------------------------------

  /** Writes one position, refreshes its TTL and publishes the change. */
  async setPosition(strategyId: string, symbol: string, position: Position): Promise<"opened" | "updated"> {
    const write = validatePositionWrite({ strategyId, symbol, position });
    // One script call is atomic by itself: no MULTI around it (a fill's write, one per fill).
    const kind = await this.run((r) => r.eval(...upsertPositionCall(write)));
    return kind as "opened" | "updated";
  }

  /** Writes many positions in one pipeline; each write is atomic and published like setPosition. */
  async setPositions(batch: readonly PositionWrite[]): Promise<void> {
    const writes = batch.map((w, i) => validatePositionWrite(w, `positions.${i}`));
    if (writes.length === 0) return;
    await this.exec((tx) => {
      for (const w of writes) upsertPosition(tx, w);
    }, false);
  }

  async getPosition(strategyId: string, symbol: string): Promise<Position | null> {
    const id = assertId(strategyId, "strategyId");
    const json = await this.run((r) => r.hget(keys.activePositions(assertSymbol(symbol)), id));
    return json === null ? null : (JSON.parse(json) as Position);
  }

  /** Removes a position and publishes "closed". Returns false when there was nothing to remove. */
  async deletePosition(strategyId: string, symbol: string): Promise<boolean> {
    const id = assertId(strategyId, "strategyId");
    const sym = assertSymbol(symbol);
    const message = JSON.stringify({ type: "closed", strategy_id: id, symbol: sym });
    const removed = await this.run((r) =>
      r.eval(DELETE_POSITION, 1, keys.activePositions(sym), id, channels.positionChanges, message),
    );
    return removed === 1;
  }

  /**
   * Every open position, ordered by symbol then strategy. SCAN keeps the server responsive with many
   * symbols; `scanCount` is the per-iteration hint.
   */
  async getAllPositions(scanCount = 100): Promise<StoredPosition[]> {
    const count = parseOrThrow(z.number().int().positive(), scanCount, "scanCount");
    // SCAN may return a key more than once; the set keeps one.
    const found = new Set<string>();
    let cursor = "0";
    do {
      const [next, batch] = await this.run((r) =>
        r.scan(cursor, "MATCH", patterns.activePositions, "COUNT", count),
      );
      for (const key of batch) found.add(key);
      cursor = next;
    } while (cursor !== "0");
    if (found.size === 0) return [];

    const positionKeys = [...found].sort();
    const hashes = (await this.exec((tx) => {
      for (const key of positionKeys) tx.hgetall(key);
    }, false)) as Record<string, string>[];
    return positionKeys.flatMap((key, i) => {
      const symbol = symbolFromActivePositionsKey(key);
      return Object.entries(hashes[i] ?? {})
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([strategy_id, json]) => ({ strategy_id, symbol, ...(JSON.parse(json) as Position) }));
    });
  }

  /**
   * Delivers every position change to `handler` over a dedicated connection (a subscribed
   * connection cannot run other commands). Resolves once subscribed; the returned function
   * unsubscribes and closes that connection.
   */
  async subscribePositionChanges(handler: (change: PositionChange) => void): Promise<() => Promise<void>> {
    const sub = this.redis.duplicate({ lazyConnect: true });
    sub.on("error", (err: Error) => this.log?.debug({ reason: err.message }, "redis subscriber error"));
    sub.on("message", (_channel: string, message: string) => {
      try {
        handler(JSON.parse(message) as PositionChange);
      } catch (err) {
        this.log?.error({ reason: errorMessage(err) }, "position change handler failed");
      }
    });
    try {
      await sub.connect();
      await sub.subscribe(channels.positionChanges);
    } catch (err) {
      sub.disconnect();
      throw unavailable(err);
    }
    this.subscribers.add(sub);
    return async () => {
      if (this.subscribers.delete(sub)) await closeClient(sub);
    };
  }

  // --- position monitoring -----------------------------------------------------------------------

  async setPositionMonitoring(symbol: string, snapshot: JsonObject): Promise<void> {
    const key = keys.positionMonitoring(assertSymbol(symbol));
    await this.setJson(key, parseOrThrow(jsonObjectSchema, snapshot, "monitoring"), TTL.positionMonitoring);
  }

  async getPositionMonitoring(symbol: string): Promise<JsonObject | null> {
    return this.getJson<JsonObject>(keys.positionMonitoring(assertSymbol(symbol)));
  }

  // --- signals -----------------------------------------------------------------------------------

  async setSignal(type: string, symbol: string, signal: Signal): Promise<void> {
    const key = keys.signal(parseOrThrow(signalType, type, "signalType"), assertSymbol(symbol));
    await this.setJson(key, parseOrThrow(signalSchema, signal, "signal"), TTL.signal);
  }

  async getSignal(type: string, symbol: string): Promise<Signal | null> {
    return this.getJson<Signal>(
      keys.signal(parseOrThrow(signalType, type, "signalType"), assertSymbol(symbol)),
    );
  }

  // --- trailing stop state -----------------------------------------------------------------------

  async setStopState(tradeId: string, state: StopState): Promise<void> {
    const key = keys.stopState(assertId(tradeId, "tradeId"));
    const fields = parseOrThrow(stopStateSchema, state, "stopState");
    await this.exec((tx) => tx.hset(key, fields).expire(key, TTL.stopState));
  }

  async getStopState(tradeId: string): Promise<StopState | null> {
    const hash = await this.run((r) => r.hgetall(keys.stopState(assertId(tradeId, "tradeId"))));
    if (isEmpty(hash)) return null;
    return {
      current_sl: Number(hash.current_sl),
      highest_price: Number(hash.highest_price),
      sl_type: hash.sl_type ?? "",
      updated_at: Number(hash.updated_at),
    };
  }

  async deleteStopState(tradeId: string): Promise<boolean> {
    const key = keys.stopState(assertId(tradeId, "tradeId"));
    return (await this.run((r) => r.del(key))) === 1;
  }

  // --- strategy stats (atomic counters) ----------------------------------------------------------

  /** Returns the new count. */
  async incrementSignalCount(strategyId: string, action: string): Promise<number> {
    const key = keys.strategyStats(assertId(strategyId, "strategyId"));
    const field = `signals:${parseOrThrow(fieldName, action, "action")}`;
    return this.run((r) => r.hincrby(key, field, 1));
  }

  /** Counts a closed trade: a win when pnl > 0, a loss when pnl < 0, neither at breakeven. */
  async recordTradeResult(strategyId: string, pnl: number): Promise<void> {
    const key = keys.strategyStats(assertId(strategyId, "strategyId"));
    const amount = parseOrThrow(z.number(), pnl, "pnl");
    await this.exec((tx) => {
      tx.hincrby(key, "trades", 1);
      if (amount > 0) tx.hincrby(key, "wins", 1);
      if (amount < 0) tx.hincrby(key, "losses", 1);
      tx.hincrbyfloat(key, "pnl", amount);
    });
  }

  /** All zeros for a strategy that has recorded nothing. */
  async getStrategyCounters(strategyId: string): Promise<StrategyCounters> {
    const hash = await this.run((r) => r.hgetall(keys.strategyStats(assertId(strategyId, "strategyId"))));
    const stats: StrategyCounters = { signals: {}, trades: 0, wins: 0, losses: 0, pnl: 0 };
    for (const [field, value] of Object.entries(numbers(hash))) {
      if (field.startsWith("signals:")) stats.signals[field.slice("signals:".length)] = value;
      else if (field === "trades" || field === "wins" || field === "losses" || field === "pnl") {
        stats[field] = value;
      }
    }
    return stats;
  }

  // --- daily aggregates --------------------------------------------------------------------------

  /** Adds `by` to a metric of the UTC day of `date`; returns the new total. */
  async incrementDaily(metric: string, by: number, date: Date = new Date()): Promise<number> {
    const field = parseOrThrow(fieldName, metric, "metric");
    const amount = parseOrThrow(z.number(), by, "by");
    const key = keys.dailyStats(dayOf(date));
    const [total] = await this.exec((tx) => tx.hincrbyfloat(key, field, amount).expire(key, TTL.dailyStats));
    return Number(total);
  }

  async getDailyStats(date: Date = new Date()): Promise<Record<string, number>> {
    const key = keys.dailyStats(dayOf(date));
    return numbers(await this.run((r) => r.hgetall(key)));
  }

  // --- system state, performance, market context -------------------------------------------------

  /** Updates the given fields; fields not named keep their values. */
  async setSystemState(state: FlatRecord): Promise<void> {
    await this.setFlat(keys.systemState(), parseOrThrow(flatRecordSchema, state, "systemState"));
  }

  async getSystemState(): Promise<FlatRecord> {
    return this.getFlat(keys.systemState());
  }

  /** Updates the given fields; fields not named keep their values. */
  async setPerformance(metrics: FlatRecord): Promise<void> {
    await this.setFlat(keys.performance(), parseOrThrow(flatRecordSchema, metrics, "performance"));
  }

  async getPerformance(): Promise<FlatRecord> {
    return this.getFlat(keys.performance());
  }

  async setMarketContext(context: JsonObject): Promise<void> {
    const value = parseOrThrow(jsonObjectSchema, context, "marketContext");
    await this.setJson(keys.marketContext(), value, TTL.marketContext);
  }

  async getMarketContext(): Promise<JsonObject | null> {
    return this.getJson<JsonObject>(keys.marketContext());
  }

  // --- plumbing ----------------------------------------------------------------------------------

  private async setJson(key: string, value: unknown, ttlSeconds: number): Promise<void> {
    await this.run((r) => r.set(key, JSON.stringify(value), "EX", ttlSeconds));
  }

  private async getJson<T>(key: string): Promise<T | null> {
    const json = await this.run((r) => r.get(key));
    return json === null ? null : (JSON.parse(json) as T);
  }

  private async setFlat(key: string, record: FlatRecord): Promise<void> {
    const entries = Object.entries(record);
    if (entries.length === 0) return;
    const fields = Object.fromEntries(entries.map(([field, value]) => [field, JSON.stringify(value)]));
    await this.run((r) => r.hset(key, fields));
  }

  private async getFlat(key: string): Promise<FlatRecord> {
    const hash = await this.run((r) => r.hgetall(key));
    return Object.fromEntries(Object.entries(hash).map(([field, json]) => [field, JSON.parse(json)]));
  }

  /** Runs Redis calls, turning any client failure into a StoreUnavailableError. */
  private async run<T>(op: (redis: Redis) => Promise<T>): Promise<T> {
    try {
      return await op(this.redis);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /** Runs a MULTI (or, with `atomic` false, a plain pipeline); returns the replies or throws the first error. */
  private exec(build: (tx: ChainableCommander) => void, atomic = true): Promise<unknown[]> {
    return this.run(async (redis) => {
      const batch = atomic ? redis.multi() : redis.pipeline();
      build(batch);
      const replies = await batch.exec();
      if (replies === null) throw new Error("transaction aborted");
      return replies.map(([err, reply]) => {
        if (err) throw err;
        return reply;
      });
    });
  }

  private emitState(connected: boolean): void {
    for (const listener of this.listeners) {
      try {
        listener(connected);
      } catch (err) {
        this.log?.error({ reason: errorMessage(err) }, "redis state listener failed");
      }
    }
  }
}

function numbers(hash: Record<string, string>): Record<string, number> {
  return Object.fromEntries(Object.entries(hash).map(([field, value]) => [field, Number(value)]));
}

function isEmpty(hash: Record<string, string>): boolean {
  return Object.keys(hash).length === 0;
}

/** host:port only: the URL may carry a password. */
function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || "6379"}`;
  } catch {
    return "(unparseable url)";
  }
}

async function closeClient(client: Redis): Promise<void> {
  if (client.status === "ready") {
    try {
      await client.quit();
      return;
    } catch {
      // fall through to a hard disconnect
    }
  }
  client.disconnect();
}

function unavailable(err: unknown): StoreUnavailableError {
  return new StoreUnavailableError("redis", errorMessage(err), { cause: err });
}
