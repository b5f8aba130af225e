import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { mkdtempSync, rmSync } from "node:fs";
import type { ClientRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HttpError, type InfluxDB } from "@influxdata/influxdb-client";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { StateError, ValidationError } from "../../src/domain/errors.js";
import { INFLUX_SCHEMA, MEASUREMENTS, type MeasurementDef, msToNs } from "../../src/schema/influx.js";
import {
  classifyWriteError,
  GZIP_THRESHOLD_BYTES,
  InfluxWriter,
  type InfluxWriterOptions,
  offendingLine,
  retryAfterMs,
} from "../../src/storage/influx-writer.js";
import { type AnySeriesPoint, toLineProtocol } from "../../src/storage/line-protocol.js";
import { LineSpool } from "../../src/storage/line-spool.js";
import { skipWithout } from "../helpers/backend.js";
import { memoryLogger } from "../helpers/memory-logger.js";
import { startFixtureUntil } from "../helpers/process.js";
import { freePort } from "../helpers/redis-server.js";
import { type ExportedSeries, VICTORIA_METRICS, VictoriaMetrics } from "../helpers/victoria-metrics.js";

const skip = skipWithout(VICTORIA_METRICS, "the InfluxDB writer tests");
/** Event times of the test points: fixed, in the past (the test VictoriaMetrics keeps 100 years). */
const T0 = 1_700_000_000_000;

let dir: string;
let spoolCount = 0;
const writers: InfluxWriter[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "velox-influx-writer-"));
});

