import { performance } from "node:perf_hooks";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { EventBus } from "../../src/events/event-bus.js";
import { createEventBus } from "../../src/events/factory.js";
import { KafkaEventBus, type KafkaEventBusOptions } from "../../src/events/kafka.js";
import {
  ALL_TOPICS,
  type MessageFor,
  messageKey,
  type StreamMessage,
  TOPICS,
  type Topic,
  toEventMessage,
  toSignalMessage,
  toTickMessage,
  toTradeMessage,
} from "../../src/schema/events.js";
import { skipWithout } from "../helpers/backend.js";
import { total } from "../helpers/event-bus.js";
import { KafkaMock } from "../helpers/kafka-mock.js";
import { freePort } from "../helpers/redis-server.js";
import { until } from "../helpers/wait.js";

const skip = skipWithout("kcat", "Kafka event bus tests (librdkafka mock cluster)");

const NOW = 1_746_778_530_000;
const SYMBOLS = ["ABB", "INFY", "TCS"] as const;

/** How long to wait for the mock cluster when a test names no other time. */
const WAIT_MS = 10_000;

interface Received {
  topic: string;
  partition: number;
  key: string | null;
  type: string | undefined;
  message: StreamMessage;
}

describe.skipIf(skip)("KafkaEventBus against librdkafka's mock cluster", () => {
  let mock: KafkaMock;
  const buses: EventBus[] = [];
  const mocks: KafkaMock[] = [];

  const open = (brokers: readonly string[], options: Partial<KafkaEventBusOptions> = {}): KafkaEventBus => {
    const bus = KafkaEventBus.create({ brokers, flushIntervalMs: 10, ...options });
    buses.push(bus);
    return bus;
  };

  beforeAll(async () => {
    mock = await KafkaMock.start();
    mocks.push(mock);
  });

  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close(300)));
  });

  afterAll(async () => {
    await Promise.all(mocks.map((m) => m.stop()));
  });

  it("delivers every topic keyed by symbol, in publish order per key, through the idempotent producer", async () => {
    const bus = createEventBus(
      { kafkaBrokers: [...mock.bootstrap], redisUrl: "redis://127.0.0.1:1" },
      undefined,
      {
        flushIntervalMs: 10,
        batchSize: 25,
        kafka: { compression: "gzip" },
      },
    );
    buses.push(bus);
    expect(bus.backend).toBe("kafka");

    const published: { topic: Topic; message: StreamMessage }[] = [];
    const publish = <T extends Topic>(topic: T, message: MessageFor<T>) => {
      bus.publish(topic, message);
      published.push({ topic, message });
    };
    for (let i = 0; i < 40; i++) {
      for (const symbol of SYMBOLS) {
        const close = 100 + i;
        publish(
          TOPICS.ticks,
          toTickMessage({
            symbol,
            timestamp: NOW + i * 1_000,
            open: close,
            high: close + 1,
            low: close - 1,
            close,
            volume: i,
            source: "simulator",
          }),
        );
      }
      if (i % 10 === 9) {
        const symbol = SYMBOLS[i % 3] as string;
        publish(
          TOPICS.signals,
          toSignalMessage({
            strategy_id: "rsi_revert",
            symbol,
            kind: "entry",
            action: "BUY",
            price: 100 + i,
            timestamp: NOW + i * 1_000,
            reason: `rsi crossed 30 (${i})`,
            indicators: { rsi: 29.5 },
            confidence: 0.7,
          }),
        );
        publish(
          TOPICS.trades,
          toTradeMessage({
            trade_id: `T-${i}`,
            strategy_id: "rsi_revert",
            symbol,
            action: "BUY",
            price: 100.1 + i,
            quantity: 3,
            fees: 0.2,
            timestamp: NOW + i * 1_000 + 1,
          }),
        );
      }
    }
    publish(
      TOPICS.events,
      toEventMessage({ level: "info", name: "engine.started", message: "up", timestamp: NOW }),
    );
    publish(
      TOPICS.events,
      toEventMessage({
        level: "warn",
        name: "position.stop",
        message: "stop hit",
        fields: { symbol: "TCS" },
      }),
    );

    await until(() => total(bus.stats().published) === published.length, WAIT_MS);
    const stats = bus.stats();
    expect(stats).toMatchObject({ backend: "kafka", up: true, buffered: 0, errors: 0 });
    expect(total(stats.dropped)).toBe(0);
    expect(stats.published).toEqual({
      [TOPICS.ticks]: 120,
      [TOPICS.signals]: 4,
      [TOPICS.trades]: 4,
      [TOPICS.events]: 2,
    });

    // Read everything back with a consumer group, as another service would.
    const kafka = new Kafka({
      clientId: "velox-test",
      brokers: [...mock.bootstrap],
      logLevel: logLevel.NOTHING,
    });
    const consumer = kafka.consumer({ groupId: `velox-test-${Date.now()}`, maxWaitTimeInMs: 100 });
    const received: Received[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [...ALL_TOPICS], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ topic, partition, message }) => {
          received.push({
            topic,
            partition,
            key: message.key?.toString() ?? null,
            type: message.headers?.type?.toString(),
            message: JSON.parse(message.value?.toString() ?? "null"),
          });
        },
      });
      await until(() => received.length >= published.length, 20_000);
    } finally {
      await consumer.disconnect();
    }

    expect(received).toHaveLength(published.length);
    for (const r of received) {
      expect(r.type).toBe(r.message.type);
      const expectedKey = r.message.type === "event" ? (r.message.fields?.symbol ?? null) : r.message.symbol;
      expect(r.key).toBe(expectedKey);
    }
    // Per topic and key: exactly what was published, in the order it was published, on one partition.
    const groups = (items: { topic: string; key: string | null }[]) =>
      new Set(items.map((i) => `${i.topic}|${i.key ?? ""}`));
    for (const group of groups(received.map((r) => ({ topic: r.topic, key: r.key })))) {
      const got = received.filter((r) => `${r.topic}|${r.key ?? ""}` === group);
      const want = published
        .filter((p) => `${p.topic}|${messageKey(p.message) ?? ""}` === group)
        .map((p) => p.message);
      if (got[0]?.key !== null) expect(new Set(got.map((r) => r.partition)).size).toBe(1);
      expect(got.map((r) => r.message)).toEqual(want);
    }
    expect(groups(received)).toEqual(
      groups(published.map((p) => ({ topic: p.topic, key: messageKey(p.message) }))),
    );
  });

  it("with the brokers gone, publish returns at once, the buffer stays bounded and drops are counted exactly", async () => {
    const doomed = await KafkaMock.start();
    mocks.push(doomed);
    const bus = open(doomed.bootstrap, { maxBuffered: 50, batchSize: 10 });
    bus.publish(TOPICS.trades, tradeMessage(0));
    await until(() => bus.stats().published[TOPICS.trades] === 1, WAIT_MS);
    expect(bus.stats().up).toBe(true);

    await doomed.stop();
    let slowest = 0;
    const started = performance.now();
    for (let seq = 1; seq <= 80; seq++) {
      const t0 = performance.now();
      bus.publish(TOPICS.trades, tradeMessage(seq));
      slowest = Math.max(slowest, performance.now() - t0);
    }
    // A publish that waited on the broker would take a connect timeout (1 s); these bounds only
    // leave room for a loaded machine.
    expect(performance.now() - started).toBeLessThan(250);
    expect(slowest).toBeLessThan(50);
    let stats = bus.stats();
    expect(stats.buffered).toBe(50);
    expect(stats.dropped[TOPICS.trades]).toBe(30);

    await until(() => bus.stats().errors > 0 && !bus.stats().up, WAIT_MS);
    stats = bus.stats();
    expect(stats.buffered).toBe(50);
    expect(stats.dropped[TOPICS.trades]).toBe(30);
    expect(stats.published[TOPICS.trades]).toBe(1);
    expect(stats.lagMs).toBeGreaterThan(0);

    const closing = performance.now();
    await bus.close(300);
    expect(performance.now() - closing).toBeLessThan(3_000);
    stats = bus.stats();
    expect(stats.buffered).toBe(0);
    expect(stats.dropped[TOPICS.trades]).toBe(80);
  });

  it("starts without a reachable broker: nothing blocks, messages wait in the buffer", async () => {
    const bus = open([`127.0.0.1:${await freePort()}`], { maxBuffered: 100, batchSize: 10 });
    const started = performance.now();
    for (let seq = 1; seq <= 25; seq++) bus.publish(TOPICS.trades, tradeMessage(seq));
    expect(performance.now() - started).toBeLessThan(250);
    await until(() => bus.stats().errors > 0, WAIT_MS);
    expect(bus.stats()).toMatchObject({ up: false, buffered: 25 });
    expect(bus.stats().lastError).toBeTruthy();
  });

  it("leaves ticks out when configured", async () => {
    const bus = open(mock.bootstrap, { includeTicks: false });
    bus.publish(
      TOPICS.ticks,
      toTickMessage({
        symbol: "ABB",
        timestamp: NOW,
        open: 1,
        high: 1,
        low: 1,
        close: 1,
        volume: 1,
        source: "simulator",
      }),
    );
    bus.publish(TOPICS.trades, tradeMessage(1));
    await until(() => bus.stats().published[TOPICS.trades] === 1, WAIT_MS);
    expect(bus.stats().ignored[TOPICS.ticks]).toBe(1);
    expect(bus.stats().published[TOPICS.ticks]).toBe(0);
  });
});

function tradeMessage(seq: number) {
  return toTradeMessage({
    trade_id: `T-${seq}`,
    strategy_id: "s",
    symbol: "ABB",
    action: "BUY",
    price: 100,
    quantity: 1,
    fees: 0,
    timestamp: NOW + seq,
  });
}
