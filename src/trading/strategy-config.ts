import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { ConfigError } from "../domain/errors.js";
import { symbolSchema } from "../domain/identifiers.js";
import type { IndicatorRequest } from "./indicators.js";
import { marketSchema, timeframeSchema } from "./market-config.js";
import type { PaperBrokerOptions } from "./paper-broker.js";
import type { PositionSizing, StrategyTradeSettings } from "./position-tracker.js";
import { RSI_MEAN_REVERSION_DEFAULTS, RsiMeanReversion } from "./strategies/rsi-mean-reversion.js";
import type { Strategy } from "./strategies/strategy.js";
import { SUPERTREND_DEFAULTS, SupertrendStrategy } from "./strategies/supertrend.js";
import type { TrailingStopConfig } from "./trailing-stop.js";

/**
 * The strategies file (config/strategies.yaml): which strategies run, on which symbols, with what
 * position size, parameters and trailing stop, plus the paper broker's costs. Parsed with `yaml`,
 * validated with zod; a bad file stops start-up with a ConfigError naming the offending path,
 * e.g. `strategies[1].trailing_stop.percent: must be > 0`. Unknown keys are errors, so a typo
 * cannot silently fall back to a default.
 */

export const DEFAULT_STRATEGY_CONFIG_PATH = fileURLToPath(
  new URL("../../config/strategies.yaml", import.meta.url),
);

/** zod's message for a missing key is "expected X, received undefined": say "required" instead. */
const orRequired =
  (message: string) =>
  (issue: { input?: unknown }): string =>
    issue.input === undefined ? "required" : message;

/** Message of a discriminated union on `type` that matched no variant. */
const typeError =
  (types: readonly string[]) =>
  (issue: { input?: unknown }): string => {
    if (issue.input === undefined) return "required";
    if (typeof issue.input !== "object" || issue.input === null || Array.isArray(issue.input)) {
      return "must be a mapping with a type";
    }
    return `must be one of ${types.join(", ")}`;
  };

/** Strategy ids are short so that `strategy-symbol-seq` trade ids stay within 64 characters. */
const strategyIdSchema = z.string({ error: orRequired("must be a string") }).regex(/^[A-Za-z0-9._-]{1,24}$/, {
  message: "must be 1-24 characters of A-Z a-z 0-9 . _ -",
});

const num = () => z.number({ error: orRequired("must be a number") }).finite("must be a finite number");
const positive = () => num().gt(0, "must be > 0");
const nonNegative = () => num().min(0, "must be >= 0");
const percent = () => positive().lt(100, "must be < 100");
const period = () => num().int("must be a whole number").min(2, "must be >= 2").max(1000, "must be <= 1000");

const positionSizeSchema = z
  .strictObject({ quantity: positive().optional(), notional: positive().optional() })
  .refine((s) => (s.quantity === undefined) !== (s.notional === undefined), {
    message: "set exactly one of quantity or notional",
  })
  .transform(
    (s): PositionSizing =>
      s.quantity !== undefined ? { quantity: s.quantity } : { notional: s.notional ?? 0 },
  );

const TRAILING_STOP_TYPES = ["fixed_percent", "atr", "step"] as const;

const trailingStopSchema = z.discriminatedUnion(
  "type",
  [
    z.strictObject({ type: z.literal("fixed_percent"), percent: percent() }),
    z.strictObject({ type: z.literal("atr"), atr_multiple: positive(), atr_period: period().default(14) }),
    z.strictObject({
      type: z.literal("step"),
      step_percent: percent(),
      initial_percent: percent().optional(),
    }),
  ],
  { error: typeError(TRAILING_STOP_TYPES) },
);

const symbolsSchema = z.union(
  [z.literal("*"), z.array(symbolSchema).min(1, "must list at least one symbol")],
  {
    error: orRequired('must be "*" or a list of symbols'),
  },
);

const common = {
  id: strategyIdSchema,
  /** `tick` (every tick) or a bar timeframe of `market.timeframes`: the strategy sees closed bars. */
  timeframe: z.union([z.literal("tick"), timeframeSchema]).default("tick"),
  symbols: symbolsSchema,
  position_size: positionSizeSchema,
  trailing_stop: trailingStopSchema,
};

const rsiParamsSchema = z
  .strictObject({
    period: period().default(RSI_MEAN_REVERSION_DEFAULTS.period),
    oversold: percent().default(RSI_MEAN_REVERSION_DEFAULTS.oversold),
    exit_level: percent().default(RSI_MEAN_REVERSION_DEFAULTS.exit_level),
  })
  .refine((p) => p.exit_level > p.oversold, { path: ["exit_level"], message: "must be above oversold" });

const supertrendParamsSchema = z.strictObject({
  atr_period: period().default(SUPERTREND_DEFAULTS.atr_period),
  multiplier: positive().default(SUPERTREND_DEFAULTS.multiplier),
});

const STRATEGY_TYPES = ["rsi_mean_reversion", "supertrend"] as const;

