import type { RedisOptions } from "ioredis";

/**
 * ioredis options for a connection that fails fast while Redis is down instead of queueing
 * commands, and reconnects for as long as it is open. Connect it with `connect()` (`lazyConnect`).
 *
 * - No offline queue and no per-command retries: a command sent while disconnected, or whose
 *   connection drops, is rejected at once; the caller decides what to do without it.
 * - A command waits at most `commandTimeoutMs` for its reply; a connection attempt at most 2 s.
 * - Reconnects never give up; the back-off grows to one attempt a second, so a returning server
 *   is found quickly.
 */
export function failFastRedisOptions(commandTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 1_000),
  };
}
