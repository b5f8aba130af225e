/**
 * Events per second over a sliding window of whole wall-clock seconds. `record` is O(1) and cheap
 * enough for every tick; `perSecond` is read when someone asks (a scrape, a status line).
 */
export class SlidingRate {
  private readonly buckets: Float64Array;
  private readonly stamps: Float64Array;
  /** The first second anything was recorded in: a young window is averaged over its own age. */
  private first = -1;

  constructor(
    private readonly windowSeconds = 10,
    private readonly now: () => number = () => Date.now(),
  ) {
    this.buckets = new Float64Array(windowSeconds + 1);
    this.stamps = new Float64Array(windowSeconds + 1).fill(-1);
  }

  record(count = 1): void {
    const second = Math.floor(this.now() / 1000);
    if (this.first < 0) this.first = second;
    const i = second % this.buckets.length;
    if (this.stamps[i] !== second) {
      this.stamps[i] = second;
      this.buckets[i] = 0;
    }
    this.buckets[i] = (this.buckets[i] ?? 0) + count;
  }

  /**
   * The mean over the last `windowSeconds` complete seconds (the current, partial one excluded),
   * or over the complete seconds since the first record when that is shorter.
   */
  perSecond(): number {
    const current = Math.floor(this.now() / 1000);
    const span = Math.min(this.windowSeconds, current - this.first);
    if (this.first < 0 || span <= 0) return 0;
    let sum = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      const stamp = this.stamps[i] ?? -1;
      if (stamp < current && stamp >= current - this.windowSeconds) sum += this.buckets[i] ?? 0;
    }
    return sum / span;
  }
}
