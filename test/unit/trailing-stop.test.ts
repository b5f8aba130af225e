import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/domain/errors.js";
import { TrailingStop } from "../../src/trading/trailing-stop.js";

/** Feeds prices and returns the stop after each one. */
function stops(stop: TrailingStop, prices: number[], atrs: (number | undefined)[] = []): number[] {
  return prices.map((p, i) => stop.update(p, atrs[i]).stop);
}

describe("fixed_percent trailing stop", () => {
  it("long: trails the highest price by p % and never moves down", () => {
    const stop = new TrailingStop({ type: "fixed_percent", percent: 2 }, "long", 100);
    expect(stop.stop).toBe(98); // 100 × 0.98

    expect(stop.update(105, undefined)).toEqual({ moved: true, stop: 102.9, highest: 105 }); // 105 × 0.98
    expect(stop.update(103)).toEqual({ moved: false, stop: 102.9, highest: 105 }); // a drop never lowers it
    expect(stop.update(110)).toEqual({ moved: true, stop: 107.8, highest: 110 }); // 110 × 0.98
    expect(stop.update(108)).toEqual({ moved: false, stop: 107.8, highest: 110 });
    expect(stop.update(110)).toEqual({ moved: false, stop: 107.8, highest: 110 }); // equal high: no move

    expect(stop.hit(107.81)).toBe(false);
    expect(stop.hit(107.8)).toBe(true); // at the stop counts
    expect(stop.hit(90)).toBe(true);
  });

  it("short: trails the lowest price by p % and never moves up", () => {
    const stop = new TrailingStop({ type: "fixed_percent", percent: 2 }, "short", 100);
    expect(stop.stop).toBe(102); // 100 × 1.02
    expect(stop.update(95)).toEqual({ moved: true, stop: 96.9, highest: 95 }); // 95 × 1.02; "highest" = best = lowest
    expect(stop.update(99)).toEqual({ moved: false, stop: 96.9, highest: 95 }); // a rise never raises it
    expect(stop.update(90)).toEqual({ moved: true, stop: 91.8, highest: 90 }); // 90 × 1.02
    expect(stop.hit(91.79)).toBe(false);
    expect(stop.hit(91.8)).toBe(true);
    expect(stop.hit(120)).toBe(true);
  });

  it("rejects a percentage outside (0, 100)", () => {
    expect(() => new TrailingStop({ type: "fixed_percent", percent: 0 }, "long", 100)).toThrow(
      ValidationError,
    );
    expect(() => new TrailingStop({ type: "fixed_percent", percent: 100 }, "long", 100)).toThrow(
      /trailing_stop.percent/,
    );
  });
});

describe("atr trailing stop", () => {
  const config = { type: "atr", atr_multiple: 2, atr_period: 14 } as const;

  it("long: highest − k × ATR, using the latest ATR, never loosening when the ATR widens", () => {
    const stop = new TrailingStop(config, "long", 100, 1.5);
    expect(stop.stop).toBe(97); // 100 − 2 × 1.5
    expect(stop.update(104, 1.5)).toEqual({ moved: true, stop: 101, highest: 104 }); // 104 − 3
    // ATR widens to 3: candidate 104 − 6 = 98 would loosen the stop: ignored.
    expect(stop.update(104, 3)).toEqual({ moved: false, stop: 101, highest: 104 });
    // Price falls, ATR narrows to 1: candidate = highest 104 − 2 = 102: tighter, so it moves.
    expect(stop.update(103, 1)).toEqual({ moved: true, stop: 102, highest: 104 });
    // No ATR given: the last one (1) is used. 108 − 2 = 106.
    expect(stop.update(108)).toEqual({ moved: true, stop: 106, highest: 108 });
    expect(stop.update(100, 0.5)).toEqual({ moved: true, stop: 107, highest: 108 }); // 108 − 1, price below it
    expect(stop.hit(100)).toBe(true);
    expect(stop.hit(107.5)).toBe(false);
  });

  it("short: lowest + k × ATR, never moving up", () => {
    const stop = new TrailingStop(config, "short", 100, 1.5);
    expect(stop.stop).toBe(103); // 100 + 2 × 1.5
    expect(stop.update(96, 1.5)).toEqual({ moved: true, stop: 99, highest: 96 }); // 96 + 3
    expect(stop.update(98, 4)).toEqual({ moved: false, stop: 99, highest: 96 }); // 96 + 8 = 104 would loosen
    expect(stop.update(95, 1)).toEqual({ moved: true, stop: 97, highest: 95 }); // 95 + 2
    expect(stop.hit(96.99)).toBe(false);
    expect(stop.hit(97)).toBe(true);
  });

  it("needs the ATR at entry", () => {
    expect(() => new TrailingStop(config, "long", 100)).toThrow(/atr/);
  });
});

