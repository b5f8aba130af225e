import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Fill, Signal } from "../../src/domain/signal.js";
import type { Tick } from "../../src/domain/tick.js";
import type { EventBus } from "../../src/events/event-bus.js";
import { createEventBus } from "../../src/events/factory.js";
import { RedisStreamsEventBus, type RedisStreamsEventBusOptions } from "../../src/events/redis-streams.js";
import {
  TOPICS,
  type Topic,
  toEventMessage,
  toSignalMessage,
  toTickMessage,
  toTradeMessage,
} from "../../src/schema/events.js";
import { keys } from "../../src/schema/redis-keys.js";
import { skipWithout } from "../helpers/backend.js";
import { total } from "../helpers/event-bus.js";
import { RedisServer } from "../helpers/redis-server.js";
import { until } from "../helpers/wait.js";

const skip = skipWithout("redis-server", "Redis Streams event bus tests");

const NOW = 1_746_778_530_123;

const tick: Tick = {
  symbol: "ABB",
  timestamp: NOW,
  open: 919.5,
  high: 921,
  low: 919,
  close: 920.5,
  volume: 1250,
  bid: 920.45,
  source: "simulator",
};
const signal: Signal = {
  strategy_id: "supertrend_simple",
  symbol: "ABB",
  kind: "entry",
  action: "BUY",
  price: 920.5,
  timestamp: NOW,
  reason: "Supertrend turned bullish",
  indicators: { rsi: 61.2, atr: 4.1 },
  confidence: 0.8,
};
const fill: Fill = {
  trade_id: "T-1",
  strategy_id: "supertrend_simple",
  symbol: "ABB",
  action: "BUY",
  price: 920.6,
  quantity: 5,
  fees: 0.5,
  timestamp: NOW + 5,
};

/** The stream's entries as {type, data (parsed)}, oldest first. */
async function entries(redis: Redis, topic: Topic): Promise<{ type: string; data: unknown }[]> {
  const rows = await redis.xrange(keys.eventStream(topic), "-", "+");
  return rows.map(([, fields]) => {
    const f = Object.fromEntries(
      fields.reduce<[string, string][]>((acc, v, i, all) => {
        if (i % 2 === 0) acc.push([v, all[i + 1] as string]);
        return acc;
      }, []),
    );
    return { type: f.type as string, data: JSON.parse(f.data as string) };
  });
}

