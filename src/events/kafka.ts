import {
  CompressionTypes,
  Kafka,
  type LogEntry,
  logLevel,
  type Message,
  Partitioners,
  type Producer,
  type TopicMessages,
} from "kafkajs";
import type { Logger } from "pino";
import { ConfigError, errorMessage } from "../domain/errors.js";
import { ALL_TOPICS, TOPICS, type Topic } from "../schema/events.js";
import {
  BufferedEventBus,
  type BufferedEventBusOptions,
  type BufferedMessage,
  type SendStatus,
} from "./event-bus.js";

export interface KafkaEventBusOptions extends BufferedEventBusOptions {
  /** host:port of one or more brokers (VELOX_KAFKA_BROKERS). */
  brokers: readonly string[];
  clientId?: string;
  /** Whether ticks are published. Default true: Kafka is built for the rate, and seed 001 streams every tick. */
  includeTicks?: boolean;
  /** Batch compression. Default none; gzip needs no extra codec. */
  compression?: "none" | "gzip";
  /**
   * Create missing topics with the admin client when the producer first connects. Default true.
   * Failure (no permission, a broker that does not implement CreateTopics) is logged and not
   * fatal: the topics may exist already, or the broker creates them on first use.
   */
  createTopics?: boolean;
  /** For created topics. Default 3 partitions, replication factor 1 (a single-broker setup). */
  numPartitions?: number;
  replicationFactor?: number;
  /** TCP connect timeout per broker. Default 1,000 ms. */
  connectionTimeoutMs?: number;
  /** How long one produce request may wait for its acknowledgement. Default 5,000 ms. */
  requestTimeoutMs?: number;
}

/**
 * Kafka backend (kafkajs). The producer is idempotent (`idempotent: true`, `maxInFlightRequests: 1`,
 * acks from all in-sync replicas), so a batch re-sent after a lost acknowledgement is written once
 * and every partition keeps publish order. Each flush is one `sendBatch`; records are keyed by
 * symbol (see `messageKey`) and carry a `type` header.
 *
 * Retries: kafkajs retries a send a few times within about a second; if that fails, the batch goes
 * back to the bus, which retries it with backoff while new messages wait in the bounded buffer. The
 * idempotent producer's default is to retry forever inside one send, which would leave a send
 * pending (and reconnecting) after close; bounding it is the trade kafkajs warns about ("Limiting
 * retries … may invalidate EoS guarantees"). A re-sent batch is the same batch with the same
 * sequence numbers, which the broker de-duplicates; what is lost is exactly-once across a
 * partially acknowledged multi-partition send, which may then duplicate.
 */
export class KafkaEventBus extends BufferedEventBus {
  readonly backend = "kafka" as const;
  private readonly kafka: Kafka;
  private readonly producer: Producer;
  private readonly compression: CompressionTypes;
  private readonly createTopics: boolean;
  private readonly numPartitions: number;
  private readonly replicationFactor: number;
  private readonly topics: readonly Topic[];
  private readonly requestTimeoutMs: number;
  private connected = false;
  /** The last connect or send succeeded. */
  private healthy = false;
  /** An outage has been logged and its end has not. */
  private downReported = false;
  private topicsChecked = false;
  private connecting: Promise<void> | undefined;