describe("step trailing stop", () => {
  it("long: moves up one step per step of price advance beyond the last level", () => {
    // Step = 1 % of entry 100 = 1.0; initial stop 2 % below entry = 98; levels at 101, 102, …
    const stop = new TrailingStop({ type: "step", step_percent: 1, initial_percent: 2 }, "long", 100);
    expect(stop.stop).toBe(98);
    expect(stop.update(100.9)).toEqual({ moved: false, stop: 98, highest: 100.9 }); // level 101 not reached
    expect(stop.update(101)).toEqual({ moved: true, stop: 99, highest: 101 }); // one step
    expect(stop.update(101.5)).toEqual({ moved: false, stop: 99, highest: 101.5 });
    expect(stop.update(100)).toEqual({ moved: false, stop: 99, highest: 101.5 }); // a drop never lowers it
    expect(stop.update(103.2)).toEqual({ moved: true, stop: 101, highest: 103.2 }); // levels 102 and 103: two steps
    expect(stop.update(103.9)).toEqual({ moved: false, stop: 101, highest: 103.9 });
    expect(stop.hit(101.01)).toBe(false);
    expect(stop.hit(101)).toBe(true);
  });

  it("short: mirrored, the initial distance defaulting to one step", () => {
    // Step = 2 % of 50 = 1.0; initial stop 50 × 1.02 = 51; levels at 49, 48, …
    const stop = new TrailingStop({ type: "step", step_percent: 2 }, "short", 50);
    expect(stop.stop).toBe(51);
    expect(stops(stop, [49.5, 49, 49.8, 46.9])).toEqual([51, 50, 50, 48]); // 49 → one step; 46.9 → levels 48, 47
    expect(stop.highest).toBe(46.9);
    expect(stop.hit(47.99)).toBe(false);
    expect(stop.hit(48)).toBe(true);
  });
});

