import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { InfluxDB } from "@influxdata/influxdb-client";
import { beforeAll, describe, expect, it } from "vitest";
import { ConfigError, StoreUnavailableError, ValidationError } from "../../src/domain/errors.js";
import { INFLUX_SCHEMA, MEASUREMENTS } from "../../src/schema/influx.js";
import {
  buildQuery,
  InfluxQueryClient,
  paramsPrelude,
  QUERIES,
  QUERY_DEFINITIONS,
  type QueryInput,
  type QueryName,
} from "../../src/storage/influx-queries.js";
import { fluxAst, fluxCalls, fluxDiagnostics } from "../helpers/flux.js";
import { type AstNode, checkSchemaNames, FLUX_COLUMNS, stringLiteral, walk } from "../helpers/flux-schema.js";

const START = new Date("2025-05-09T08:00:00Z");
const STOP = Date.parse("2025-05-09T16:00:00Z");
const START_TEXT = "2025-05-09T08:00:00.000Z";
const STOP_TEXT = "2025-05-09T16:00:00.000Z";

/** Realistic inputs for every query, and the `params` record each must bind. */
const INPUTS: { [N in QueryName]: QueryInput<N> } = {
  tickRange: { bucket: "trading", symbol: "RELIANCE", start: START, stop: STOP },
  indicators: { bucket: "trading", symbol: "BRK.B", indicatorType: "rsi_14", start: START, stop: STOP },
  positionHistory: { bucket: "trading", tradeId: "T-20250509-0001", start: START, stop: STOP },
  slTimeline: { bucket: "trading", tradeId: "T-20250509-0001", start: START, stop: STOP },
  strategyPerformance: { bucket: "trading", strategyId: "momentum_v2", start: START, stop: STOP },
};
const EXPECTED_PARAMS: { [N in QueryName]: Record<string, string> } = {
  tickRange: { bucket: "trading", symbol: "RELIANCE", start: START_TEXT, stop: STOP_TEXT },
  indicators: {
    bucket: "trading",
    symbol: "BRK.B",
    indicatorType: "rsi_14",
    start: START_TEXT,
    stop: STOP_TEXT,
  },
  positionHistory: { bucket: "trading", tradeId: "T-20250509-0001", start: START_TEXT, stop: STOP_TEXT },
  slTimeline: { bucket: "trading", tradeId: "T-20250509-0001", start: START_TEXT, stop: STOP_TEXT },
  strategyPerformance: { bucket: "trading", strategyId: "momentum_v2", start: START_TEXT, stop: STOP_TEXT },
};

const NAMES = Object.keys(QUERIES) as QueryName[];

/** buildQuery over a name chosen at run time (the catalogue's own names, inputs from INPUTS). */
const build = (name: QueryName, input: unknown, mode: "api" | "prelude" = "prelude") =>
  buildQuery(name, input as QueryInput<typeof name>, mode);

/** The `params = {...}` record a prelude query assigns: key to literal value (as the parser sees it). */
async function preludeRecord(source: string): Promise<Record<string, { type: string; value: string }>> {
  const ast = (await fluxAst(source)) as { body: AstNode[] };
  const first = ast.body[0] as { type: string; id: { name: string }; init: AstNode };
  expect(first.type).toBe("VariableAssignment");
  expect(first.id.name).toBe("params");
  expect(first.init.type).toBe("ObjectExpression");
  const record: Record<string, { type: string; value: string }> = {};
  for (const property of first.init.properties as { key: AstNode; value: AstNode }[]) {
    const key = property.key.type === "Identifier" ? String(property.key.name) : stringLiteral(property.key);
    record[String(key)] = { type: String(property.value.type), value: String(property.value.value) };
  }
  return record;
}

/**
 * The one diagnostic a prelude query gets: the server warns (severity 2) on any identifier named
 * `params`, because InfluxDB Cloud may inject one at runtime. That is exactly why the prelude is
 * only for servers that do not (OSS); the warning is pinned to the prelude's own `params` and
 * anything else (an error, a second warning) fails.
 */
const PRELUDE_WARNING = {
  message:
    "Avoid using `params` as an identifier name. In some InfluxDB contexts, it may be provided at runtime.",
  line: 0,
  character: 0,
  endLine: 0,
  endCharacter: "params".length,
  severity: 2,
};

// ---------------------------------------------------------------------------------------------

