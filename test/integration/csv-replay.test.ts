import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleTicks } from "../../scripts/generate-sample-csv.js";
import { StateError, ValidationError } from "../../src/domain/errors.js";
import type { Tick } from "../../src/domain/tick.js";
import { CSV_COLUMNS, CsvReplay, type CsvReplayOptions, MAX_ROW_BYTES } from "../../src/market/csv-replay.js";
import { MAX_BATCH } from "../../src/market/pacer.js";
import { generateTicks } from "../../src/market/simulator.js";
import type { Rejection, RejectReason } from "../../src/market/tick-validator.js";

const HEADER = CSV_COLUMNS.join(",");
const iso = (ms: number) => new Date(ms).toISOString();

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "velox-replay-"));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function writeCsv(name: string, lines: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${lines.join("\n")}\n`);
  return path;
}

function row(
  t: Tick,
  timestamp: string | number = t.timestamp,
  overrides: Partial<Record<string, string>> = {},
) {
  const cells: Record<string, string> = {
    timestamp: String(timestamp),
    symbol: t.symbol,
    open: String(t.open),
    high: String(t.high),
    low: String(t.low),
    close: String(t.close),
    volume: String(t.volume),
    bid: String(t.bid ?? ""),
    ask: String(t.ask ?? ""),
    ...overrides,
  };
  return CSV_COLUMNS.map((c) => cells[c]).join(",");
}

async function replayAll(options: CsvReplayOptions) {
  const rejections: Rejection[] = [];
  const replay = await CsvReplay.open({ onReject: (r) => rejections.push(r), ...options });
  const ticks: Tick[] = [];
  for await (const tick of replay) ticks.push(tick);
  return { replay, ticks, rejections };
}

/** Bad rows, one kind after another, each made from the last good tick. */
const BAD_KINDS: { reason: RejectReason; make: (last: Tick) => string }[] = [
  { reason: "not_a_number", make: (t) => row(t, t.timestamp + 1, { close: "NaN" }) },
  { reason: "non_positive_price", make: (t) => row(t, t.timestamp + 1, { open: "-12.5" }) },
  { reason: "high_below_low", make: (t) => row(t, t.timestamp + 1, { high: String(t.low - 1) }) },
  { reason: "bad_symbol", make: (t) => row(t, t.timestamp + 1, { symbol: "bad sym!" }) },
  { reason: "out_of_order", make: (t) => row(t, iso(t.timestamp - 1)) },
  { reason: "malformed_row", make: (t) => `${row(t, t.timestamp + 1)},extra` },
  { reason: "bad_timestamp", make: (t) => row(t, "2024-01-02T25:61:00Z") },
  { reason: "malformed_row", make: (t) => row(t).split(",").slice(0, 7).join(",") },
  { reason: "bad_timestamp", make: (t) => row(t, "garbage") },
];

describe("CSV replay", () => {
  // 2,000 data rows: 1,900 good ticks, and every 20th row bad (5 %), of mixed kinds; timestamps
  // alternate between ISO 8601 and epoch milliseconds.
  const good = [...generateTicks({ seed: 11, symbols: 4, rate: 20, ticks: 1900 })];
  const lines = [HEADER];
  const expectedBad: { line: number; reason: RejectReason }[] = [];
  let next = 0;
  for (let i = 0; i < 2000; i++) {
    const line = i + 2;
    if (i % 20 === 19) {
      const kind = BAD_KINDS[expectedBad.length % BAD_KINDS.length] as (typeof BAD_KINDS)[number];
      lines.push(kind.make(good[next - 1] as Tick));
      expectedBad.push({ line, reason: kind.reason });
    } else {
      const t = good[next++] as Tick;
      lines.push(row(t, i % 2 === 0 ? iso(t.timestamp) : t.timestamp));
    }
  }

  it("replays a file with 5 % bad rows to the end, naming every bad row by line and reason", async () => {
    const path = writeCsv("mixed.csv", lines);
    const { replay, ticks, rejections } = await replayAll({ path });

    expect(ticks).toEqual(good.map((t) => ({ ...t, source: "replay" })));
    expect(rejections.map(({ line, reason }) => ({ line, reason }))).toEqual(expectedBad);
    for (const r of rejections) expect(r.row).toBe(lines[(r.line as number) - 1]);

    const counts = replay.validator.counts();
    expect(counts).toMatchObject({
      not_a_number: 12,
      non_positive_price: 11,
      high_below_low: 11,
      bad_symbol: 11,
      out_of_order: 11,
      malformed_row: 22,
      bad_timestamp: 22,
      missing_field: 0,
      unknown_column: 0,
    });
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(100);
    expect(replay.progress()).toEqual({
      rowsRead: 2000,
      bytesRead: statSync(path).size,
      totalBytes: statSync(path).size,
      ticks: 1900,
      rejected: 100,
      done: true,
    });
  });

  it("hands the same ticks over in batches of at most MAX_BATCH, and only once", async () => {
    const path = writeCsv("batches.csv", lines);
    const { ticks } = await replayAll({ path });
    const replay = await CsvReplay.open({ path });
    const batched: Tick[] = [];
    for await (const batch of replay.batches()) {
      expect(batch.length).toBeGreaterThan(0);
      expect(batch.length).toBeLessThanOrEqual(MAX_BATCH);
      batched.push(...batch);
    }
    expect(batched).toEqual(ticks);
    expect(replay.progress()).toMatchObject({ ticks: ticks.length, done: true });
    expect(() => replay.batches()).toThrow(StateError);
  });

  it("streams: after the first tick only a chunk of the file has been read", async () => {
    const path = writeCsv("streamed.csv", lines);
    const replay = await CsvReplay.open({ path });
    for await (const _ of replay) {
      const progress = replay.progress();
      // The first batch of ticks (and the rows rejected on the way), not the file.
      expect(progress.rowsRead).toBeGreaterThanOrEqual(1);
      expect(progress.rowsRead).toBeLessThanOrEqual(2 * MAX_BATCH);
      expect(progress.bytesRead).toBeGreaterThan(0);
      expect(progress.bytesRead).toBeLessThan(progress.totalBytes);
      break;
    }
    expect(replay.progress().done).toBe(true);
  });

  it("reads ISO 8601 and epoch-ms timestamps alike, columns in any order, bid/ask optional", async () => {
    const ticks = [...generateTicks({ seed: 3, ticks: 30, rate: 7 })];
    const columns = ["symbol", "volume", "timestamp", "close", "low", "high", "open"];
    const pick = (t: Tick, ts: string | number) =>
      columns.map((c) => (c === "timestamp" ? ts : String(t[c as keyof Tick]))).join(",");
    const asIso = writeCsv("iso.csv", [columns.join(","), ...ticks.map((t) => pick(t, iso(t.timestamp)))]);
    const asEpoch = writeCsv("epoch.csv", [columns.join(","), ...ticks.map((t) => pick(t, t.timestamp))]);
    const expected = ticks.map(({ bid: _bid, ask: _ask, ...t }) => ({ ...t, source: "replay" }));

    const a = await replayAll({ path: asIso });
    const b = await replayAll({ path: asEpoch });
    expect(a.ticks).toEqual(expected);
    expect(b.ticks).toEqual(expected);
    expect(a.rejections).toEqual([]);
    expect(b.rejections).toEqual([]);
  });

  it("reports a row the CSV parser cannot read and goes on", async () => {
    const [t1, t2, t3] = [...generateTicks({ ticks: 3 })] as [Tick, Tick, Tick];
    const path = writeCsv("quotes.csv", [
      HEADER,
      row(t1),
      row(t2, t2.timestamp, { symbol: '"MSFT"x' }),
      "",
      row(t2),
      row(t3, t3.timestamp, { symbol: '"GOOGL' }),
    ]);
    const { ticks, rejections } = await replayAll({ path });
    expect(ticks.map((t) => t.symbol)).toEqual(["AAPL", "MSFT"]);
    expect(rejections.map(({ line, reason }) => ({ line, reason }))).toEqual([
      { line: 3, reason: "bad_symbol" },
      { line: 6, reason: "malformed_row" },
    ]);
  });

  it("a stray opening quote spoils its own row only: counted, and every later row is read", async () => {
    // Before: the quote swallowed the rest of the file into one row and the replay stopped.
    const t = [...generateTicks({ ticks: 1 })][0] as Tick;
    const rest = Array.from({ length: 30_000 }, (_, i) => row(t, t.timestamp + 1 + i));
    const path = writeCsv("unclosed.csv", [
      HEADER,
      row(t),
      row(t, t.timestamp, { symbol: '"AAPL' }),
      ...rest,
    ]);
    const { ticks, rejections } = await replayAll({ path });
    expect(ticks).toHaveLength(1 + 30_000);
    expect(rejections.map(({ line, reason }) => ({ line, reason }))).toEqual([
      { line: 3, reason: "malformed_row" },
    ]);
  });

  it("skips a row over 1 MiB, counted, without holding it, and goes on at the next line", async () => {
    // Before: the replay stopped on it (exit 1).
    const t = [...generateTicks({ ticks: 1 })][0] as Tick;
    const huge = `${row(t)},${"9".repeat(MAX_ROW_BYTES + 10)}`;
    const after = Array.from({ length: 100 }, (_, i) => row(t, t.timestamp + 1 + i));
    const path = writeCsv("huge.csv", [HEADER, row(t), huge, ...after, huge]);
    const { ticks, rejections } = await replayAll({ path });
    expect(ticks).toHaveLength(1 + 100);
    expect(rejections.map(({ line, reason, message }) => ({ line, reason, message }))).toEqual([
      {
        line: 3,
        reason: "malformed_row",
        message: `longer than ${MAX_ROW_BYTES} bytes; skipped to the next line`,
      },
      {
        line: 104,
        reason: "malformed_row",
        message: `longer than ${MAX_ROW_BYTES} bytes; skipped to the next line`,
      },
    ]);
  });

  it("refuses a header with an unknown, missing or repeated column before reading any row", async () => {
    const t = [...generateTicks({ ticks: 1 })][0] as Tick;
    const unknown = writeCsv("unknown.csv", [`${HEADER},price`, `${row(t)},1`]);
    await expect(CsvReplay.open({ path: unknown })).rejects.toThrow(ValidationError);
    await expect(CsvReplay.open({ path: unknown })).rejects.toThrow(
      `invalid ${unknown} header: unknown column "price" (columns: ${HEADER}; bid, ask optional)`,
    );
    const missing = writeCsv("missing.csv", ["timestamp,symbol,open,high,low,close", "1,AAPL,1,1,1,1"]);
    await expect(CsvReplay.open({ path: missing })).rejects.toThrow(/missing column volume/);
    const repeated = writeCsv("repeated.csv", [`${HEADER},close`]);
    await expect(CsvReplay.open({ path: repeated })).rejects.toThrow(/repeated column "close"/);
    const empty = writeCsv("empty.csv", []);
    await expect(CsvReplay.open({ path: empty })).rejects.toThrow(/empty/);
    await expect(CsvReplay.open({ path: join(dir, "nope.csv") })).rejects.toThrow(/ENOENT/);
    await expect(CsvReplay.open({ path: unknown, speed: 0 })).rejects.toThrow(/speed/);
  });

  it("paces by the timestamps at the given speed", async () => {
    // 11 ticks 200 ms apart: 2 s of market time.
    const ticks = [...generateTicks({ symbols: 1, rate: 5, ticks: 11 })];
    const path = writeCsv("paced.csv", [HEADER, ...ticks.map((t) => row(t))]);

    let begin = performance.now();
    const fast = await replayAll({ path, speed: 10 });
    const pacedMs = performance.now() - begin;
    expect(fast.ticks).toHaveLength(11);
    // 2 s at 10× is 200 ms; generous bounds.
    expect(pacedMs).toBeGreaterThanOrEqual(170);
    expect(pacedMs).toBeLessThan(1500);

    begin = performance.now();
    await replayAll({ path, speed: "max" });
    expect(performance.now() - begin).toBeLessThan(pacedMs);
  });

  it("stops when aborted, also in the middle of a wait", async () => {
    const path = writeCsv("abort.csv", lines);
    const controller = new AbortController();
    const replay = await CsvReplay.open({ path, signal: controller.signal });
    let seen = 0;
    for await (const _ of replay) {
      if (++seen === 10) controller.abort();
    }
    expect(seen).toBe(10);
    expect(replay.progress().rowsRead).toBeLessThan(2000);
    expect(() => replay[Symbol.asyncIterator]()).toThrow(StateError);

    // Real time: the second tick is 200 ms of market time away; the abort comes first.
    const slow = [...generateTicks({ symbols: 1, rate: 5, ticks: 3 })];
    const slowPath = writeCsv("slow.csv", [HEADER, ...slow.map((t) => row(t))]);
    const waiting = new AbortController();
    const begin = performance.now();
    setTimeout(() => waiting.abort(), 50);
    const { ticks } = await replayAll({ path: slowPath, speed: 0.5, signal: waiting.signal });
    expect(ticks).toHaveLength(1);
    expect(performance.now() - begin).toBeLessThan(350);
  });

  it("replays the shipped samples/ticks.csv with zero rejections", async () => {
    const { replay, ticks, rejections } = await replayAll({ path: "samples/ticks.csv" });
    expect(rejections).toEqual([]);
    expect(ticks).toHaveLength(3000);
    expect(ticks).toEqual([...sampleTicks()].map((t) => ({ ...t, source: "replay" })));
    expect(replay.progress()).toMatchObject({ rowsRead: 3000, rejected: 0, done: true });
    expect(replay.totalBytes).toBeLessThan(300 * 1024);
  });
});