const strategySchema = z.discriminatedUnion(
  "type",
  [
    z.strictObject({
      ...common,
      type: z.literal("rsi_mean_reversion"),
      params: rsiParamsSchema.prefault({}),
    }),
    z.strictObject({ ...common, type: z.literal("supertrend"), params: supertrendParamsSchema.prefault({}) }),
  ],
  { error: typeError(STRATEGY_TYPES) },
);

const brokerSchema = z.strictObject({
  slippage_bps: nonNegative().lt(10_000, "must be < 10000").default(0),
  fee_bps: nonNegative().default(0),
  fixed_fee: nonNegative().default(0),
});

const strategyFileSchema = z
  .strictObject({
    paper_broker: brokerSchema.prefault({}),
    /** At most one position snapshot per position per this many ms of tick time. */
    position_snapshot_interval_ms: nonNegative().default(1000),
    market: marketSchema.prefault({}),
    strategies: z
      .array(strategySchema, { error: orRequired("must be a list") })
      .min(1, "must list at least one strategy"),
  })
  .superRefine((file, ctx) => {
    const timeframes = new Set(file.market.timeframes);
    if (!timeframes.has(file.market.screener.timeframe)) {
      ctx.addIssue({
        code: "custom",
        path: ["market", "screener", "timeframe"],
        message: `must be one of market.timeframes (${file.market.timeframes.join(", ") || "none"})`,
      });
    }
    const seen = new Map<string, number>();
    file.strategies.forEach((s, i) => {
      if (s.timeframe !== "tick" && !timeframes.has(s.timeframe)) {
        ctx.addIssue({
          code: "custom",
          path: ["strategies", i, "timeframe"],
          message: `must be tick or one of market.timeframes (${file.market.timeframes.join(", ") || "none"})`,
        });
      }
      const first = seen.get(s.id);
      if (first !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["strategies", i, "id"],
          message: `duplicate id "${s.id}" (also strategies[${first}])`,
        });
      } else seen.set(s.id, i);
    });
  });

export type StrategyConfig = z.output<typeof strategyFileSchema>;
export type StrategySpec = StrategyConfig["strategies"][number];

/** `strategies[1].trailing_stop.percent` from zod's `["strategies", 1, "trailing_stop", "percent"]`. */
function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out || "(root)";
}

/** Validates an already-parsed config object. Throws ConfigError(path, reason) on the first problem. */
export function parseStrategyConfig(input: unknown): StrategyConfig {
  const result = strategyFileSchema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  if (!issue) throw new ConfigError("(root)", "invalid strategy configuration");
  throw new ConfigError(formatPath(issue.path), issue.message);
}

/** Parses YAML text; `source` names the file in errors. */
export function parseStrategyConfigYaml(text: string, source = "strategies.yaml"): StrategyConfig {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const { line } = lineCounter.linePos(yamlError.pos[0]);
    throw new ConfigError(source, `invalid YAML at line ${line}: ${yamlError.message}`);
  }
  try {
    return parseStrategyConfig(doc.toJS());
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(`${source}: ${err.variable}`, err.reason);
    throw err;
  }
}

export function loadStrategyConfig(path: string = DEFAULT_STRATEGY_CONFIG_PATH): StrategyConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(path, `cannot read the strategies file (${(err as Error).message})`);
  }
  return parseStrategyConfigYaml(text, path);
}

/** The strategy objects the config describes, in file order. */
export function buildStrategies(config: StrategyConfig): Strategy[] {
  return config.strategies.map((spec) => {
    switch (spec.type) {
      case "rsi_mean_reversion":
        return new RsiMeanReversion(spec.id, spec.symbols, spec.params);
      case "supertrend":
        return new SupertrendStrategy(spec.id, spec.symbols, spec.params);
      default:
        return assertNever(spec);
    }
  });
}

function assertNever(value: never): never {
  throw new ConfigError("strategies", `unknown strategy ${JSON.stringify(value)}`);
}

/** Sizing and trailing stop per strategy id, for the position tracker. */
export function tradeSettings(config: StrategyConfig): Map<string, StrategyTradeSettings> {
  return new Map(
    config.strategies.map((spec) => [
      spec.id,
      { sizing: spec.position_size, trailingStop: spec.trailing_stop satisfies TrailingStopConfig },
    ]),
  );
}

/** Indicator periods the trailing stops read (ATR stops need `atr_<period>`). */
export function stopIndicatorRequests(config: StrategyConfig): IndicatorRequest[] {
  return config.strategies.flatMap((spec) =>
    spec.trailing_stop.type === "atr" ? [{ atr: [spec.trailing_stop.atr_period] }] : [],
  );
}

export function brokerOptions(config: StrategyConfig): PaperBrokerOptions {
  return {
    slippageBps: config.paper_broker.slippage_bps,
    feeBps: config.paper_broker.fee_bps,
    fixedFee: config.paper_broker.fixed_fee,
  };
}
