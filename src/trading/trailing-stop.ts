import { ValidationError } from "../domain/errors.js";
import type { TradeSide } from "../domain/trade.js";

/**
 * Trailing stop-losses. Three kinds, each for long and short positions:
 *
 * - fixed_percent: stop = best × (1 − p/100) for a long, best × (1 + p/100) for a short,
 *   where best is the highest (long) / lowest (short) price seen since entry.
 * - atr: stop = best − k × ATR for a long, best + k × ATR for a short, with the ATR of the tick.
 * - step: price levels every `step_percent` of the entry price; each time the price reaches the
 *   next level beyond the last one reached, the stop moves by one step per level crossed. The
 *   initial stop sits `initial_percent` (default: one step) from the entry.
 *
 * A stop only ever moves in the trade's favour: up for a long, down for a short. A candidate
 * that would loosen it (a price pull-back, a wider ATR) is ignored.
 *
 * A position that outlives a run keeps its stop: `TrailingStop.restore` rebuilds it from the last
 * saved level and best price, and it tightens from there under the same rule.
 *
 * Percentages are in percent units (2 = 2 %). Prices are multiplied by (100 ± p) and divided by
 * 100 so that whole-number inputs give the correctly rounded decimal (110 at 2 % → 107.8 exactly).
 */

export type TrailingStopConfig =
  | { type: "fixed_percent"; percent: number }
  | { type: "atr"; atr_multiple: number; atr_period: number }
  | { type: "step"; step_percent: number; initial_percent?: number | undefined };

export type TrailingStopType = TrailingStopConfig["type"];

export interface StopUpdate {
  /** Whether this update tightened the stop. */
  moved: boolean;
  stop: number;
  /** Best price seen since entry: the highest for a long, the lowest for a short (journal: highest_price). */
  highest: number;
}

/** Where a stop stood when it was last saved (the journal's last `sl_updates` row). */
export interface SavedStop {
  stop: number;
  /** Best price seen since entry: the highest for a long, the lowest for a short. */
  highest: number;
}

/** Whether this kind of stop needs an ATR value at entry. */
export function needsAtr(config: TrailingStopConfig): config is Extract<TrailingStopConfig, { type: "atr" }> {
  return config.type === "atr";
}

/** Counts whole steps in `distance`, tolerating binary rounding (2.9999999999 steps is 3). */
function wholeSteps(distance: number, step: number): number {
  return Math.floor(distance / step + 1e-9);
}

export class TrailingStop {
  readonly type: TrailingStopType;
  private readonly dir: 1 | -1;
  private currentStop: number;
  private best: number;
  private atr: number | undefined;
  /** step kind: the last level reached and the step size in price units. */
  private level = 0;
  private readonly step: number = 0;

  /**
   * Creates the stop for a position entered at `entryPrice`. An ATR stop needs `atr` (the ATR at
   * entry); a ValidationError says so when it is missing. `saved` resumes a stop instead of
   * starting one: see `TrailingStop.restore`.
   */
  constructor(
    readonly config: TrailingStopConfig,
    readonly side: TradeSide,
    readonly entryPrice: number,
    atr?: number,
    saved?: SavedStop,
  ) {
    if (!(entryPrice > 0) || !Number.isFinite(entryPrice)) {
      throw new ValidationError("entry_price", "must be a positive number");
    }
    this.type = config.type;
    this.dir = side === "long" ? 1 : -1;
    this.best = entryPrice;
    switch (config.type) {
      case "fixed_percent":
        checkPercent(config.percent, "trailing_stop.percent");
        this.currentStop = this.percentStop(entryPrice, config.percent);
        break;
      case "atr":
        if (!(config.atr_multiple > 0))
          throw new ValidationError("trailing_stop.atr_multiple", "must be > 0");
        if (atr === undefined || !(atr >= 0) || !Number.isFinite(atr)) {
          if (saved === undefined) {
            throw new ValidationError("atr", "an ATR trailing stop needs the ATR at entry");
          }
          // Resumed: the saved level stands until an ATR arrives.
          this.currentStop = saved.stop;
          break;
        }
        this.atr = atr;
        this.currentStop = entryPrice - this.dir * config.atr_multiple * atr;
        break;
      case "step": {
        checkPercent(config.step_percent, "trailing_stop.step_percent");
        const initial = config.initial_percent ?? config.step_percent;
        checkPercent(initial, "trailing_stop.initial_percent");
        this.step = (entryPrice * config.step_percent) / 100;
        this.level = entryPrice;
        this.currentStop = this.percentStop(entryPrice, initial);
        break;
      }
    }
    if (saved !== undefined) this.resumeFrom(saved);
    if (!(this.currentStop > 0)) {
      throw new ValidationError("trailing_stop", `initial stop ${this.currentStop} is not a positive price`);
    }
  }

