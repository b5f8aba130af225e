import { describe, expect, it } from "vitest";
import { batchLines, batchOf, LineBatcher } from "../../src/storage/line-batcher.js";

/** The InfluxDB writer's memory: lines cut into batches of `batchSize` as they arrive. */
describe("LineBatcher", () => {
  const lines = (n: number, tag = "a") => Array.from({ length: n }, (_, i) => `m,s=${tag} v=${i} ${i}`);

  it("cuts full batches in arrival order and counts every line it holds", () => {
    const batcher = new LineBatcher(3);
    for (const line of lines(7)) batcher.push(line);
    expect([batcher.points, batcher.hasFullBatch]).toEqual([7, true]);

    const first = batcher.take(false);
    expect({ text: first?.text, points: first?.points }).toEqual(batchOf(lines(7).slice(0, 3)));
    expect(batcher.take(false)?.text).toBe(lines(7).slice(3, 6).join("\n"));
    // Only the partial batch is left: it comes out only when asked for.
    expect(batcher.take(false)).toBeUndefined();
    expect([batcher.points, batcher.hasFullBatch]).toEqual([1, false]);
    const last = batcher.take(true);
    expect({ text: last?.text, points: last?.points }).toEqual({ text: lines(7)[6], points: 1 });
    expect(batcher.points).toBe(0);
    expect(batcher.take(true)).toBeUndefined();
  });

  it("puts a batch back in front of everything newer", () => {
    const batcher = new LineBatcher(2);
    for (const line of lines(4)) batcher.push(line);
    const first = batcher.take(false);
    if (!first) throw new Error("expected a batch");
    batcher.push("m,s=b v=9 9");
    batcher.putBack(first);
    expect(batcher.points).toBe(5);
    const out: string[] = [];
    for (let b = batcher.take(true); b; b = batcher.take(true)) out.push(...batchLines(b));
    expect(out).toEqual([...lines(4), "m,s=b v=9 9"]);
  });

  it("grows past its first buffer and keeps text that is not ASCII intact", () => {
    const batcher = new LineBatcher(10_000);
    const long = `m,s=x note="${"é€".repeat(200_000)}" 1`;
    batcher.push("m,s=a v=1 1");
    batcher.push(long);
    batcher.push("m,s=b v=2 2");
    const batch = batcher.take(true) ?? batchOf([]);
    expect(batchLines(batch)).toEqual(["m,s=a v=1 1", long, "m,s=b v=2 2"]);
    // What is sent: the UTF-8 bytes of that text, the newlines between the lines and none after.
    expect(batch.bytes?.equals(Buffer.from(["m,s=a v=1 1", long, "m,s=b v=2 2"].join("\n"), "utf8"))).toBe(
      true,
    );
  });

  it("keeps its own copy of a sealed batch's bytes while it goes on writing lines", () => {
    const batcher = new LineBatcher(2);
    for (const line of lines(2)) batcher.push(line);
    const first = batcher.take(false);
    for (const line of lines(2, "zz")) batcher.push(line);
    expect(first?.bytes?.toString("utf8")).toBe(lines(2).join("\n"));
    expect(first?.text).toBe(lines(2).join("\n"));
    expect(batcher.take(false)?.bytes?.toString("utf8")).toBe(lines(2, "zz").join("\n"));
  });

  it("splits a batch back into its lines, and an empty one into none", () => {
    expect(batchLines(batchOf(lines(3)))).toEqual(lines(3));
    expect(batchLines(batchOf([]))).toEqual([]);
  });
});
