import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";

export interface PacerOptions {
  /** Waits of at most this many ms are skipped: the item is handed out at once. */
  slackMs: number;
  /** When nothing makes the stream wait, hand control to the event loop after this many items. */
  itemsPerTurn: number;
  /** Ends a wait early; the wait then reports the abort instead of throwing. */
  signal?: AbortSignal | undefined;
}

/**
 * Paces a stream of items handed out by an async iterator: sleeps until an item is due, and when
 * none makes it wait, still yields a macrotask turn every so often, so that timers and I/O (an
 * abort, a metrics scrape) run.
 */
export class Pacer {
  private readonly slackMs: number;
  private readonly itemsPerTurn: number;
  private readonly signal: AbortSignal | undefined;
  private sinceTurn = 0;

  constructor({ slackMs, itemsPerTurn, signal }: PacerOptions) {
    this.slackMs = slackMs;
    this.itemsPerTurn = itemsPerTurn;
    this.signal = signal;
  }

  /**
   * Waits `delayMs` (the time until the next item is due; zero or less when it is due already)
   * before the next item. Resolves true when the item may be handed out, false when the signal
   * was aborted meanwhile (the iteration should end, without an error).
   */
  async wait(delayMs: number): Promise<boolean> {
    const { signal } = this;
    if (delayMs > this.slackMs) {
      try {
        await sleep(delayMs, undefined, { signal });
      } catch (error) {
        if (signal?.aborted) return false;
        throw error;
      }
      this.sinceTurn = 0;
    } else if (++this.sinceTurn >= this.itemsPerTurn) {
      await nextTurn();
      this.sinceTurn = 0;
      if (signal?.aborted) return false;
    }
    return true;
  }
}