  private constructor(options: KafkaEventBusOptions) {
    const excludeTopics = [
      ...(options.excludeTopics ?? []),
      ...(options.includeTicks === false ? [TOPICS.ticks] : []),
    ];
    if (options.brokers.length === 0) throw new ConfigError("VELOX_KAFKA_BROKERS", "no brokers given");
    super({ ...options, excludeTopics });
    this.topics = ALL_TOPICS.filter((t) => !excludeTopics.includes(t));
    this.compression = options.compression === "gzip" ? CompressionTypes.GZIP : CompressionTypes.None;
    this.createTopics = options.createTopics ?? true;
    this.numPartitions = options.numPartitions ?? 3;
    this.replicationFactor = options.replicationFactor ?? 1;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5_000;
    this.kafka = new Kafka({
      clientId: options.clientId ?? "velox",
      brokers: [...options.brokers],
      connectionTimeout: options.connectionTimeoutMs ?? 1_000,
      requestTimeout: this.requestTimeoutMs,
      // Connect and metadata retries; a failed connect is retried by the bus's own loop.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1_000 },
      logLevel: logLevel.INFO,
      logCreator: () => (entry) => bridgeLog(this.log, entry),
    });
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      // Java-compatible murmur2 on the key: one symbol, one partition.
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
    });
    this.producer.on(this.producer.events.DISCONNECT, () => {
      this.log?.debug("kafka producer disconnected");
      this.connected = false;
      this.healthy = false;
    });
  }

  /**
   * Returns at once and connects (and creates topics) in the background. A failed connect is
   * retried with the next flush; a lost connection is re-established by the next send.
   */
  static create(options: KafkaEventBusOptions): KafkaEventBus {
    const bus = new KafkaEventBus(options);
    bus.ensureConnected().catch((err: unknown) => bus.reportDown(err));
    return bus;
  }

  /** Connected, and the last connect or send succeeded; a broker lost while idle shows at the next send. */
  protected isUp(): boolean {
    return this.connected && this.healthy;
  }

  protected async send(batch: readonly BufferedMessage[]): Promise<SendStatus[]> {
    try {
      await this.ensureConnected();
    } catch (err) {
      this.reportDown(err);
      throw err;
    }
    const byTopic = new Map<Topic, Message[]>();
    for (const m of batch) {
      const messages = byTopic.get(m.topic) ?? [];
      if (messages.length === 0) byTopic.set(m.topic, messages);
      messages.push({ key: m.key, value: m.value, headers: { type: m.type } });
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    try {
      await this.producer.sendBatch({
        topicMessages,
        acks: -1,
        timeout: this.requestTimeoutMs,
        compression: this.compression,
      });
    } catch (err) {
      const type = protocolErrorType(err);
      if (type !== undefined && REJECTED_TYPES.has(type)) {
        // The broker will never take these records: retrying would block everything behind them.
        this.log?.error({ reason: errorMessage(err), type }, "kafka rejected a batch; dropping it");
        return batch.map(() => "rejected");
      }
      this.reportDown(err);
      if (type !== undefined && SESSION_TYPES.has(type)) {
        // The broker no longer knows this producer id/epoch: reconnect, which asks for a new one.
        this.log?.warn({ type }, "kafka producer session invalid; reconnecting");
        await this.producer.disconnect().catch(() => {});
      }
      throw err;
    }
    this.reportUp();
    return batch.map(() => "sent");
  }

  private reportDown(err: unknown): void {
    this.healthy = false;
    if (this.downReported || this.isStopped) return;
    this.downReported = true;
    this.log?.warn(
      { reason: errorMessage(err), buffered: this.buffered },
      "kafka unreachable; buffering events",
    );
  }

  private reportUp(): void {
    this.healthy = true;
    if (!this.downReported) return;
    this.downReported = false;
    this.log?.info({ buffered: this.buffered }, "kafka reachable again");
  }

  private ensureConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async connect(): Promise<void> {
    await this.producer.connect();
    if (this.isStopped) {
      // close() gave up while this attempt was under way: do not leave a connection behind.
      await this.producer.disconnect();
      throw new Error("event bus closed");
    }
    this.connected = true;
    this.log?.info("kafka producer connected");
    this.reportUp();
    if (this.createTopics && !this.topicsChecked) {
      this.topicsChecked = true;
      await this.ensureTopics();
    }
  }

  /** Creates the topics that do not exist yet. Never throws: topics may be managed elsewhere. */
  private async ensureTopics(): Promise<void> {
    const admin = this.kafka.admin();
    try {
      await admin.connect();
      const existing = new Set(await admin.listTopics());
      const missing = this.topics.filter((t) => !existing.has(t));
      if (missing.length === 0) return;
      await admin.createTopics({
        topics: missing.map((topic) => ({
          topic,
          numPartitions: this.numPartitions,
          replicationFactor: this.replicationFactor,
        })),
        waitForLeaders: true,
        timeout: this.requestTimeoutMs,
      });
      this.log?.info({ topics: missing }, "kafka topics created");
    } catch (err) {
      this.log?.warn(
        { reason: errorMessage(err) },
        "could not create kafka topics; relying on existing topics or broker auto-creation",
      );
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  protected async disconnect(): Promise<void> {
    // A connect attempt under way finishes (and sees isStopped) before the producer is closed.
    await this.connecting?.catch(() => {});
    await this.producer.disconnect();
    this.connected = false;
  }
}

/** Protocol errors that are about the records themselves: the batch is dropped, not retried. */
const REJECTED_TYPES = new Set([
  "MESSAGE_TOO_LARGE",
  "RECORD_LIST_TOO_LARGE",
  "INVALID_RECORD",
  "CORRUPT_MESSAGE",
  "INVALID_TIMESTAMP",
]);
/** Protocol errors that mean the idempotent producer must start a new session. */
const SESSION_TYPES = new Set([
  "UNKNOWN_PRODUCER_ID",
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "INVALID_PRODUCER_EPOCH",
]);

/** The Kafka error code name (`type`) of a kafkajs error or of what it wraps. */
function protocolErrorType(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === "string") return type;
  }
  return undefined;
}

/** kafkajs's logLevel is a plain object at run time, without the enum's reverse mapping. */
const LEVEL_NAMES: Partial<Record<number, string>> = {
  [logLevel.ERROR]: "error",
  [logLevel.WARN]: "warn",
  [logLevel.INFO]: "info",
  [logLevel.DEBUG]: "debug",
};

/**
 * kafkajs log lines into the bus's pino logger at debug: kafkajs logs every failed connection
 * attempt as an error, while the bus itself logs each outage once (with its reason) and counts it.
 */
function bridgeLog(log: Logger | undefined, { namespace, level, log: entry }: LogEntry): void {
  if (!log) return;
  const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry;
  log.debug({ ...fields, kafkajs: namespace, kafkajsLevel: LEVEL_NAMES[level] ?? level }, message);
}
