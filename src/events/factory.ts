import type { Logger } from "pino";
import type { Config } from "../config.js";
import { type BufferedEventBusOptions, type EventBus, NoopEventBus } from "./event-bus.js";
import { KafkaEventBus, type KafkaEventBusOptions } from "./kafka.js";
import { RedisStreamsEventBus, type RedisStreamsEventBusOptions } from "./redis-streams.js";

export interface EventBusTuning extends BufferedEventBusOptions {
  kafka?: Omit<KafkaEventBusOptions, "brokers" | "logger">;
  redis?: Omit<RedisStreamsEventBusOptions, "url" | "logger">;
}

/**
 * Kafka when brokers are configured (VELOX_KAFKA_BROKERS), else Redis Streams when Redis is
 * (VELOX_REDIS_URL), else a bus that counts and discards. Never blocks: the chosen bus connects
 * in the background.
 */
export function createEventBus(
  config: Pick<Config, "kafkaBrokers" | "redisUrl">,
  logger?: Logger,
  tuning: EventBusTuning = {},
): EventBus {
  const { kafka, redis, ...common } = tuning;
  if (config.kafkaBrokers.length > 0) {
    return KafkaEventBus.create({ ...common, ...kafka, brokers: config.kafkaBrokers, logger });
  }
  if (config.redisUrl) {
    return RedisStreamsEventBus.create({ ...common, ...redis, url: config.redisUrl, logger });
  }
  logger?.info("no event backend configured (VELOX_KAFKA_BROKERS, VELOX_REDIS_URL); events are discarded");
  return new NoopEventBus();
}
