import type { Fill, Signal } from "../domain/signal.js";
import type { Tick } from "../domain/tick.js";
import type { Trade, TradeAction } from "../domain/trade.js";

/**
 * The event stream's topics and message shapes (seed 001), defined once. The Kafka bus and the
 * Redis Streams bus publish exactly these JSON documents; consumers of either can share a parser.
 *
 * Every `timestamp` is an ISO 8601 string in UTC with milliseconds (`2020-09-15T09:15:30.000Z`):
 * the seed's examples carry no zone, which is ambiguous, so the zone is always spelled out.
 */

/** Topic names (Kafka topics; the Redis stream keys are derived from them in redis-keys.ts). */
export const TOPICS = {
  ticks: "velox-ticks",
  signals: "velox-signals",
  trades: "velox-trades",
  events: "velox-events",
} as const;

export type TopicName = keyof typeof TOPICS;
export type Topic = (typeof TOPICS)[TopicName];
export const ALL_TOPICS: readonly Topic[] = Object.values(TOPICS);

/** Every tick, as it arrived. `price` is the close of the bar (the traded price). */
export interface TickMessage {
  type: "tick";
  symbol: string;
  price: number;
  timestamp: string;
  volume: number;
  open: number;
  high: number;
  low: number;
  close: number;
  bid?: number;
  ask?: number;
  source: string;
}

/** A strategy's decision, with its evidence. */
export interface SignalMessage {
  type: "signal";
  strategy_id: string;
  /** Whether the signal opens (entry) or closes (exit) a position. */
  kind: "entry" | "exit";
  action: TradeAction;
  symbol: string;
  price: number;
  timestamp: string;
  reason: string;
  /** 0–1. */
  confidence: number;
  indicators: Record<string, number>;
}

/** An executed (paper) order. `pnl` is present only on the order that closes a trade. */
export interface TradeMessage {
  type: "trade";
  action: TradeAction;
  symbol: string;
  price: number;
  quantity: number;
  strategy_id: string;
  timestamp: string;
  trade_id: string;
  fees: number;
  pnl?: number;
}

export type EventLevel = "debug" | "info" | "warn" | "error";
export type EventFieldValue = string | number | boolean | null;

/** A system event (start, stop, a store going down or coming back, …). */
export interface SystemEventMessage {
  type: "event";
  level: EventLevel;
  /** A short dotted identifier, e.g. `engine.started`, `redis.down`. */
  name: string;
  message: string;
  timestamp: string;
  fields?: Record<string, EventFieldValue>;
}

export type StreamMessage = TickMessage | SignalMessage | TradeMessage | SystemEventMessage;
export type MessageType = StreamMessage["type"];

/** Which message type travels on which topic. */
export interface TopicMessages {
  "velox-ticks": TickMessage;
  "velox-signals": SignalMessage;
  "velox-trades": TradeMessage;
  "velox-events": SystemEventMessage;
}
export type MessageFor<T extends Topic> = TopicMessages[T];

const TOPIC_OF_TYPE: Record<MessageType, Topic> = {
  tick: TOPICS.ticks,
  signal: TOPICS.signals,
  trade: TOPICS.trades,
  event: TOPICS.events,
};

/** The topic a message belongs on. */
export function topicOf(message: StreamMessage): Topic {
  return TOPIC_OF_TYPE[message.type];
}

/**
 * The message key (Kafka record key): the symbol, so every message of one symbol lands on one
 * partition and keeps its order. Events carry a key only when their fields name a symbol; other
 * events have no key, spread over the partitions and promise no order among themselves.
 */
export function messageKey(message: StreamMessage): string | null {
  if (message.type !== "event") return message.symbol;
  const symbol = message.fields?.symbol;
  return typeof symbol === "string" ? symbol : null;
}

/** Epoch milliseconds -> the ISO string every message carries. */
export function isoTime(epochMs: number): string {
  return new Date(epochMs).toISOString();
}

// --- builders from the domain types -------------------------------------------------------------

export function toTickMessage(tick: Tick): TickMessage {
  return {
    type: "tick",
    symbol: tick.symbol,
    price: tick.close,
    timestamp: isoTime(tick.timestamp),
    volume: tick.volume,
    open: tick.open,
    high: tick.high,
    low: tick.low,
    close: tick.close,
    ...(tick.bid === undefined ? {} : { bid: tick.bid }),
    ...(tick.ask === undefined ? {} : { ask: tick.ask }),
    source: tick.source,
  };
}

export function toSignalMessage(signal: Signal): SignalMessage {
  return {
    type: "signal",
    strategy_id: signal.strategy_id,
    kind: signal.kind,
    action: signal.action,
    symbol: signal.symbol,
    price: signal.price,
    timestamp: isoTime(signal.timestamp),
    reason: signal.reason,
    confidence: signal.confidence,
    indicators: { ...signal.indicators },
  };
}

/**
 * A trade message from a paper fill (pass `pnl` when the fill closes a trade), or from a journal
 * row: an open trade gives its entry order, a closed one its exit order with the realised pnl.
 */
export function toTradeMessage(source: Fill | Trade, options: { pnl?: number } = {}): TradeMessage {
  if (!isJournalTrade(source)) {
    return {
      type: "trade",
      action: source.action,
      symbol: source.symbol,
      price: source.price,
      quantity: source.quantity,
      strategy_id: source.strategy_id,
      timestamp: isoTime(source.timestamp),
      trade_id: source.trade_id,
      fees: source.fees,
      ...(options.pnl === undefined ? {} : { pnl: options.pnl }),
    };
  }
  if (source.status === "closed" && source.exit_price !== null && source.exit_time !== null) {
    // The exit order goes the other way: a long is closed by a SELL, a short by a BUY.
    const action = source.side === "long" ? "SELL" : "BUY";
    // Journal times are unix seconds.
    return journalTradeMessage(
      source,
      action,
      source.exit_price,
      source.exit_time,
      options.pnl ?? source.pnl,
    );
  }
  return journalTradeMessage(source, source.action, source.entry_price, source.entry_time, options.pnl);
}

/**
 * A journal row's trade message, every key written out (no spread followed by keys: on Node 20
 * that costs microseconds per message, docs/performance.md).
 */
function journalTradeMessage(
  source: Trade,
  action: Trade["action"],
  price: number,
  timeSeconds: number,
  pnl: number | null | undefined,
): TradeMessage {
  return {
    type: "trade",
    symbol: source.symbol,
    quantity: source.quantity,
    strategy_id: source.strategy_id,
    trade_id: source.trade_id,
    fees: source.fees,
    action,
    price,
    timestamp: isoTime(timeSeconds * 1000),
    ...(pnl === null || pnl === undefined ? {} : { pnl }),
  };
}

export interface SystemEvent {
  level: EventLevel;
  name: string;
  message: string;
  fields?: Record<string, EventFieldValue>;
  /** Epoch milliseconds; default now. */
  timestamp?: number;
}

export function toEventMessage(event: SystemEvent): SystemEventMessage {
  return {
    type: "event",
    level: event.level,
    name: event.name,
    message: event.message,
    timestamp: isoTime(event.timestamp ?? Date.now()),
    ...(event.fields === undefined ? {} : { fields: { ...event.fields } }),
  };
}

function isJournalTrade(source: Fill | Trade): source is Trade {
  return "entry_price" in source;
}
