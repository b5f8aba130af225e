import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipWithout } from "../helpers/backend.js";
import { VICTORIA_METRICS, VictoriaMetrics } from "../helpers/victoria-metrics.js";

const skip = skipWithout(VICTORIA_METRICS, "the InfluxDB write-path tests");

/** The path and query InfluxDB 2 clients use; org and bucket are ignored by VictoriaMetrics. */
const WRITE = "/api/v2/write?org=x&bucket=y&precision=ns";

describe.skipIf(skip)("VictoriaMetrics as the InfluxDB 2 write target", () => {
  let vm: VictoriaMetrics;

  beforeAll(async () => {
    vm = await VictoriaMetrics.start();
  });

  afterAll(async () => {
    await vm?.stop();
  });

  async function write(lines: string, init: { path?: string; gzip?: boolean } = {}): Promise<number> {
    const body = init.gzip ? await promisify(gzip)(lines) : lines;
    const response = await fetch(`${vm.url}${init.path ?? WRITE}`, {
      method: "POST",
      headers: {
        "Content-Type": "text/plain; charset=utf-8",
        ...(init.gzip ? { "Content-Encoding": "gzip" } : {}),
      },
      body,
    });
    await response.arrayBuffer();
    return response.status;
  }

  it("maps measurement_field to metric names, tags to labels, and cuts ns to ms", async () => {
    const status = await write(
      [
        `ticks,symbol=AAPL,venue=NASDAQ price=189.25,size=100i,side="buy",halted=false 1700000000123456789`,
        `ticks,symbol=MSFT price=370.5,size=7i 1700000000999999999`,
        `ticks,symbol=AAPL,venue=NASDAQ price=189.5,size=50i 1700000001000000001`,
      ].join("\n"),
    );
    expect(status).toBe(204);

    expect(await vm.exportSeries(`{__name__=~"ticks_.*"}`)).toEqual([
      {
        metric: { __name__: "ticks_halted", symbol: "AAPL", venue: "NASDAQ" },
        values: [0],
        timestamps: [1700000000123],
      },
      {
        metric: { __name__: "ticks_price", symbol: "AAPL", venue: "NASDAQ" },
        values: [189.25, 189.5],
        // ...456789 ns and ...000001 ns: truncated, not rounded
        timestamps: [1700000000123, 1700000001000],
      },
      { metric: { __name__: "ticks_price", symbol: "MSFT" }, values: [370.5], timestamps: [1700000000999] },
      {
        // This VictoriaMetrics keeps a string field, as the value 0; it does not drop it.
        metric: { __name__: "ticks_side", symbol: "AAPL", venue: "NASDAQ" },
        values: [0],
        timestamps: [1700000000123],
      },
      {
        // integer fields lose their `i` and become plain numbers
        metric: { __name__: "ticks_size", symbol: "AAPL", venue: "NASDAQ" },
        values: [100, 50],
        timestamps: [1700000000123, 1700000001000],
      },
      { metric: { __name__: "ticks_size", symbol: "MSFT" }, values: [7], timestamps: [1700000000999] },
    ]);
    expect(vm.logs()).toBe("");
  });

  it("accepts a gzip body, escaped tags, unsigned and boolean fields, and single-field lines", async () => {
    const status = await write(
      [
        String.raw`fills,account=paper\ 1,side=buy qty=3i,fee=0.25,rebate=2u,maker=true 1700000100000000000`,
        `equity value=100000.5 1700000100500000000`,
      ].join("\n"),
      { gzip: true },
    );
    expect(status).toBe(204);
    expect(await vm.exportSeries(`{__name__=~"fills_.*|equity_.*"}`)).toEqual([
      { metric: { __name__: "equity_value" }, values: [100000.5], timestamps: [1700000100500] },
      {
        metric: { __name__: "fills_fee", account: "paper 1", side: "buy" },
        values: [0.25],
        timestamps: [1700000100000],
      },
      {
        metric: { __name__: "fills_maker", account: "paper 1", side: "buy" },
        values: [1],
        timestamps: [1700000100000],
      },
      {
        metric: { __name__: "fills_qty", account: "paper 1", side: "buy" },
        values: [3],
        timestamps: [1700000100000],
      },
      {
        metric: { __name__: "fills_rebate", account: "paper 1", side: "buy" },
        values: [2],
        timestamps: [1700000100000],
      },
    ]);
  });

  it("adds a db label only from a db query argument, never from org or bucket", async () => {
    expect(await write(`dbtest,t=v2 f=1 1700000200000000000`, { path: WRITE })).toBe(204);
    expect(await write(`dbtest,t=v1 f=2 1700000200000000000`, { path: "/write?db=trading" })).toBe(204);
    expect(
      await write(`dbtest,t=ms f=3 1700000200001`, { path: "/api/v2/write?bucket=y&precision=ms" }),
    ).toBe(204);
    expect(await vm.exportSeries("dbtest_f")).toEqual([
      { metric: { __name__: "dbtest_f", db: "trading", t: "v1" }, values: [2], timestamps: [1700000200000] },
      { metric: { __name__: "dbtest_f", t: "ms" }, values: [3], timestamps: [1700000200001] },
      { metric: { __name__: "dbtest_f", t: "v2" }, values: [1], timestamps: [1700000200000] },
    ]);
  });

  it("answers 204 even for a malformed line, which it skips and logs", async () => {
    const status = await write([`bad line here`, `good v=1 1700000300000000000`].join("\n"));
    expect(status).toBe(204);
    expect(await vm.exportSeries("good_v")).toEqual([
      { metric: { __name__: "good_v" }, values: [1], timestamps: [1700000300000] },
    ]);
    expect(vm.logs()).toContain(`cannot unmarshal InfluxDB line "bad line here"`);
  });

  it("keeps persisted points across a SIGKILL and comes back on the same port and data dir", async () => {
    const url = vm.url;
    const pid = vm.pid;
    expect(await write(`crash,when=before v=1 1700000400000000000`)).toBe(204);
    await vm.persist();
    await vm.kill();
    await expect(fetch(`${url}/health`)).rejects.toThrow();

    await vm.launch();
    expect(vm.url).toBe(url);
    expect(vm.pid).not.toBe(pid);
    expect(await write(`crash,when=after v=2 1700000400001000000`)).toBe(204);
    expect(await vm.exportSeries("crash_v")).toEqual([
      { metric: { __name__: "crash_v", when: "after" }, values: [2], timestamps: [1700000400001] },
      { metric: { __name__: "crash_v", when: "before" }, values: [1], timestamps: [1700000400000] },
    ]);
  });
});