  /**
   * Rebuilds the stop of a position entered at `entryPrice` from where it was last saved: the
   * stop stays at `saved.stop` and trails on from `saved.highest` (or the entry price, if that is
   * better), under the same rule as ever, so it only tightens from the saved level. A step stop
   * re-derives the last level reached from the best price. An ATR stop needs no ATR here: it
   * keeps the saved level until an update brings an ATR value.
   */
  static restore(
    config: TrailingStopConfig,
    side: TradeSide,
    entryPrice: number,
    saved: SavedStop,
    atr?: number,
  ): TrailingStop {
    return new TrailingStop(config, side, entryPrice, atr, saved);
  }

  get stop(): number {
    return this.currentStop;
  }

  get highest(): number {
    return this.best;
  }

  /**
   * Takes a new price (and, for an ATR stop, the current ATR; the last one known is used when it
   * is absent) and tightens the stop if the price allows it.
   */
  update(price: number, atr?: number): StopUpdate {
    if (this.dir * (price - this.best) > 0) this.best = price;
    if (atr !== undefined && Number.isFinite(atr) && atr >= 0) this.atr = atr;

    let candidate = this.currentStop;
    switch (this.config.type) {
      case "fixed_percent":
        candidate = this.percentStop(this.best, this.config.percent);
        break;
      case "atr":
        if (this.atr !== undefined) candidate = this.best - this.dir * this.config.atr_multiple * this.atr;
        break;
      case "step": {
        const steps = wholeSteps(this.dir * (this.best - this.level), this.step);
        if (steps > 0) {
          this.level += this.dir * steps * this.step;
          candidate = this.currentStop + this.dir * steps * this.step;
        }
        break;
      }
    }

    const moved = this.dir * (candidate - this.currentStop) > 0 && candidate > 0;
    if (moved) this.currentStop = candidate;
    return { moved, stop: this.currentStop, highest: this.best };
  }

  /** Whether `price` reaches the stop: at or below it for a long, at or above it for a short. */
  hit(price: number): boolean {
    return this.dir * (price - this.currentStop) <= 0;
  }

  private resumeFrom(saved: SavedStop): void {
    if (!(saved.stop > 0) || !Number.isFinite(saved.stop)) {
      throw new ValidationError("saved_stop.stop", "must be a positive number");
    }
    if (!(saved.highest > 0) || !Number.isFinite(saved.highest)) {
      throw new ValidationError("saved_stop.highest", "must be a positive number");
    }
    if (this.dir * (saved.highest - this.best) > 0) this.best = saved.highest;
    if (this.config.type === "step") {
      this.level =
        this.entryPrice +
        this.dir * wholeSteps(this.dir * (this.best - this.entryPrice), this.step) * this.step;
    }
    this.currentStop = saved.stop;
  }

  private percentStop(price: number, percent: number): number {
    return (price * (100 - this.dir * percent)) / 100;
  }
}

function checkPercent(value: number, field: string): void {
  if (!(value > 0 && value < 100)) throw new ValidationError(field, "must be > 0 and < 100");
}
