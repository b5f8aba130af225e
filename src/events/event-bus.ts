import type { Logger } from "pino";
import { ConfigError, errorMessage } from "../domain/errors.js";
import { ALL_TOPICS, type MessageFor, type MessageType, messageKey, type Topic } from "../schema/events.js";

/**
 * The event stream as the engine sees it: `publish` is synchronous and never blocks or throws for
 * broker trouble. Messages wait in a bounded in-memory buffer and are sent in batches in the
 * background; when the buffer is full the oldest waiting message is dropped and counted, so an
 * outage costs memory up to a fixed bound and shows up in `stats()`, never in the trading path.
 */
export interface EventBus {
  readonly backend: EventBackend;
  /**
   * Enqueues one message; returns at once. The message may be given as a function that builds it,
   * called only if the message is going to be sent (a topic the bus ignores costs nothing).
   */
  publish<T extends Topic>(topic: T, message: MessageFor<T> | (() => MessageFor<T>)): void;
  stats(): EventBusStats;
  /**
   * Stops accepting messages, sends what it can until the deadline (default: the bus's
   * `closeTimeoutMs`), counts what is left as dropped, and disconnects. Idempotent. A batch still
   * awaiting its acknowledgement at the deadline is counted as dropped even if it lands later.
   */
  close(deadlineMs?: number): Promise<void>;
}

export type EventBackend = "kafka" | "redis-streams" | "none";
export type PerTopic = Record<Topic, number>;

export interface EventBusStats {
  backend: EventBackend;
  /** The backend is reachable and the last send attempt succeeded. Always false for "none". */
  up: boolean;
  /** Messages the backend acknowledged, per topic. */
  published: PerTopic;
  /**
   * Messages lost, per topic: evicted from a full buffer, rejected by the backend, published
   * after close, or still buffered when close gave up.
   */
  dropped: PerTopic;
  /** Messages not sent by configuration (e.g. ticks on Redis Streams), per topic: not a loss. */
  ignored: PerTopic;
  /** Messages waiting, including the batch being sent. */
  buffered: number;
  maxBuffered: number;
  /** Failed send attempts (each is retried, except rejected messages, which are dropped). */
  errors: number;
  /** Age in ms of the oldest buffered message; 0 when the buffer is empty. */
  lagMs: number;
  lastError: string | undefined;
}

export interface BufferedEventBusOptions {
  logger?: Logger | undefined;
  /** Buffer bound, in messages. Default 10,000. */
  maxBuffered?: number;
  /** Most messages per send. Default 500; at most `maxBuffered`. */
  batchSize?: number;
  /** Flush timer. Default 50 ms; a full batch is sent at once. */
  flushIntervalMs?: number;
  /** How long close() keeps sending. Default 5,000 ms. */
  closeTimeoutMs?: number;
  /** Backoff after a failed send: doubles from min to max. Default 100 ms .. 2,000 ms. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /** Topics that are not sent (counted as `ignored`). */
  excludeTopics?: readonly Topic[];
}

/** One message as it waits: serialised at publish time, so later changes by the caller do not leak in. */
export interface BufferedMessage {
  topic: Topic;
  type: MessageType;
  key: string | null;
  /** The message JSON. */
  value: string;
  /** Epoch ms when it was published. */
  enqueuedAt: number;
}

/**
 * What became of each message of a batch, by position: `sent` (acknowledged), `retry` (kept and
 * sent again, in order, with the same batch) or `rejected` (the backend refused it for good).
 */
export type SendStatus = "sent" | "retry" | "rejected";

export function zeroPerTopic(): PerTopic {
  return Object.fromEntries(ALL_TOPICS.map((t) => [t, 0])) as PerTopic;
}

/**
 * The buffer, counters, batching, retry and close logic that every backend shares. A backend
 * implements `send` (deliver one batch), `isUp` and `disconnect`, and calls `wake()` when its
 * connection comes back.
 *
 * Bound: `buffered` (waiting + in flight) never exceeds `maxBuffered`. A full buffer evicts the
 * oldest message that is not in flight; the batch in flight is retried as it is, so a resend
 * after an unacknowledged attempt carries the same messages (which is what lets Kafka's
 * idempotent producer drop a duplicate).
 */
export abstract class BufferedEventBus implements EventBus {
  abstract readonly backend: EventBackend;

  protected readonly log: Logger | undefined;
  readonly maxBuffered: number;
  private readonly batchSize: number;
  private readonly closeTimeoutMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly excluded: ReadonlySet<Topic>;

  private readonly queue: RingBuffer<BufferedMessage>;
  /** The batch being sent (or waiting to be re-sent); always older than everything in `queue`. */
  private inFlight: BufferedMessage[] = [];
  private readonly published = zeroPerTopic();
  private readonly dropped = zeroPerTopic();
  private readonly ignored = zeroPerTopic();
  private errors = 0;
  private lastError: string | undefined;

