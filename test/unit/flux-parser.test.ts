import { describe, expect, it } from "vitest";
import { fluxCalls, fluxDiagnostics } from "../helpers/flux.js";

const VALID = `from(bucket: params.bucket)
  |> range(start: params.start)
  |> filter(fn: (r) => r._measurement == "ticks" and r.symbol == params.symbol)
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")`;

const GRAFANA = `from(bucket: "trading")
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "ticks")
  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)`;

/** The unsafe way to put a value into Flux: splicing it into a string literal. */
const spliced = (symbol: string) => `from(bucket: "trading")
  |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "ticks" and r.symbol == "${symbol}")`;

describe("Flux checked by the Flux language server", () => {
  it("finds nothing wrong with a valid query that uses InfluxDB's params record", async () => {
    expect(await fluxDiagnostics(VALID)).toEqual([]);
    expect(await fluxCalls(VALID)).toEqual(["from", "range", "filter", "pivot"]);
  });

  it("finds nothing wrong with a valid query that uses Grafana's v record", async () => {
    expect(await fluxDiagnostics(GRAFANA)).toEqual([]);
  });

  it("reports params and v as undefined identifiers unless told they are injected", async () => {
    const raw = await fluxDiagnostics(VALID, { injected: [] });
    expect(raw.map((d) => d.message)).toEqual(Array(3).fill("undefined identifier params"));
    // 0-based positions of each `params`, as the LSP reports them.
    const lines = VALID.split("\n");
    expect(raw.map((d) => [d.line, d.character])).toEqual([
      [0, lines[0]?.indexOf("params")],
      [1, lines[1]?.indexOf("params")],
      [2, lines[2]?.indexOf("params")],
    ]);
    const grafana = await fluxDiagnostics(GRAFANA, { injected: [] });
    expect(new Set(grafana.map((d) => d.message))).toEqual(new Set(["undefined identifier v"]));
  });

  it("still reports other undefined identifiers and type errors", async () => {
    const typo = await fluxDiagnostics(`from(bucket: "b") |> range(start: -1h) |> fliter(fn: (r) => true)`);
    expect(typo.map((d) => d.message)).toEqual(["undefined identifier fliter"]);
    const wrongType = await fluxDiagnostics(`from(bucket: 1) |> range(start: -1h)`);
    expect(wrongType.map((d) => d.message)).toEqual(["expected string but found int (argument bucket)"]);
  });

  it("reports a missing operand with its position", async () => {
    const diagnostics = await fluxDiagnostics(`from(bucket: params.bucket)
  |> range(start: params.start)
  |> filter(fn: (r) => r.symbol == )`);
    expect(diagnostics).toEqual([
      {
        message: "invalid expression: invalid token for primary expression: RPAREN",
        line: 2,
        character: 35,
        endLine: 2,
        endCharacter: 36,
        severity: 1,
      },
    ]);
  });

  it("reports an unclosed parenthesis", async () => {
    const diagnostics = await fluxDiagnostics(`from(bucket: params.bucket
  |> range(start: params.start)`);
    expect(diagnostics.length).toBeGreaterThan(0);
    expect(diagnostics[0]).toMatchObject({ message: "expected RPAREN, got EOF", line: 0, severity: 1 });
  });

  it("shows what a value spliced into a string literal does: valid Flux, another pipeline", async () => {
    const safe = spliced("AAPL");
    const injected = spliced(`AAPL") |> drop() //`);
    expect(injected).toContain(`r.symbol == "AAPL") |> drop() //")`);
    // The server has nothing to say about either: the injection is well-formed Flux...
    expect(await fluxDiagnostics(safe)).toEqual([]);
    expect(await fluxDiagnostics(injected)).toEqual([]);
    // ...but the query now ends in a call the author never wrote; the rest of the line is a comment.
    expect(await fluxCalls(safe)).toEqual(["from", "range", "filter"]);
    expect(await fluxCalls(injected)).toEqual(["from", "range", "filter", "drop"]);
    // A clumsier injection breaks the syntax instead.
    const broken = await fluxDiagnostics(spliced(`AAPL") |> drop(`));
    expect(broken.length).toBeGreaterThan(0);
  });

  it("serves many documents from one server", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fluxDiagnostics(i % 2 === 0 ? VALID : `from(bucket: "b") |> range(start: -${i}h`),
      ),
    );
    results.forEach((diagnostics, i) => {
      if (i % 2 === 0) expect(diagnostics).toEqual([]);
      else expect(diagnostics.length).toBeGreaterThan(0);
    });
  });
});
