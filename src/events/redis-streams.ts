import { Redis, ReplyError } from "ioredis";
import { ConfigError, errorMessage, StoreUnavailableError } from "../domain/errors.js";
import { TOPICS } from "../schema/events.js";
import { keys } from "../schema/redis-keys.js";
import { failFastRedisOptions } from "../storage/redis-options.js";
import {
  BufferedEventBus,
  type BufferedEventBusOptions,
  type BufferedMessage,
  type SendStatus,
} from "./event-bus.js";

export interface RedisStreamsEventBusOptions extends BufferedEventBusOptions {
  url: string;
  /**
   * Approximate length bound of each stream (`XADD … MAXLEN ~ N`): Redis trims whole nodes, so a
   * stream holds at least N and up to about N + 100 entries. Default 10,000.
   */
  maxLen?: number;
  /**
   * Whether ticks go to their stream. Default false: ticks arrive at market rate and would flood
   * Redis (the latest tick per symbol is in the hot cache already, the history in InfluxDB).
   * Ticks not sent are counted as `ignored`.
   */
  includeTicks?: boolean;
  /** How long one XADD may wait for its reply. Default 1,000 ms. */
  commandTimeoutMs?: number;
}

/** Server replies that mean "not now" rather than "never": those messages are retried. */
const TRANSIENT_REPLY = /^(OOM|LOADING|BUSY|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN|NOREPLICAS)\b/;

/**
 * The built-in event stream: one Redis stream per topic (key `keys.eventStream(topic)`), each
 * entry `type` + `data` (the message JSON). A flush sends its batch as one pipeline. The bus has
 * its own connection, fails fast while Redis is down and keeps messages buffered (bounded) until
 * it is back. Delivery is at least once: an XADD whose reply was lost is sent again.
 */
export class RedisStreamsEventBus extends BufferedEventBus {
  readonly backend = "redis-streams" as const;
  private readonly redis: Redis;
  private readonly maxLen: string;
  private wasReady = false;
  /** An outage has been logged and its end has not. */
  private downReported = false;

  private constructor(options: RedisStreamsEventBusOptions) {
    const maxLen = options.maxLen ?? 10_000;
    if (!Number.isInteger(maxLen) || maxLen < 1) {
      throw new ConfigError("maxLen", "expected a whole number >= 1");
    }
    super({
      ...options,
      excludeTopics: [
        ...(options.excludeTopics ?? []),
        ...(options.includeTicks === true ? [] : [TOPICS.ticks]),
      ],
    });
    this.maxLen = String(maxLen);
    // Fail fast while disconnected instead of queueing: the bus's own buffer is the queue.
    this.redis = new Redis(options.url, failFastRedisOptions(options.commandTimeoutMs ?? 1_000));
    this.redis.on("ready", () => {
      if (this.wasReady) return;
      this.wasReady = true;
      this.downReported = false;
      this.log?.info({ buffered: this.buffered }, "event stream connected to redis");
      this.wake();
    });
    this.redis.on("close", () => {
      if (!this.wasReady) return;
      this.wasReady = false;
      if (this.isStopped) return;
      this.downReported = true;
      this.log?.warn({ buffered: this.buffered }, "event stream lost redis; buffering");
    });
    // Without a listener ioredis prints every failed reconnect attempt.
    this.redis.on("error", (err: Error) =>
      this.log?.debug({ reason: err.message }, "redis connection error"),
    );
  }

  /** Returns at once and connects in the background; messages are buffered until Redis answers. */
  static create(options: RedisStreamsEventBusOptions): RedisStreamsEventBus {
    const bus = new RedisStreamsEventBus(options);
    // A failed first attempt is retried by retryStrategy like any later loss.
    bus.redis.connect().catch(() => {});
    return bus;
  }

  protected isUp(): boolean {
    return this.redis.status === "ready";
  }

  protected async send(batch: readonly BufferedMessage[]): Promise<SendStatus[]> {
    if (this.redis.status !== "ready") {
      if (!this.downReported) {
        // Redis was never reached since start: say so once.
        this.downReported = true;
        this.log?.warn({ status: this.redis.status }, "event stream cannot reach redis; buffering");
      }
      throw new StoreUnavailableError("redis", `not connected (${this.redis.status})`);
    }
    const pipeline = this.redis.pipeline();
    for (const m of batch) {
      pipeline.xadd(
        keys.eventStream(m.topic),
        "MAXLEN",
        "~",
        this.maxLen,
        "*",
        "type",
        m.type,
        "data",
        m.value,
      );
    }
    const results = await pipeline.exec();
    if (results === null) throw new StoreUnavailableError("redis", "pipeline discarded");
    return batch.map((_, i) => {
      const err = results[i]?.[0];
      if (!err) return "sent";
      // A reply error is Redis refusing this command (e.g. WRONGTYPE): sending it again would fail
      // the same way. Anything else (connection closed, timeout) is worth another try.
      if (err instanceof ReplyError && !TRANSIENT_REPLY.test(err.message)) {
        this.log?.error({ reason: err.message, topic: batch[i]?.topic }, "redis rejected an event message");
        return "rejected";
      }
      return "retry";
    });
  }

  protected async disconnect(): Promise<void> {
    if (this.redis.status === "ready") {
      try {
        await this.redis.quit();
        return;
      } catch (err) {
        this.log?.debug({ reason: errorMessage(err) }, "redis quit failed");
      }
    }
    this.redis.disconnect();
  }
}