  private readonly timer: NodeJS.Timeout;
  private kicked = false;
  private flushing: Promise<void> | undefined;
  private retryAt = 0;
  private retryDelayMs: number;
  private closeRequested = false;
  private closed: Promise<void> | undefined;
  /** Set when close() gives up: a late answer to the last send must not touch the counters. */
  private abandoned = false;
  private lastDropLog = 0;
  private dropsSinceLog = 0;

  protected constructor(options: BufferedEventBusOptions) {
    this.log = options.logger;
    this.maxBuffered = positiveInt(options.maxBuffered ?? 10_000, "maxBuffered");
    this.batchSize = positiveInt(options.batchSize ?? 500, "batchSize");
    if (this.batchSize > this.maxBuffered) {
      throw new ConfigError("batchSize", `must not exceed maxBuffered (${this.maxBuffered})`);
    }
    const flushIntervalMs = positiveInt(options.flushIntervalMs ?? 50, "flushIntervalMs");
    this.closeTimeoutMs = nonNegativeInt(options.closeTimeoutMs ?? 5_000, "closeTimeoutMs");
    this.retryMinMs = positiveInt(options.retryMinMs ?? 100, "retryMinMs");
    this.retryMaxMs = Math.max(this.retryMinMs, positiveInt(options.retryMaxMs ?? 2_000, "retryMaxMs"));
    this.retryDelayMs = this.retryMinMs;
    this.excluded = new Set(options.excludeTopics ?? []);
    this.queue = new RingBuffer(this.maxBuffered);
    // Unref'd: a bus nobody closed must not keep the process alive.
    this.timer = setInterval(() => void this.flush(), flushIntervalMs);
    this.timer.unref();
  }

  /** Delivers one batch; resolves with one status per message, or throws if none was delivered. */
  protected abstract send(batch: readonly BufferedMessage[]): Promise<SendStatus[]>;
  protected abstract isUp(): boolean;
  /** Releases the connection; called once, at the end of close(). */
  protected abstract disconnect(): Promise<void>;

  publish<T extends Topic>(topic: T, message: MessageFor<T> | (() => MessageFor<T>)): void {
    if (!(topic in this.published)) {
      this.noteError(new Error(`unknown topic ${String(topic)}`));
      return;
    }
    if (this.excluded.has(topic)) {
      this.ignored[topic]++;
      return;
    }
    if (this.closeRequested) {
      this.drop(topic);
      return;
    }
    let value: string;
    let built: MessageFor<T>;
    try {
      built = typeof message === "function" ? message() : message;
      value = JSON.stringify(built);
    } catch (err) {
      this.noteError(err);
      this.drop(topic);
      return;
    }
    if (this.buffered >= this.maxBuffered) {
      const evicted = this.queue.shift();
      if (evicted === undefined) {
        // Everything waiting is the batch in flight (only when batchSize == maxBuffered): the new
        // message is the one that cannot be kept.
        this.drop(topic);
        return;
      }
      this.drop(evicted.topic);
    }
    this.queue.push({ topic, type: built.type, key: messageKey(built), value, enqueuedAt: Date.now() });
    if (this.queue.length >= this.batchSize) this.kick();
  }

  stats(): EventBusStats {
    const oldest = this.inFlight[0] ?? this.queue.peek();
    return {
      backend: this.backend,
      up: this.isUp(),
      published: { ...this.published },
      dropped: { ...this.dropped },
      ignored: { ...this.ignored },
      buffered: this.buffered,
      maxBuffered: this.maxBuffered,
      errors: this.errors,
      lagMs: oldest ? Math.max(0, Date.now() - oldest.enqueuedAt) : 0,
      lastError: this.lastError,
    };
  }

  close(deadlineMs: number = this.closeTimeoutMs): Promise<void> {
    this.closed ??= this.shutdown(deadlineMs);
    return this.closed;
  }

  get buffered(): number {
    return this.queue.length + this.inFlight.length;
  }

  /** True once close() has stopped sending (just before it disconnects). */
  protected get isStopped(): boolean {
    return this.abandoned;
  }

  /** Retry now: the backend's connection is back. */
  protected wake(): void {
    this.retryAt = 0;
    this.retryDelayMs = this.retryMinMs;
    this.kick();
  }