describe.skipIf(skip)("RedisStreamsEventBus against a real redis-server", () => {
  let server: RedisServer;
  let admin: Redis;
  const buses: EventBus[] = [];

  const open = (options: Partial<RedisStreamsEventBusOptions> = {}): RedisStreamsEventBus => {
    const bus = RedisStreamsEventBus.create({ url: server.url, flushIntervalMs: 10, ...options });
    buses.push(bus);
    return bus;
  };

  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    admin.on("error", () => {});
  });

  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close(500)));
    if (admin.status === "ready") await admin.flushall();
  });

  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });

  it("writes each topic's message as JSON to its own stream", async () => {
    const bus = open({ includeTicks: true });
    const messages = {
      tick: toTickMessage(tick),
      signal: toSignalMessage(signal),
      trade: toTradeMessage(fill),
      event: toEventMessage({
        level: "warn",
        name: "influx.down",
        message: "spooling points",
        fields: { spooled: 3 },
        timestamp: NOW,
      }),
    };
    bus.publish(TOPICS.ticks, messages.tick);
    bus.publish(TOPICS.signals, messages.signal);
    bus.publish(TOPICS.trades, messages.trade);
    bus.publish(TOPICS.events, messages.event);
    await until(() => total(bus.stats().published) === 4);

    expect(await entries(admin, TOPICS.ticks)).toEqual([{ type: "tick", data: messages.tick }]);
    expect(await entries(admin, TOPICS.signals)).toEqual([{ type: "signal", data: messages.signal }]);
    expect(await entries(admin, TOPICS.trades)).toEqual([{ type: "trade", data: messages.trade }]);
    expect(await entries(admin, TOPICS.events)).toEqual([{ type: "event", data: messages.event }]);
    // The seed's shapes, spelled out once here.
    expect(messages.tick).toEqual({
      type: "tick",
      symbol: "ABB",
      price: 920.5,
      timestamp: "2025-05-09T08:15:30.123Z",
      volume: 1250,
      open: 919.5,
      high: 921,
      low: 919,
      close: 920.5,
      bid: 920.45,
      source: "simulator",
    });
    expect(messages.trade).toEqual({
      type: "trade",
      action: "BUY",
      symbol: "ABB",
      price: 920.6,
      quantity: 5,
      strategy_id: "supertrend_simple",
      timestamp: "2025-05-09T08:15:30.128Z",
      trade_id: "T-1",
      fees: 0.5,
    });
    const stats = bus.stats();
    expect(stats).toMatchObject({ backend: "redis-streams", up: true, buffered: 0, errors: 0, lagMs: 0 });
    expect(total(stats.dropped)).toBe(0);
  });

  it("trims each stream to about MAXLEN entries", async () => {
    const bus = open({ maxLen: 100, batchSize: 200 });
    for (let seq = 1; seq <= 2_000; seq++) {
      bus.publish(TOPICS.events, toEventMessage({ level: "info", name: "t", message: "m", fields: { seq } }));
    }
    await until(() => bus.stats().published[TOPICS.events] === 2_000);
    const length = await admin.xlen(keys.eventStream(TOPICS.events));
    // `~` trims whole radix-tree nodes (100 entries each by default): never below the bound, at most a node over.
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThanOrEqual(200);
    const [last] = await admin.xrevrange(keys.eventStream(TOPICS.events), "+", "-", "COUNT", 1);
    expect(JSON.parse(last?.[1][3] as string).fields.seq).toBe(2_000);
  });

  it("leaves ticks out by default and counts them as ignored", async () => {
    const bus = open();
    for (let i = 0; i < 50; i++) bus.publish(TOPICS.ticks, toTickMessage({ ...tick, timestamp: NOW + i }));
    bus.publish(TOPICS.signals, toSignalMessage(signal));
    await until(() => bus.stats().published[TOPICS.signals] === 1);
    expect(await admin.exists(keys.eventStream(TOPICS.ticks))).toBe(0);
    const stats = bus.stats();
    expect(stats.ignored[TOPICS.ticks]).toBe(50);
    expect(stats.published[TOPICS.ticks]).toBe(0);
    expect(stats.dropped[TOPICS.ticks]).toBe(0);
  });

  it("createEventBus picks Redis Streams when only a Redis URL is configured", async () => {
    const bus = createEventBus({ kafkaBrokers: [], redisUrl: server.url }, undefined, {
      flushIntervalMs: 10,
    });
    buses.push(bus);
    expect(bus.backend).toBe("redis-streams");
    bus.publish(TOPICS.trades, toTradeMessage(fill, { pnl: 12.5 }));
    await until(() => bus.stats().published[TOPICS.trades] === 1);
    expect((await entries(admin, TOPICS.trades))[0]?.data).toMatchObject({ trade_id: "T-1", pnl: 12.5 });
    expect(createEventBus({ kafkaBrokers: [], redisUrl: undefined }).backend).toBe("none");
  });

  it("buffers while Redis is down without blocking, drops the oldest past the bound, delivers the rest in order on return", async () => {
    const bus = open({ maxBuffered: 50, batchSize: 10 });
    bus.publish(
      TOPICS.events,
      toEventMessage({ level: "info", name: "t", message: "before", fields: { seq: 0 } }),
    );
    await until(() => bus.stats().published[TOPICS.events] === 1);

    await server.kill();
    await until(() => !bus.stats().up);

    const slowest = { ms: 0 };
    const started = performance.now();
    for (let seq = 1; seq <= 80; seq++) {
      const t0 = performance.now();
      bus.publish(
        TOPICS.events,
        toEventMessage({ level: "info", name: "t", message: "during", fields: { seq } }),
      );
      slowest.ms = Math.max(slowest.ms, performance.now() - t0);
      if (seq <= 50) expect(bus.stats().buffered).toBe(seq);
    }
    // A publish that waited on the broker would take a connect timeout (1 s); these bounds only
    // leave room for a loaded machine.
    expect(performance.now() - started).toBeLessThan(250);
    expect(slowest.ms).toBeLessThan(50);

    let stats = bus.stats();
    expect(stats.buffered).toBe(50);
    expect(stats.dropped[TOPICS.events]).toBe(30);
    expect(stats.published[TOPICS.events]).toBe(1);
    await new Promise((r) => setTimeout(r, 300));
    stats = bus.stats();
    expect(stats.errors).toBeGreaterThan(0);
    expect(stats.lagMs).toBeGreaterThanOrEqual(300);
    expect(stats.buffered).toBe(50);
    expect(stats.dropped[TOPICS.events]).toBe(30);

    // The server comes back empty (no persistence): the stream holds exactly what was kept.
    await server.launch();
    await until(() => bus.stats().buffered === 0, 10_000);
    stats = bus.stats();
    expect(stats.up).toBe(true);
    expect(stats.published[TOPICS.events]).toBe(51);
    expect(stats.dropped[TOPICS.events]).toBe(30);
    const seqs = (await entries(admin, TOPICS.events)).map(
      (e) => (e.data as { fields: { seq: number } }).fields.seq,
    );
    expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => 31 + i));
  });

  it("close() sends what is buffered; with Redis gone it gives up at the deadline and counts the rest", async () => {
    const bus = open({ flushIntervalMs: 1_000 });
    for (let seq = 1; seq <= 20; seq++) {
      bus.publish(TOPICS.events, toEventMessage({ level: "info", name: "t", message: "m", fields: { seq } }));
    }
    await bus.close();
    expect(bus.stats()).toMatchObject({ buffered: 0 });
    expect(bus.stats().published[TOPICS.events]).toBe(20);
    expect(await admin.xlen(keys.eventStream(TOPICS.events))).toBe(20);

    const doomed = open();
    await until(() => doomed.stats().up);
    await server.kill();
    await until(() => !doomed.stats().up);
    for (let seq = 1; seq <= 7; seq++) {
      doomed.publish(
        TOPICS.events,
        toEventMessage({ level: "info", name: "t", message: "m", fields: { seq } }),
      );
    }
    const started = Date.now();
    await doomed.close(300);
    expect(Date.now() - started).toBeLessThan(1_000);
    const stats = doomed.stats();
    expect(stats.buffered).toBe(0);
    expect(stats.dropped[TOPICS.events]).toBe(7);
    // Published after close: counted, not kept.
    doomed.publish(TOPICS.events, toEventMessage({ level: "info", name: "t", message: "late" }));
    expect(doomed.stats().dropped[TOPICS.events]).toBe(8);
    await server.launch();
  });
});