describe("a stop restored from its saved state", () => {
  it("fixed_percent long: keeps the saved level and best price, then trails on from them", () => {
    const stop = TrailingStop.restore({ type: "fixed_percent", percent: 2 }, "long", 100, {
      stop: 107.8,
      highest: 110,
    });
    expect([stop.stop, stop.highest]).toEqual([107.8, 110]);
    expect(stop.update(109)).toEqual({ moved: false, stop: 107.8, highest: 110 }); // below the saved best
    expect(stop.hit(107.8)).toBe(true);
    expect(stop.update(112)).toEqual({ moved: true, stop: 109.76, highest: 112 }); // 112 × 0.98
  });

  it("only tightens from the saved level, and takes the entry as the best when the saved one is worse", () => {
    // Saved looser than the rule gives (e.g. the percentage was narrowed since): the next update tightens it.
    const loose = TrailingStop.restore({ type: "fixed_percent", percent: 2 }, "long", 100, {
      stop: 100,
      highest: 110,
    });
    expect(loose.stop).toBe(100);
    expect(loose.update(105)).toEqual({ moved: true, stop: 107.8, highest: 110 });
    // Saved tighter than the rule gives: kept, never loosened.
    const tight = TrailingStop.restore({ type: "fixed_percent", percent: 2 }, "long", 100, {
      stop: 109,
      highest: 110,
    });
    expect(tight.update(111)).toEqual({ moved: false, stop: 109, highest: 111 }); // 108.78 < 109
    const belowEntry = TrailingStop.restore({ type: "fixed_percent", percent: 2 }, "long", 100, {
      stop: 98,
      highest: 90,
    });
    expect(belowEntry.highest).toBe(100);
  });

  it("fixed_percent short: mirrored", () => {
    const stop = TrailingStop.restore({ type: "fixed_percent", percent: 2 }, "short", 100, {
      stop: 96.9,
      highest: 95,
    });
    expect(stop.update(99)).toEqual({ moved: false, stop: 96.9, highest: 95 });
    expect(stop.update(90)).toEqual({ moved: true, stop: 91.8, highest: 90 });
  });

  it("step: re-derives the last level reached, so it moves exactly as an uninterrupted stop would", () => {
    const config = { type: "step", step_percent: 1, initial_percent: 2 } as const;
    const uninterrupted = new TrailingStop(config, "long", 100);
    expect(stops(uninterrupted, [101, 101.5, 103.2])).toEqual([99, 99, 101]);
    const restored = TrailingStop.restore(config, "long", 100, { stop: 101, highest: 103.2 });
    const later = [103.9, 104, 103, 106.5, 105];
    expect(stops(restored, later)).toEqual(stops(uninterrupted, later));
    expect(restored.stop).toBe(104); // levels 104, 105, 106
    const short = TrailingStop.restore({ type: "step", step_percent: 2 }, "short", 50, {
      stop: 50,
      highest: 48.5,
    });
    expect(stops(short, [48.1, 48, 46.9])).toEqual([50, 49, 48]); // level 49 derived; 48 and 47 reached later
  });

  it("atr: keeps the saved level until an ATR value arrives", () => {
    const config = { type: "atr", atr_multiple: 2, atr_period: 14 } as const;
    const stop = TrailingStop.restore(config, "long", 100, { stop: 101, highest: 104 });
    expect(stop.update(106)).toEqual({ moved: false, stop: 101, highest: 106 }); // no ATR yet
    expect(stop.hit(101)).toBe(true);
    expect(stop.update(105, 1.5)).toEqual({ moved: true, stop: 103, highest: 106 }); // 106 − 3
    expect(stop.update(105, 10)).toEqual({ moved: false, stop: 103, highest: 106 }); // a wider ATR never loosens
    expect(stop.update(107)).toEqual({ moved: false, stop: 103, highest: 107 }); // last ATR 10: 87 < 103
  });

  it("rejects a saved state that is not a pair of positive prices", () => {
    const config = { type: "fixed_percent", percent: 2 } as const;
    expect(() => TrailingStop.restore(config, "long", 100, { stop: 0, highest: 100 })).toThrow(
      /saved_stop.stop/,
    );
    expect(() => TrailingStop.restore(config, "long", 100, { stop: 98, highest: Number.NaN })).toThrow(
      ValidationError,
    );
  });
});

describe("monotonicity under a random walk", () => {
  it.each([
    ["fixed_percent", { type: "fixed_percent", percent: 1.5 }],
    ["atr", { type: "atr", atr_multiple: 2.5, atr_period: 14 }],
    ["step", { type: "step", step_percent: 0.7 }],
  ] as const)("%s: a long's stop never falls and a short's never rises", (_name, config) => {
    let seed = 7;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    const long = new TrailingStop(config, "long", 100, 1);
    const short = new TrailingStop(config, "short", 100, 1);
    let price = 100;
    let lastLong = long.stop;
    let lastShort = short.stop;
    for (let i = 0; i < 2000; i++) {
      price = Math.max(1, price + (random() - 0.5) * 2);
      const atr = 0.2 + random() * 3;
      expect(long.update(price, atr).stop).toBeGreaterThanOrEqual(lastLong);
      expect(short.update(price, atr).stop).toBeLessThanOrEqual(lastShort);
      lastLong = long.stop;
      lastShort = short.stop;
    }
  });
});