describe("query catalogue", () => {
  it("lists the five queries, each under its own name", () => {
    expect(QUERY_DEFINITIONS.map((d) => d.name)).toEqual([
      "tickRange",
      "indicators",
      "positionHistory",
      "slTimeline",
      "strategyPerformance",
    ]);
    for (const name of NAMES) expect(QUERIES[name].name).toBe(name);
  });

  it("holds no literal besides schema and Flux column names: input arrives only via params", async () => {
    const allowed = new Set<string>([...FLUX_COLUMNS, ...MEASUREMENTS]);
    for (const m of MEASUREMENTS) {
      for (const tag of INFLUX_SCHEMA[m].tags) allowed.add(tag);
      for (const field of Object.keys(INFLUX_SCHEMA[m].fields)) allowed.add(field);
    }
    for (const { name, flux } of QUERY_DEFINITIONS) {
      const literals: string[] = [];
      const paramsRead = new Set<string>();
      walk(await fluxAst(flux), (node) => {
        if (node.type !== undefined && String(node.type).endsWith("Literal"))
          literals.push(String(node.value));
        const object = node.object as AstNode | undefined;
        if (node.type === "MemberExpression" && object?.type === "Identifier" && object.name === "params") {
          paramsRead.add(String((node.property as AstNode).name));
        }
      });
      expect(literals, name).toContain(QUERIES[name as QueryName].measurement);
      expect(
        literals.filter((l) => !allowed.has(l)),
        name,
      ).toEqual([]);
      // Every label the query reads is one the params schema produces, and vice versa.
      expect([...paramsRead].sort(), name).toEqual(Object.keys(EXPECTED_PARAMS[name as QueryName]).sort());
    }
  });
});

