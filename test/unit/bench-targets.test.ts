import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type BenchResults, benchChartSvg, TARGETS, verdicts } from "../../scripts/bench-targets.js";

const committed = JSON.parse(readFileSync("bench/results.json", "utf8")) as BenchResults;

/** The committed results with some figures replaced. */
function withFigures(change: (r: BenchResults) => void): BenchResults {
  const copy = structuredClone(committed);
  change(copy);
  return copy;
}

const verdictOf = (r: BenchResults, label: string) => verdicts(r).find((v) => v.target.label === label);

describe("bench targets and their picture", () => {
  it("the committed picture is what the committed results draw", () => {
    expect(readFileSync("bench/results.svg", "utf8")).toBe(benchChartSvg(committed));
  });

  it("holds a lower bound at its value and an upper bound at its value", () => {
    const embedded = "embedded pipeline, journal only, 3 symbols";
    const p99 = "tick → visible in Redis, p99";
    const at = (ticks: number, p99Ms: number) =>
      withFigures((r) => {
        r.embedded.ticks_per_second = ticks;
        r.all_stores.tick_to_redis_p99_ms = p99Ms;
      });
    expect(verdictOf(at(300_000, 25), embedded)?.met).toBe(true);
    expect(verdictOf(at(299_999, 25), embedded)?.met).toBe(false);
    expect(verdictOf(at(300_000, 25), p99)?.met).toBe(true);
    expect(verdictOf(at(300_000, 25.1), p99)?.met).toBe(false);
    expect(verdictOf(at(150_000, 50), embedded)?.score).toBe(0.5);
    expect(verdictOf(at(150_000, 50), p99)?.score).toBe(0.5);
  });

  it("counts a replay that lost a tick as not met, and the worse journal p99 of the two runs", () => {
    const lost = withFigures((r) => {
      r.replay.ticks_delivered = r.replay.ticks - 1;
      r.embedded.journal_commit_p99_ms = 21;
      r.all_stores.journal_commit_p99_ms = 3;
    });
    expect(verdictOf(lost, "velox replay: ticks delivered to InfluxDB")?.met).toBe(false);
    expect(verdictOf(lost, "journal group commit, p99 (worst of both runs)")?.measured).toBe(21);
  });

  it("draws one bar and one verdict per target, and escapes what it prints", () => {
    const svg = benchChartSvg(withFigures((r) => Object.assign(r.machine, { model: `A<B & "C"` })));
    expect(svg).toContain("A&#60;B &#38; &#34;C&#34;");
    expect(svg).not.toContain("A<B");
    const verdictTexts = svg.match(/font-weight="bold">(met|not met)</g) ?? [];
    expect(verdictTexts).toHaveLength(TARGETS.length);
    const colours = verdicts(committed).map((v) => (v.met ? "#73bf69" : "#f2495c"));
    const bars = [...svg.matchAll(/height="22" fill="(#[0-9a-f]{6})"/g)]
      .map((m) => m[1])
      .filter((c) => c !== "#22252b");
    expect(bars).toEqual(colours);
  });
});
