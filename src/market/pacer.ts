import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";

/**
 * Longest a source keeps the event loop when nothing makes it wait: timers and I/O (the cache
 * window, replies from Redis and InfluxDB, an HTTP request, a scrape) wait at most about this
 * long plus one batch. Time, not a count of ticks, because a tick costs 10 µs with the journal
 * alone and ten times that with every store on.
 */
export const TURN_MS = 4;

/** Most ticks a source hands over at once: one batch keeps the loop for at most this many ticks. */
export const MAX_BATCH = 64;

export interface PacerOptions {
  /** Waits of at most this many ms are skipped: the item is handed out at once. */
  slackMs: number;
  /** When nothing makes the stream wait, hand control to the event loop after this many ms; default TURN_MS. */
  turnMs?: number;
  /** Ends a wait early; the wait then reports the abort instead of throwing. */
  signal?: AbortSignal | undefined;
}

/**
 * Paces a stream of items: sleeps until an item is due, and when none makes it wait, still yields
 * a macrotask turn every `turnMs`, so that timers and I/O run. A batching source asks
 * {@link mustPause} per item (no await), and hands over what it has gathered before it calls
 * {@link pause}.
 */
export class Pacer {
  private readonly slackMs: number;
  private readonly turnMs: number;
  private readonly signal: AbortSignal | undefined;
  private turnAt = performance.now();

  constructor({ slackMs, turnMs = TURN_MS, signal }: PacerOptions) {
    this.slackMs = slackMs;
    this.turnMs = turnMs;
    this.signal = signal;
  }

  /** Whether the next item, due in `delayMs`, must wait: it is not due yet, or the loop is owed a turn. */
  mustPause(delayMs: number): boolean {
    return delayMs > this.slackMs || performance.now() - this.turnAt >= this.turnMs;
  }

  /**
   * Sleeps `delayMs` when that is longer than the slack, else gives the event loop one turn.
   * Resolves true when the stream may go on, false when the signal was aborted meanwhile (the
   * iteration should end, without an error).
   */
  async pause(delayMs: number): Promise<boolean> {
    const { signal } = this;
    try {
      if (delayMs > this.slackMs) await sleep(delayMs, undefined, { signal });
      else await nextTurn();
    } catch (error) {
      if (signal?.aborted) return false;
      throw error;
    }
    this.turnAt = performance.now();
    return !signal?.aborted;
  }
}

/**
 * A batched stream one item at a time, for consumers that take ticks singly. An abort ends it at
 * once, not after the rest of the batch.
 */
export async function* oneByOne<T>(batches: AsyncIterable<T[]>, signal?: AbortSignal): AsyncGenerator<T> {
  for await (const batch of batches) {
    for (const item of batch) {
      if (signal?.aborted) return;
      yield item;
    }
  }
}