describe("Flux language server", () => {
  it.each(QUERY_DEFINITIONS.map((d) => [d.name, d] as const))(
    "%s: the constant text has no diagnostics",
    async (_name, definition) => {
      expect(await fluxDiagnostics(definition.flux)).toEqual([]);
    },
  );

  it.each(NAMES)("%s: the built prelude query has no diagnostics with params a real record", async (name) => {
    const { query, params } = build(name, INPUTS[name]);
    expect(params).toBeUndefined();
    expect(query.split("\n")[0]).toMatch(/^params = \{/);
    // Nothing injected: `params` must be defined by the prelude, with every label the query reads.
    expect(await fluxDiagnostics(query, { injected: [] })).toEqual([PRELUDE_WARNING]);
    // The prelude adds no calls: the pipeline is exactly the constant one.
    expect(await fluxCalls(query)).toEqual(await fluxCalls(QUERIES[name].flux));
  });

  it("would notice a prelude that lacks a label the query reads", async () => {
    const { symbol: _dropped, ...rest } = EXPECTED_PARAMS.tickRange;
    const query = `${paramsPrelude(rest)}\n${QUERIES.tickRange.flux}`;
    const messages = (await fluxDiagnostics(query, { injected: [] })).map((d) => d.message);
    // (The server reports the type error alone; its `params` warning comes only from a clean check.)
    expect(messages).toEqual(["record is missing label symbol"]);
  });
});

describe("schema names", () => {
  it.each(QUERY_DEFINITIONS.map((d) => [d.name, d] as const))(
    "%s uses only measurement, tag and field names from INFLUX_SCHEMA",
    async (_name, definition) => {
      const report = await checkSchemaNames(definition.flux);
      expect(report.problems).toEqual([]);
      // The checker saw the query's measurement and at least one of its tags, so it is not vacuous.
      expect(report.measurements).toEqual([definition.measurement]);
      const tags: readonly string[] = INFLUX_SCHEMA[definition.measurement].tags;
      expect(report.columns.some((c) => tags.includes(c))).toBe(true);
    },
  );

  it.each([
    [
      "an unknown tag on trades (r.strategy)",
      `from(bucket: params.bucket) |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "trades" and r.strategy == params.strategyId)`,
      "trades has no tag or field strategy",
    ],
    [
      "a misspelt tag in bracket form",
      `from(bucket: params.bucket) |> range(start: -1h)
  |> filter(fn: (r) => r["_measurement"] == "strategy_metrics" and r["strateg_id"] == params.strategyId)`,
      "strategy_metrics has no tag or field strateg_id",
    ],
    [
      "an unknown measurement",
      `from(bucket: params.bucket) |> range(start: -1h) |> filter(fn: (r) => r._measurement == "tick")`,
      "measurement tick is not in INFLUX_SCHEMA",
    ],
    [
      "a keep list naming a column the measurement lacks",
      `from(bucket: params.bucket) |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "ticks")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> keep(columns: ["_time", "close", "closing"])`,
      "ticks has no tag or field closing",
    ],
    [
      "a _field literal from another measurement",
      `from(bucket: params.bucket) |> range(start: -1h)
  |> filter(fn: (r) => r._measurement == "ticks" and r._field == "pnl")`,
      "ticks has no field pnl",
    ],
    [
      "no measurement filter at all",
      `from(bucket: params.bucket) |> range(start: -1h) |> filter(fn: (r) => r.symbol == params.symbol)`,
      "no filter on a literal _measurement",
    ],
  ])("catches %s", async (_what, source, problem) => {
    expect(await fluxDiagnostics(source)).toEqual([]);
    expect((await checkSchemaNames(source)).problems).toContain(problem);
  });
});

describe("buildQuery", () => {
  it.each(NAMES)("%s: api mode sends the constant text and the params object", (name) => {
    expect(build(name, INPUTS[name], "api")).toEqual({
      query: QUERIES[name].flux,
      params: EXPECTED_PARAMS[name],
    });
  });

  it.each(NAMES)("%s: prelude mode binds exactly the expected params (checked on the AST)", async (name) => {
    const { query } = build(name, INPUTS[name]);
    expect(query.endsWith(`\n${QUERIES[name].flux}`)).toBe(true);
    const record = await preludeRecord(query);
    expect(Object.fromEntries(Object.entries(record).map(([k, v]) => [k, v.value]))).toEqual(
      EXPECTED_PARAMS[name],
    );
    for (const literal of Object.values(record)) expect(literal.type).toBe("StringLiteral");
  });

  it("accepts epoch milliseconds and Dates alike", () => {
    const a = build(
      "tickRange",
      { ...INPUTS.tickRange, start: START.getTime(), stop: new Date(STOP) },
      "api",
    );
    expect(a.params).toEqual(EXPECTED_PARAMS.tickRange);
  });

  it("defaults to prelude mode", () => {
    expect(buildQuery("slTimeline", INPUTS.slTimeline)).toEqual(build("slTimeline", INPUTS.slTimeline));
  });

  it("escapes an allowed bucket name that holds Flux string syntax (backslash, ${)", async () => {
    // Symbols and ids cannot hold such characters; bucket names can (InfluxDB forbids only `"`).
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Flux interpolation syntax is the point here
    const bucket = "desk\\${env}\\prod $x {y}";
    const { query } = build("tickRange", { ...INPUTS.tickRange, bucket });
    expect(query.split("\n")[0]).toContain(String.raw`bucket: "desk\\\${env}\\prod $x {y}"`);
    const record = await preludeRecord(query);
    expect(record.bucket).toEqual({ type: "StringLiteral", value: bucket });
    expect(Object.keys(record).sort()).toEqual(["bucket", "start", "stop", "symbol"]);
    // An unescaped `${env}` would be interpolation and report `undefined identifier env`.
    expect(await fluxDiagnostics(query, { injected: [] })).toEqual([PRELUDE_WARNING]);
    expect(await fluxCalls(query)).toEqual(await fluxCalls(QUERIES.tickRange.flux));
  });

  it("writes numbers as Flux integer and float literals", async () => {
    const prelude = paramsPrelude({ n: 5, x: 0.25 });
    const record = await preludeRecord(`${prelude}\nparams.n`);
    expect(record).toEqual({
      n: { type: "IntegerLiteral", value: "5" },
      x: { type: "FloatLiteral", value: "0.25" },
    });
  });

  it("refuses a parameter name that is not a Flux identifier", () => {
    expect(() => paramsPrelude({ "a b": "x" })).toThrow(/not a Flux identifier/);
  });
});

describe("input validation: rejected before anything is built", () => {
  const rejects = (name: QueryName, input: unknown, field: string) => {
    for (const mode of ["api", "prelude"] as const) {
      let caught: unknown;
      let built: unknown;
      try {
        built = build(name, input, mode);
      } catch (error) {
        caught = error;
      }
      expect(built).toBeUndefined();
      expect(caught).toBeInstanceOf(ValidationError);
      expect((caught as ValidationError).field).toBe(field);
    }
  };

  // biome-ignore lint/suspicious/noTemplateCurlyInString: Flux interpolation syntax is the point here
  it.each([['x") |> drop() //'], ['AAPL"'], [""], ["A".repeat(33)], ["aapl"], ["AAPL\n"], ["${x}"]])(
    "symbol %j",
    (symbol) => {
      rejects("tickRange", { ...INPUTS.tickRange, symbol }, "tickRange.symbol");
      rejects("indicators", { ...INPUTS.indicators, symbol }, "indicators.symbol");
    },
  );

  it("accepts a 32-character symbol", () => {
    expect(build("tickRange", { ...INPUTS.tickRange, symbol: "A".repeat(32) }, "api").params?.symbol).toBe(
      "A".repeat(32),
    );
  });

  it.each([["T 1"], ['T"1'], ["T'1"], [""], ["x".repeat(65)], ['x") |> drop() //']])(
    "trade id %j",
    (tradeId) => {
      rejects("positionHistory", { ...INPUTS.positionHistory, tradeId }, "positionHistory.tradeId");
      rejects("slTimeline", { ...INPUTS.slTimeline, tradeId }, "slTimeline.tradeId");
    },
  );

  it("strategy id and indicator type", () => {
    rejects(
      "strategyPerformance",
      { ...INPUTS.strategyPerformance, strategyId: 'm"' },
      "strategyPerformance.strategyId",
    );
    rejects("indicators", { ...INPUTS.indicators, indicatorType: "rsi 14" }, "indicators.indicatorType");
  });

  it("bucket", () => {
    rejects("tickRange", { ...INPUTS.tickRange, bucket: 'trading"' }, "tickRange.bucket");
    rejects("tickRange", { ...INPUTS.tickRange, bucket: "_monitoring" }, "tickRange.bucket");
    rejects("tickRange", { ...INPUTS.tickRange, bucket: "t" }, "tickRange.bucket");
    rejects("tickRange", { ...INPUTS.tickRange, bucket: "a\nb" }, "tickRange.bucket");
  });

  it("times", () => {
    const t = INPUTS.tickRange;
    rejects("tickRange", { ...t, start: "-1h" }, "tickRange.start");
    rejects("tickRange", { ...t, start: "2025-05-09T08:00:00Z" }, "tickRange.start");
    rejects("tickRange", { ...t, start: Number.NaN }, "tickRange.start");
    rejects("tickRange", { ...t, start: new Date("nope") }, "tickRange.start");
    rejects("tickRange", { ...t, stop: Date.UTC(2300, 0, 1) }, "tickRange.stop");
    rejects("tickRange", { ...t, stop: START }, "tickRange.stop");
    rejects("tickRange", { ...t, start: STOP, stop: START }, "tickRange.stop");
  });

  it("missing, unknown and non-object inputs", () => {
    const { tradeId: _missing, ...noTrade } = INPUTS.slTimeline;
    rejects("slTimeline", noTrade, "slTimeline.tradeId");
    rejects("slTimeline", { ...INPUTS.slTimeline, strategyId: "momentum_v2" }, "slTimeline");
    rejects("slTimeline", null, "slTimeline");
  });

  it("unknown query names and modes", () => {
    expect(() => buildQuery("dropAll" as QueryName, INPUTS.tickRange as never)).toThrow(ValidationError);
    expect(() => buildQuery("toString" as QueryName, INPUTS.tickRange as never)).toThrow(ValidationError);
    expect(() => buildQuery("tickRange", INPUTS.tickRange, "inline" as "api")).toThrow(ValidationError);
  });
});

// The client's requests are exercised for real only against InfluxDB 2
// (test/integration/influx-queries.test.ts, when VELOX_INFLUX_URL is set). No stand-in server
// answers here: these tests cover what needs no server at all.
describe("InfluxQueryClient without a server", () => {
  let closedUrl: string;

  beforeAll(async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    closedUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
    await new Promise((resolve) => probe.close(resolve));
  });

  const client = (mode?: "api" | "prelude") =>
    new InfluxQueryClient({
      influx: new InfluxDB({ url: closedUrl, token: "secret-token" }),
      org: "velox",
      bucket: "trading",
      ...(mode ? { mode } : {}),
    });
  const tickInput = { symbol: "RELIANCE", start: START, stop: STOP };

  it("rejects invalid input before any connection is tried", async () => {
    for (const mode of ["api", "prelude"] as const) {
      // A ValidationError, not a connection error: the request was never attempted.
      await expect(
        client(mode).query("tickRange", { ...tickInput, symbol: 'x") |> drop() //' }),
      ).rejects.toBeInstanceOf(ValidationError);
      await expect(
        client(mode).query("slTimeline", { tradeId: "a b", start: START, stop: STOP }),
      ).rejects.toThrow("slTimeline.tradeId");
    }
  });

  it("turns a refused connection into StoreUnavailableError in both modes", async () => {
    await expect(client().query("tickRange", tickInput)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(client("api").query("tickRange", tickInput)).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it("rejects an unknown mode", () => {
    expect(() => client("inline" as "api")).toThrow(ConfigError);
  });
});