afterEach(async () => {
  // A test that failed half-way must not leave a writer retrying into the next one.
  await Promise.all(writers.splice(0).map((w) => w.close()));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function spoolFile(): string {
  spoolCount += 1;
  return join(dir, `spool-${spoolCount}.db`);
}

function newWriter(options: Partial<InfluxWriterOptions> & { url: string }): InfluxWriter {
  const writer = new InfluxWriter({ org: "velox", bucket: "trading", spoolPath: spoolFile(), ...options });
  writers.push(writer);
  return writer;
}

async function waitFor(what: string, condition: () => boolean | Promise<boolean>, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `series` ticks series (symbol `<prefix><s>`) × `perSeries` points, time-ordered, interleaved. */
function tickGrid(prefix: string, source: string, series: number, perSeries: number, t0: number) {
  const points: AnySeriesPoint[] = [];
  for (let i = 0; i < perSeries; i += 1) {
    for (let s = 0; s < series; s += 1) {
      points.push({
        measurement: "ticks",
        tags: { symbol: `${prefix}${s}`, source },
        fields: { close: s * 100_000 + i },
        timestampNs: msToNs(t0 + i * 1000),
      });
    }
  }
  return points;
}

/** Every point of a tickGrid arrived exactly once and in order. */
function expectGrid(
  exported: ExportedSeries[],
  prefix: string,
  series: number,
  perSeries: number,
  t0: number,
) {
  expect(exported.map((e) => e.metric.symbol).sort()).toEqual(
    Array.from({ length: series }, (_, s) => `${prefix}${s}`).sort(),
  );
  for (const e of exported) {
    const s = Number(e.metric.symbol?.slice(prefix.length));
    expect(e.timestamps, `timestamps of ${e.metric.symbol}`).toEqual(
      Array.from({ length: perSeries }, (_, i) => t0 + i * 1000),
    );
    expect(e.values, `values of ${e.metric.symbol}`).toEqual(
      Array.from({ length: perSeries }, (_, i) => s * 100_000 + i),
    );
  }
}

describe("LineSpool", () => {
  const lines = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `m,b=${tag} v=${i} ${i}`);

  it("drops the oldest batches past the bound, counts them exactly, and keeps the newest in order", () => {
    const path = spoolFile();
    const spool = new LineSpool(path, { maxPoints: 10 });
    try {
      expect(spool.append(lines("a", 4))).toBe(0);
      expect(spool.append(lines("b", 3))).toBe(0);
      expect(spool.append(lines("c", 3))).toBe(0);
      expect([spool.points(), spool.batches(), spool.droppedPoints]).toEqual([10, 3, 0]);

      // 2 more need 2 points of room: the whole oldest batch (4) goes, never part of one.
      expect(spool.append(lines("d", 2))).toBe(4);
      expect([spool.points(), spool.batches(), spool.droppedPoints]).toEqual([8, 3, 4]);
      // 5 more need 3 of room: b (3) goes.
      expect(spool.append(lines("e", 5))).toBe(3);
      expect([spool.points(), spool.batches(), spool.droppedPoints]).toEqual([10, 3, 7]);

      const order: string[][] = [];
      for (let batch = spool.peek(); batch; batch = spool.peek()) {
        expect(batch.points).toBe(batch.lines.length);
        order.push(batch.lines);
        expect(spool.remove(batch.id)).toBe(batch.points);
      }
      expect(order).toEqual([lines("c", 3), lines("d", 2), lines("e", 5)]);
      expect([spool.points(), spool.batches(), spool.droppedPoints]).toEqual([0, 0, 7]);
    } finally {
      spool.close();
    }
  });

  it("keeps the newest maxPoints lines of a batch larger than the bound", () => {
    const spool = new LineSpool(spoolFile(), { maxPoints: 10 });
    try {
      spool.append(lines("a", 3));
      expect(spool.append(lines("big", 15))).toBe(3 + 5);
      expect(spool.droppedPoints).toBe(8);
      expect(spool.peek()?.lines).toEqual(lines("big", 15).slice(5));
      expect([spool.points(), spool.batches()]).toEqual([10, 1]);
    } finally {
      spool.close();
    }
  });

  it("is durable across reopen, cuts to a smaller bound on open, and has one owner at a time", () => {
    const path = spoolFile();
    const first = new LineSpool(path, { maxPoints: 100 });
    for (const tag of ["a", "b", "c"]) first.append(lines(tag, 4));
    expect(() => new LineSpool(path, { maxPoints: 100, lockTimeoutMs: 50 })).toThrow(StateError);
    expect(first.remove(999)).toBe(0);
    first.close();

    const second = new LineSpool(path, { maxPoints: 8 });
    try {
      expect([second.points(), second.batches(), second.droppedPoints]).toEqual([8, 2, 4]);
      expect(second.peek()?.lines).toEqual(lines("b", 4));
      expect(() => second.append(["two\nlines"])).toThrow(ValidationError);
    } finally {
      second.close();
    }
  });
});

describe("line protocol and failure classification", () => {
  it("serialises from the schema: sorted tags, float and integer fields, the event's ns timestamp", () => {
    expect(
      toLineProtocol({
        measurement: "indicators",
        tags: { symbol: "RELIANCE", indicator_type: "rsi" },
        fields: { value: 61.5, period: 14 },
        timestampNs: msToNs(T0 + 0.125),
      }),
    ).toBe("indicators,indicator_type=rsi,symbol=RELIANCE period=14i,value=61.5 1700000000000125000");
    // A float field with an integral value stays a float (no `i`): its type never flips.
    expect(
      toLineProtocol({
        measurement: "strategy_metrics",
        tags: { strategy_id: "rsi_agg" },
        fields: { pnl: 100, positions_count: 2 },
        timestampNs: "1",
      }),
    ).toBe("strategy_metrics,strategy_id=rsi_agg pnl=100,positions_count=2i 1");
  });

  it("refuses what line protocol or the schema cannot carry, naming the field", () => {
    const ok = {
      measurement: "ticks",
      tags: { symbol: "AAPL", source: "sim" },
      fields: { close: 1 },
      timestampNs: "1700000000000000000",
    } as const;
    const bad = (change: Record<string, unknown>) => () =>
      toLineProtocol({ ...ok, ...change } as AnySeriesPoint);
    const cases: [Record<string, unknown>, string][] = [
      [{ measurement: "tick" }, "measurement"],
      [{ measurement: "toString" }, "measurement"],
      [{ tags: { symbol: "AAPL" } }, "tags.source"],
      [{ tags: { symbol: "AAPL", source: "" } }, "tags.source"],
      [{ tags: { symbol: "AAPL", source: "a b" } }, "tags.source"],
      [{ tags: { symbol: "AAPL", source: "sim", venue: "x" } }, "tags.venue"],
      [{ fields: {} }, "fields"],
      [{ fields: { close: undefined } }, "fields"],
      [{ fields: { price: 1 } }, "fields.price"],
      [{ fields: { close: Number.NaN } }, "fields.close"],
      [{ fields: { close: Number.POSITIVE_INFINITY } }, "fields.close"],
      [{ fields: { close: "1" } }, "fields.close"],
      [{ timestampNs: "" }, "timestampNs"],
      [{ timestampNs: "1.5e18" }, "timestampNs"],
      [{ timestampNs: "9223372036854775808" }, "timestampNs"],
    ];
    for (const [change, field] of cases) {
      expect(bad(change), JSON.stringify(change)).toThrow(ValidationError);
      expect(bad(change), JSON.stringify(change)).toThrow(`invalid ${field}:`);
    }
    expect(() =>
      toLineProtocol({
        measurement: "indicators",
        tags: { symbol: "AAPL", indicator_type: "sma" },
        fields: { period: 14.5 },
        timestampNs: "1",
      }),
    ).toThrow("invalid fields.period: is an integer field");
  });

  // VictoriaMetrics answers 204 to nearly everything and never 429/5xx on purpose, so these
  // classes are checked with the client's own HttpError objects (the 400 and 401 paths also run
  // against a real server below).
  it("classifies failures: transient → retry, configuration → hold, bad data → reject", () => {
    const http = (status: number, headers: Record<string, string> = {}) =>
      new HttpError(status, "x", "", headers["retry-after"], "text/plain", undefined, headers);
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    expect(classifyWriteError(refused)).toBe("retry");
    for (const status of [408, 429, 500, 502, 503, 504])
      expect(classifyWriteError(http(status))).toBe("retry");
    for (const status of [301, 401, 403, 404]) expect(classifyWriteError(http(status))).toBe("hold");
    for (const status of [400, 413, 422]) expect(classifyWriteError(http(status))).toBe("reject");

    expect(retryAfterMs(http(429, { "retry-after": "3" }))).toBe(3000);
    const now = Date.parse("2024-01-01T00:00:00Z");
    expect(retryAfterMs(http(503, { "retry-after": "Mon, 01 Jan 2024 00:00:05 GMT" }), now)).toBe(5000);
    expect(retryAfterMs(http(429))).toBeUndefined();
    expect(retryAfterMs(refused)).toBeUndefined();

    const lines = ["a v=1 1", "b v=x 2", "c v=3 3"];
    const influx = (body: string) => new HttpError(400, "Bad Request", body, undefined, "application/json");
    expect(
      offendingLine(
        influx(
          `{"code":"invalid","message":"failed to parse line protocol: error parsing line 2 (1-based)"}`,
        ),
        lines,
      ),
    ).toEqual({ line: "b v=x 2", named: true });
    expect(
      offendingLine(influx(`{"code":"invalid","message":"unable to parse 'b v=x 2': bad field"}`), lines),
    ).toEqual({ line: "b v=x 2", named: true });
    expect(offendingLine(influx(`{"code":"invalid","message":"no"}`), lines)).toEqual({
      line: "a v=1 1",
      named: false,
    });
  });
});

describe.skipIf(skip)("InfluxWriter against a real VictoriaMetrics", () => {
  let vm: VictoriaMetrics;

  beforeAll(async () => {
    vm = await VictoriaMetrics.start();
  });

  afterAll(async () => {
    await vm?.stop();
  });

  let lastScrape = 0;
  /**
   * A counter from VictoriaMetrics' own /metrics page (summed over the lines starting with
   * `selector`). The page is regenerated at most once a second, so a scrape waits until the
   * previous one is more than a second old, to read current values.
   */
  async function vmCounter(selector: string): Promise<number> {
    const wait = lastScrape + 1100 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const text = await (await fetch(`${vm.url}/metrics`)).text();
    lastScrape = Date.now();
    return text
      .split("\n")
      .filter((line) => line.startsWith(selector))
      .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
  }

  it("writes every measurement of the schema: names, labels, values, event timestamps", async () => {
    const writer = newWriter({ url: vm.url });
    const times = [T0 + 123.456789, T0 + 60_000.999];
    const expected: ExportedSeries[] = [];
    for (const measurement of MEASUREMENTS) {
      const def: MeasurementDef = INFLUX_SCHEMA[measurement];
      const tags = Object.fromEntries(def.tags.map((tag) => [tag, `sc-${tag}`]));
      const fieldNames = Object.keys(def.fields);
      const value = (f: number, k: number) =>
        def.fields[fieldNames[f] as string] === "integer" ? f * 10 + k : f * 10 + k + 0.25;
      for (const [k, at] of times.entries()) {
        writer.write({
          measurement,
          tags,
          fields: Object.fromEntries(fieldNames.map((name, f) => [name, value(f, k)])),
          timestampNs: msToNs(at),
        } as AnySeriesPoint);
      }
      for (const [f, name] of fieldNames.entries()) {
        expected.push({
          metric: { __name__: `${measurement}_${name}`, ...tags },
          values: [value(f, 0), value(f, 1)],
          // ns cut to ms by VictoriaMetrics
          timestamps: [T0 + 123, T0 + 60_000],
        });
      }
    }
    await writer.flush();
    expect(writer.stats()).toMatchObject({ pointsWritten: 12, batchesWritten: 1, up: true, spoolPoints: 0 });

    for (const measurement of MEASUREMENTS) {
      const firstTag = INFLUX_SCHEMA[measurement].tags[0];
      const exported = await vm.exportSeries(`{__name__=~"${measurement}_.*",${firstTag}="sc-${firstTag}"}`);
      const want = expected
        .filter((e) => e.metric.__name__?.startsWith(`${measurement}_`))
        .sort((a, b) => ((a.metric.__name__ ?? "") < (b.metric.__name__ ?? "") ? -1 : 1));
      expect(exported, measurement).toEqual(want);
    }
    // Integer fields arrive as numbers (written as `14i`-style integers).
    const period = await vm.exportSeries(`indicators_period{symbol="sc-symbol"}`);
    expect(period.map((s) => s.values)).toEqual([[10, 11]]);
    expect(vm.logs()).toBe("");
  });

  it("throws and counts invalid points, never queues them; writeMany is all or nothing", async () => {
    const writer = newWriter({ url: vm.url });
    const good: AnySeriesPoint = {
      measurement: "trades",
      tags: { strategy_id: "val", symbol: "VAL", action: "BUY" },
      fields: { price: 10, quantity: 1 },
      timestampNs: msToNs(T0),
    };
    expect(() => writer.write({ ...good, fields: { price: Number.NaN } })).toThrow(ValidationError);
    expect(() => writer.write({ ...good, measurement: "fills" } as unknown as AnySeriesPoint)).toThrow(
      "invalid measurement",
    );
    expect(() =>
      writer.writeMany([good, { ...good, fields: { pnl: Number.NEGATIVE_INFINITY } }, good]),
    ).toThrow("invalid points.1.fields.pnl");
    expect(writer.stats()).toMatchObject({ rejectedPoints: 5, bufferedPoints: 0 });
    writer.write(good);
    await writer.close();
    expect(writer.stats()).toMatchObject({ rejectedPoints: 5, pointsWritten: 1 });
    expect(() => writer.write(good)).toThrow(StateError);
    expect((await vm.exportSeries(`trades_price{strategy_id="val"}`)).map((s) => s.values)).toEqual([[10]]);
  });

  it("cuts a batch at batchSize without waiting for the timer", async () => {
    const writer = newWriter({ url: vm.url, batchSize: 100, flushIntervalMs: 60_000 });
    const requestsBefore = await vmCounter(`vm_http_requests_total{path="/influx/write"`);
    writer.writeMany(tickGrid("SZ", "size", 1, 250, T0));
    await waitFor("two full batches", () => writer.stats().pointsWritten === 200);
    expect(writer.stats()).toMatchObject({ batchesWritten: 2, bufferedPoints: 50, spoolPoints: 0 });
    expect(writer.stats().pointsPerSecond).toBeGreaterThan(0);
    expect(await vmCounter(`vm_http_requests_total{path="/influx/write"`)).toBe(requestsBefore + 2);
    expect((await vm.exportSeries(`ticks_close{source="size"}`))[0]?.values).toHaveLength(200);

    await writer.flush();
    expect(writer.stats()).toMatchObject({ pointsWritten: 250, batchesWritten: 3, bufferedPoints: 0 });
    expectGrid(await vm.exportSeries(`ticks_close{source="size"}`), "SZ", 1, 250, T0);
  });

  it("sends a lone point by the timer (default 1 s) without flush()", async () => {
    const writer = newWriter({ url: vm.url });
    expect(writer.flushIntervalMs).toBeLessThanOrEqual(1000);
    const start = Date.now();
    writer.write({
      measurement: "positions",
      tags: { strategy_id: "timer", symbol: "TMR", trade_id: "T1" },
      fields: { price: 101.5 },
      timestampNs: msToNs(T0 + 5000),
    });
    expect(writer.stats()).toMatchObject({ bufferedPoints: 1, pointsWritten: 0 });
    await waitFor("the timer flush", () => writer.stats().pointsWritten === 1, 5000);
    const elapsed = Date.now() - start;
    expect(elapsed).toBeGreaterThanOrEqual(990);
    expect(elapsed).toBeLessThan(2000);
    await waitFor("the point in VictoriaMetrics", async () => {
      const found = await vm.exportSeries(`positions_price{strategy_id="timer"}`);
      return found[0]?.values[0] === 101.5;
    });
    expect(Date.now() - start).toBeLessThan(3000);
  });

  /** Bytes VictoriaMetrics read over HTTP (request bodies as sent, headers and all). */
  const READ_BYTES = `vm_tcplistener_read_bytes_total{name="http"`;

  /**
   * Sends `points` as one batch through a writer with `options`; returns the Content-Encoding of
   * each write request on the wire and the bytes VictoriaMetrics read meanwhile.
   */
  async function sendOneBatch(points: AnySeriesPoint[], options: Partial<InfluxWriterOptions> = {}) {
    const encodings: unknown[] = [];
    const onRequest = (message: unknown) => {
      const request = (message as { request: ClientRequest }).request;
      if (request.path.startsWith("/api/v2/write")) encodings.push(request.getHeader("content-encoding"));
    };
    subscribe("http.client.request.start", onRequest);
    try {
      const writer = newWriter({ url: vm.url, batchSize: points.length, ...options });
      const before = await vmCounter(READ_BYTES);
      writer.writeMany(points);
      await writer.flush();
      const read = (await vmCounter(READ_BYTES)) - before;
      expect(writer.stats()).toMatchObject({ pointsWritten: points.length, batchesWritten: 1 });
      return { encodings, read };
    } finally {
      unsubscribe("http.client.request.start", onRequest);
    }
  }

  it("gzips the request body (header on the wire, and bytes VictoriaMetrics actually read)", async () => {
    expect(GZIP_THRESHOLD_BYTES).toBe(1000);
    const points = tickGrid("GZ", "gzip", 4, 500, T0);
    const body = points.map((p) => toLineProtocol(p)).join("\n");
    const rawBytes = Buffer.byteLength(body);

    // Calibration: the counter counts body bytes, so a plain upload of the same lines costs at
    // least their size.
    const beforePlain = await vmCounter(READ_BYTES);
    const plain = await fetch(`${vm.url}/api/v2/write?precision=ns&db=plain`, { method: "POST", body });
    expect(plain.status).toBe(204);
    expect((await vmCounter(READ_BYTES)) - beforePlain).toBeGreaterThanOrEqual(rawBytes);

    const { encodings, read } = await sendOneBatch(points);
    expect(encodings).toEqual(["gzip"]);
    // Request line, headers and the next /metrics request included, still a fraction of the body.
    expect(read).toBeLessThan(rawBytes / 5);
    expectGrid(await vm.exportSeries(`ticks_close{source="gzip",db!="plain"}`), "GZ", 4, 500, T0);
  });

  it("sends the body as it is with gzip off (no header, every byte read)", async () => {
    const points = tickGrid("NZ", "nogzip", 4, 500, T0);
    const rawBytes = Buffer.byteLength(points.map((p) => toLineProtocol(p)).join("\n"));
    const { encodings, read } = await sendOneBatch(points, { gzip: false });
    expect(encodings).toEqual([undefined]);
    expect(read).toBeGreaterThanOrEqual(rawBytes);
    expectGrid(await vm.exportSeries(`ticks_close{source="nogzip"}`), "NZ", 4, 500, T0);
  });

  it("spools 50,000 points while VictoriaMetrics is down and replays each once, in order", async () => {
    // VictoriaMetrics sorts what it stores, so the send order is observed at the client: every
    // batch the real transport sent and got a 2xx for, in order.
    const { logger, entries } = memoryLogger();
    const writer = newWriter({ url: vm.url, minBackoffMs: 50, maxBackoffMs: 400, logger });
    const delivered: string[][] = [];
    const transport = (writer as unknown as { client: InfluxDB }).client.transport;
    const send = transport.send.bind(transport);
    transport.send = (path, body, options, callbacks) =>
      send(path, body, options, {
        ...callbacks,
        complete: () => {
          delivered.push(String(body).split("\n"));
          callbacks?.complete?.();
        },
      });
    const t0 = T0 + 86_400_000;
    await vm.kill();

    const grid = tickGrid("OUT", "outage", 50, 1000, t0);
    for (let i = 0; i < grid.length; i += 50) writer.writeMany(grid.slice(i, i + 50));
    await writer.flush();
    expect(writer.stats()).toMatchObject({
      pointsWritten: 0,
      spooledPoints: 50_000,
      spoolPoints: 50_000,
      spoolBatches: 10,
      bufferedPoints: 0,
      droppedPoints: 0,
      up: false,
    });
    expect(writer.stats().retries).toBeGreaterThanOrEqual(1);
    expect(writer.stats().lastError).toContain("ECONNREFUSED");
    expect(entries.some((e) => e.msg === "influx write failed: spooling" && e.level === 40)).toBe(true);

    await vm.launch();
    await waitFor("the spool to drain", () => writer.stats().spoolPoints === 0, 20_000);
    expect(writer.stats()).toMatchObject({
      pointsWritten: 50_000,
      batchesWritten: 10,
      spoolBatches: 0,
      failedPoints: 0,
      up: true,
    });
    expect(entries.some((e) => e.msg === "influx writes succeed again")).toBe(true);

    // Sent exactly in write order: each point once, every series in time order.
    expect(delivered).toHaveLength(10);
    expect(delivered.flat()).toEqual(grid.map((p) => toLineProtocol(p)));

    const exported = await vm.exportSeries(`ticks_close{source="outage"}`);
    expect(exported).toHaveLength(50);
    expectGrid(exported, "OUT", 50, 1000, t0);
  });

  it("close() leaves what it cannot send in the spool; the next writer on the file sends it", async () => {
    const spoolPath = spoolFile();
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const first = new InfluxWriter({
      url: nowhere,
      org: "velox",
      bucket: "trading",
      spoolPath,
      minBackoffMs: 50,
      closeTimeoutMs: 300,
    });
    first.writeMany(tickGrid("CL", "close", 2, 600, T0));
    const start = Date.now();
    await first.close();
    expect(Date.now() - start).toBeLessThan(2000);
    expect(first.stats()).toMatchObject({ spoolPoints: 1200, bufferedPoints: 0, pointsWritten: 0 });

    const second = newWriter({ url: vm.url, spoolPath });
    await waitFor("the spool to drain", () => second.stats().spoolPoints === 0);
    expect(second.stats()).toMatchObject({ pointsWritten: 1200, up: true });
    expectGrid(await vm.exportSeries(`ticks_close{source="close"}`), "CL", 2, 600, T0);
  });

  it("loses nothing when the writing process is SIGKILLed with a full spool", async () => {
    const spoolPath = spoolFile();
    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const [series, perSeries, t0] = [4, 1500, T0 + 2 * 86_400_000];
    const { child, exited } = await startFixtureUntil(
      "test/fixtures/influx-spool-writer.ts",
      [spoolPath, nowhere, String(series), String(perSeries), String(t0)],
      `spooled ${series * perSeries}`,
    );
    expect(child.kill("SIGKILL")).toBe(true);
    expect(await exited).toEqual({ code: null, signal: "SIGKILL" });

    const writer = newWriter({ url: vm.url, spoolPath });
    await waitFor("the spool to drain", () => writer.stats().spoolPoints === 0);
    expect(writer.stats()).toMatchObject({ pointsWritten: series * perSeries, batchesWritten: 12, up: true });
    expectGrid(await vm.exportSeries(`ticks_close{source="spoolkill"}`), "K", series, perSeries, t0);
  });

  it("logs and drops a batch the server refuses with 400, without retrying it", async () => {
    // VictoriaMetrics answers 400 "unsupported path requested" under an unknown base path.
    const { logger, entries } = memoryLogger();
    const writer = newWriter({ url: `${vm.url}/not-influx`, logger });
    const points = tickGrid("BAD", "rejected", 3, 1, T0);
    writer.writeMany(points);
    await writer.flush();
    expect(writer.stats()).toMatchObject({
      failedPoints: 3,
      pointsWritten: 0,
      retries: 0,
      spoolPoints: 0,
      spooledPoints: 0,
      bufferedPoints: 0,
      up: true,
    });
    expect(writer.stats().lastError).toContain("HTTP 400");
    const logged = entries.find((e) => e.msg === "influx refused a batch: dropped, not retried");
    expect(logged).toMatchObject({
      level: 50,
      status: 400,
      points: 3,
      firstLine: toLineProtocol(points[0] as AnySeriesPoint),
    });
    expect(String(logged?.err)).toContain("unsupported path requested");
    expect(vm.logs()).toContain("unsupported path requested");
  });

  it("keeps points spooled on 401 (a configuration error) until a writer that can write sends them", async () => {
    // A second real server with HTTP basic auth: the client's `Authorization: Token …` gets 401.
    const guarded = await VictoriaMetrics.start(["-httpAuth.username=velox", "-httpAuth.password=secret"]);
    try {
      const spoolPath = spoolFile();
      const { logger, entries } = memoryLogger();
      const first = new InfluxWriter({
        url: guarded.url,
        token: "not-what-it-wants",
        org: "velox",
        bucket: "trading",
        spoolPath,
        minBackoffMs: 50,
        maxBackoffMs: 100,
        closeTimeoutMs: 200,
        logger,
      });
      first.writeMany(tickGrid("AUTH", "auth", 2, 5, T0));
      await first.flush();
      await waitFor("a few retries", () => first.stats().retries >= 3);
      expect(first.stats()).toMatchObject({ up: false, failedPoints: 0, spoolPoints: 10, pointsWritten: 0 });
      expect(first.stats().lastError).toContain("HTTP 401");
      // One error line for the outage, not one per retry.
      expect(entries.filter((e) => e.level === 50)).toHaveLength(1);
      await first.close();
      expect(first.stats().spoolPoints).toBe(10);

      const second = newWriter({ url: vm.url, spoolPath });
      await waitFor("the spool to drain", () => second.stats().spoolPoints === 0);
      expectGrid(await vm.exportSeries(`ticks_close{source="auth"}`), "AUTH", 2, 5, T0);
    } finally {
      await guarded.stop();
    }
  });

  it("answers health() from the server's /health", async () => {
    expect(await newWriter({ url: vm.url }).health()).toBe(true);
    expect(await newWriter({ url: `http://127.0.0.1:${await freePort()}` }).health()).toBe(false);
  });
});
