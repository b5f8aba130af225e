import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/domain/errors.js";
import { RsiMeanReversion } from "../../src/trading/strategies/rsi-mean-reversion.js";
import { SupertrendStrategy } from "../../src/trading/strategies/supertrend.js";
import {
  brokerOptions,
  buildStrategies,
  DEFAULT_STRATEGY_CONFIG_PATH,
  loadStrategyConfig,
  parseStrategyConfig,
  parseStrategyConfigYaml,
  stopIndicatorRequests,
  tradeSettings,
} from "../../src/trading/strategy-config.js";

function valid() {
  return {
    strategies: [
      {
        id: "st",
        type: "supertrend",
        symbols: "*",
        position_size: { quantity: 5 },
        trailing_stop: { type: "atr", atr_multiple: 2 },
      },
      {
        id: "rsi",
        type: "rsi_mean_reversion",
        symbols: ["RELIANCE", "TCS"],
        position_size: { notional: 5000 },
        params: { oversold: 25 },
        trailing_stop: { type: "fixed_percent", percent: 1.5 },
      },
    ],
  } as Record<string, unknown> & { strategies: Record<string, unknown>[] };
}

function errorOf(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("the shipped config/strategies.yaml", () => {
  it("validates, with one RSI and one Supertrend strategy over all symbols", () => {
    const config = loadStrategyConfig(DEFAULT_STRATEGY_CONFIG_PATH);
    expect(config.strategies.map((s) => [s.type, s.symbols])).toEqual([
      ["rsi_mean_reversion", "*"],
      ["supertrend", "*"],
    ]);
    const strategies = buildStrategies(config);
    expect(strategies[0]).toBeInstanceOf(RsiMeanReversion);
    expect(strategies[1]).toBeInstanceOf(SupertrendStrategy);
    expect(brokerOptions(config)).toEqual({ slippageBps: 2, feeBps: 3, fixedFee: 0 });
    expect(config.position_snapshot_interval_ms).toBe(1000);
  });
});

describe("parseStrategyConfig", () => {
  it("fills defaults and maps sizing and stops for the tracker", () => {
    const config = parseStrategyConfig(valid());
    expect(config.paper_broker).toEqual({ slippage_bps: 0, fee_bps: 0, fixed_fee: 0 });
    expect(config.strategies[0]).toMatchObject({
      params: { atr_period: 10, multiplier: 3 },
      trailing_stop: { type: "atr", atr_multiple: 2, atr_period: 14 },
    });
    expect(config.strategies[1]).toMatchObject({ params: { period: 14, oversold: 25, exit_level: 55 } });
    expect(tradeSettings(config).get("rsi")).toEqual({
      sizing: { notional: 5000 },
      trailingStop: { type: "fixed_percent", percent: 1.5 },
    });
    expect(tradeSettings(config).get("st")?.sizing).toEqual({ quantity: 5 });
    expect(stopIndicatorRequests(config)).toEqual([{ atr: [14] }]);
  });

  it.each([
    [
      "a non-positive stop percentage",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[1]?.trailing_stop as Record<string, unknown>).percent = 0;
      },
      "strategies[1].trailing_stop.percent",
      "must be > 0",
    ],
    [
      "an unknown strategy type",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[0] as Record<string, unknown>).type = "macd_cross";
      },
      "strategies[0].type",
      "must be one of rsi_mean_reversion, supertrend",
    ],
    [
      "an unknown stop type",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[0] as Record<string, unknown>).trailing_stop = { type: "chandelier" };
      },
      "strategies[0].trailing_stop.type",
      "must be one of fixed_percent, atr, step",
    ],
    [
      "a missing ATR multiple",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[0] as Record<string, unknown>).trailing_stop = { type: "atr" };
      },
      "strategies[0].trailing_stop.atr_multiple",
      "required",
    ],
    [
      "a misspelt key",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[1]?.trailing_stop as Record<string, unknown>).percnt = 2;
      },
      "strategies[1].trailing_stop",
      'Unrecognized key: "percnt"',
    ],
    [
      "both quantity and notional",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[0] as Record<string, unknown>).position_size = { quantity: 1, notional: 100 };
      },
      "strategies[0].position_size",
      "set exactly one of quantity or notional",
    ],
    [
      "an exit level below oversold",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[1] as Record<string, unknown>).params = { oversold: 40, exit_level: 35 };
      },
      "strategies[1].params.exit_level",
      "must be above oversold",
    ],
    [
      "a bad symbol",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[1] as Record<string, unknown>).symbols = ["RELIANCE", "tcs ltd"];
      },
      "strategies[1].symbols[1]",
      "must match [A-Z0-9._-]{1,32}",
    ],
    [
      "a symbols word other than *",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[1] as Record<string, unknown>).symbols = "all";
      },
      "strategies[1].symbols",
      'must be "*" or a list of symbols',
    ],
    [
      "a duplicate id",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[1] as Record<string, unknown>).id = "st";
      },
      "strategies[1].id",
      'duplicate id "st" (also strategies[0])',
    ],
    [
      "an id too long for trade ids",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[0] as Record<string, unknown>).id = "a_very_long_strategy_name_indeed";
      },
      "strategies[0].id",
      "must be 1-24 characters",
    ],
    [
      "a fractional period",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[0] as Record<string, unknown>).params = { atr_period: 10.5 };
      },
      "strategies[0].params.atr_period",
      "must be a whole number",
    ],
    [
      "a negative fee",
      (c: ReturnType<typeof valid>) => {
        c.paper_broker = { fee_bps: -1 };
      },
      "paper_broker.fee_bps",
      "must be >= 0",
    ],
    [
      "no strategies",
      (c: ReturnType<typeof valid>) => {
        c.strategies = [];
      },
      "strategies",
      "must list at least one strategy",
    ],
    [
      "a strategy on a timeframe that is not configured",
      (c: ReturnType<typeof valid>) => {
        (c.strategies[1] as Record<string, unknown>).timeframe = "15m";
      },
      "strategies[1].timeframe",
      "must be tick or one of market.timeframes (1m, 5m)",
    ],
    [
      "a screener on a timeframe that is not configured",
      (c: ReturnType<typeof valid>) => {
        c.market = { timeframes: ["5m"], screener: { timeframe: "1m" } };
      },
      "market.screener.timeframe",
      "must be one of market.timeframes (5m)",
    ],
    [
      "a timeframe that is not one",
      (c: ReturnType<typeof valid>) => {
        c.market = { timeframes: ["1m", "7x"] };
      },
      "market.timeframes[1]",
      "must look like 30s, 1m, 5m or 1h",
    ],
    [
      "a rule weight above 1",
      (c: ReturnType<typeof valid>) => {
        c.market = { screener: { rules: { breakout: { weight: 2 } } } };
      },
      "market.screener.rules.breakout.weight",
      "must be <= 1",
    ],
    [
      "an unknown key",
      (c: ReturnType<typeof valid>) => {
        c.market = { screner: {} };
      },
      "market",
      "screner",
    ],
  ])("names the path of %s", (_what, mutate, path, reason) => {
    const config = valid();
    mutate(config);
    const error = errorOf(() => parseStrategyConfig(config));
    expect(error.variable).toBe(path);
    expect(error.reason).toContain(reason);
    expect(error.message).toBe(`${path}: ${error.reason}`);
  });
});