  private kick(): void {
    if (this.kicked) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      void this.flush();
    });
  }

  /** Sends batches until the buffer is empty, a send fails, or the bus is abandoned. */
  private flush(): Promise<void> {
    this.flushing ??= this.drain()
      .catch((err: unknown) => this.failed(err))
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  private async drain(): Promise<void> {
    while (!this.abandoned && Date.now() >= this.retryAt) {
      if (this.inFlight.length === 0) this.inFlight = this.queue.take(this.batchSize);
      const batch = this.inFlight;
      if (batch.length === 0) return;
      let statuses: SendStatus[];
      try {
        statuses = await this.send(batch);
        if (statuses.length !== batch.length) throw new Error("send must return one status per message");
      } catch (err) {
        if (this.abandoned) return;
        this.failed(err);
        return;
      }
      if (this.abandoned) return;
      const retry: BufferedMessage[] = [];
      batch.forEach((m, i) => {
        const status = statuses[i];
        if (status === "sent") this.published[m.topic]++;
        else if (status === "rejected") this.drop(m.topic);
        else retry.push(m);
      });
      this.inFlight = retry;
      if (statuses.includes("rejected")) this.noteError(new Error("backend rejected messages"));
      if (retry.length > 0) {
        this.failed(new Error(`${retry.length} of ${batch.length} messages not acknowledged`));
        return;
      }
      this.retryDelayMs = this.retryMinMs;
    }
  }

  private failed(err: unknown): void {
    this.noteError(err);
    this.retryAt = Date.now() + this.retryDelayMs;
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.retryMaxMs);
  }

  private noteError(err: unknown): void {
    this.errors++;
    this.lastError = err instanceof Error ? err.message : String(err);
  }

  private drop(topic: Topic, logged = true): void {
    this.dropped[topic]++;
    if (!logged) return;
    this.dropsSinceLog++;
    const now = Date.now();
    // One line per 10 s at most: a flood of drops must not become a flood of logs.
    if (now - this.lastDropLog >= 10_000) {
      this.log?.warn(
        {
          dropped: this.dropsSinceLog,
          droppedTotal: Object.values(this.dropped).reduce((a, b) => a + b, 0),
          maxBuffered: this.maxBuffered,
        },
        "event buffer full or closed; dropping messages",
      );
      this.lastDropLog = now;
      this.dropsSinceLog = 0;
    }
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    this.closeRequested = true;
    clearInterval(this.timer);
    const deadline = Date.now() + deadlineMs;
    while (this.buffered > 0 && Date.now() < deadline) {
      // Wait out a backoff, but never past the deadline.
      const wait = Math.min(Math.max(this.retryAt - Date.now(), 0), deadline - Date.now());
      if (wait > 0) await sleep(Math.min(wait, 50));
      else await withDeadline(this.flush(), deadline - Date.now());
    }
    this.abandoned = true;
    const left = this.buffered;
    // Counted here and logged once below.
    for (const m of this.inFlight) this.drop(m.topic, false);
    for (let m = this.queue.shift(); m !== undefined; m = this.queue.shift()) this.drop(m.topic, false);
    this.inFlight = [];
    if (left > 0) this.log?.warn({ dropped: left }, "event bus closed with undelivered messages");
    try {
      await this.disconnect();
    } catch (err) {
      this.log?.debug({ reason: errorMessage(err) }, "event bus disconnect failed");
    }
  }
}

/**
 * For when no event backend is configured: every message is counted as `ignored` and goes
 * nowhere. `published`, `dropped` and `buffered` stay zero and `up` is false.
 */
export class NoopEventBus implements EventBus {
  readonly backend = "none" as const;
  private readonly ignored = zeroPerTopic();

  publish<T extends Topic>(topic: T, _message: MessageFor<T> | (() => MessageFor<T>)): void {
    if (topic in this.ignored) this.ignored[topic]++;
  }

  stats(): EventBusStats {
    return {
      backend: this.backend,
      up: false,
      published: zeroPerTopic(),
      dropped: zeroPerTopic(),
      ignored: { ...this.ignored },
      buffered: 0,
      maxBuffered: 0,
      errors: 0,
      lagMs: 0,
      lastError: undefined,
    };
  }

  async close(): Promise<void> {}
}

/** A fixed-capacity FIFO: O(1) push and shift, no array copying under load. */
export class RingBuffer<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.items = new Array(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Appends; the caller makes room first (push on a full buffer throws). */
  push(item: T): void {
    if (this.size === this.capacity) throw new RangeError("ring buffer full");
    this.items[(this.head + this.size) % this.capacity] = item;
    this.size++;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }

  peek(): T | undefined {
    return this.size === 0 ? undefined : this.items[this.head];
  }

  /** Removes and returns up to `n` items from the front. */
  take(n: number): T[] {
    const out: T[] = [];
    while (out.length < n && this.size > 0) out.push(this.shift() as T);
    return out;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Waits for `promise`, but no longer than `ms`; the timer does not outlive the wait. */
async function withDeadline(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      promise,
      new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, ms)))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function positiveInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new ConfigError(name, "expected a whole number >= 1");
  return value;
}

function nonNegativeInt(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 0) throw new ConfigError(name, "expected a whole number >= 0");
  return value;
}
