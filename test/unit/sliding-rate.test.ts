import { describe, expect, it } from "vitest";
import { SlidingRate } from "../../src/app/sliding-rate.js";

describe("SlidingRate", () => {
  it("averages complete seconds inside the window and forgets older ones", () => {
    let now = 1_000_000;
    const rate = new SlidingRate(10, () => now);
    for (let s = 0; s < 10; s++) {
      rate.record(100 * (s + 1)); // 100, 200, … 1000 in ten consecutive seconds
      now += 1000;
    }
    // The ten complete seconds hold 100 + 200 + … + 1000 = 5500 → 550/s.
    expect(rate.perSecond()).toBe(550);
    rate.record(1_000_000); // the current second does not count yet
    expect(rate.perSecond()).toBe(550);
    now += 5000; // the five oldest seconds (100 … 500 = 1500) slide out; the big one is in
    expect(rate.perSecond()).toBe((5500 - 1500 + 1_000_000) / 10);
    now += 60_000;
    expect(rate.perSecond()).toBe(0);
  });

  it("averages a young window over its own age, not the full window", () => {
    let now = 5_000_500;
    const rate = new SlidingRate(10, () => now);
    expect(rate.perSecond()).toBe(0);
    rate.record(300);
    expect(rate.perSecond()).toBe(0); // nothing complete yet
    now += 1000;
    rate.record(300);
    now += 1000;
    // Two complete seconds of 300 each: 300/s, not 60/s.
    expect(rate.perSecond()).toBe(300);
  });
});