describe("the market section", () => {
  it("defaults to 1 m and 5 m bars, a 10 s screener on 1 m bars, and tick strategies", () => {
    const config = parseStrategyConfig(valid());
    expect(config.market.timeframes).toEqual(["1m", "5m"]);
    expect(config.market.screener).toMatchObject({
      interval_seconds: 10,
      timeframe: "1m",
      lookback_bars: 20,
      top: 20,
    });
    expect(config.strategies.map((s) => s.timeframe)).toEqual(["tick", "tick"]);
  });
});

describe("YAML files", () => {
  it("prefixes errors with the file and reports YAML syntax errors with their line", () => {
    const text = [
      "strategies:",
      "  - id: rsi",
      "    type: rsi_mean_reversion",
      '    symbols: "*"',
      "    position_size: {quantity: 1}",
      "    trailing_stop: {type: step, step_percent: 150}",
    ].join("\n");
    expect(() => parseStrategyConfigYaml(text, "my.yaml")).toThrow(
      "my.yaml: strategies[0].trailing_stop.step_percent: must be < 100",
    );

    const broken = "strategies:\n  - id: a\n    id: b\n";
    const error = errorOf(() => parseStrategyConfigYaml(broken, "dup.yaml"));
    expect(error.message).toMatch(/^dup\.yaml: invalid YAML at line 3: /);
  });

  it("loads a file from disk and names a missing one", () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-strategies-"));
    const file = join(dir, "strategies.yaml");
    writeFileSync(
      file,
      "strategies:\n  - {id: x, type: supertrend, symbols: [AAA], position_size: {quantity: 1}, trailing_stop: {type: fixed_percent, percent: 1}}\n",
    );
    expect(loadStrategyConfig(file).strategies[0]?.id).toBe("x");
    expect(errorOf(() => loadStrategyConfig(join(dir, "nope.yaml"))).message).toMatch(
      /nope\.yaml: cannot read/,
    );
  });
});
