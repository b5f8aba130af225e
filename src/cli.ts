#!/usr/bin/env -S node --max-old-space-size=1024 --max-semi-space-size=8
import { Command, InvalidArgumentError, Option } from "commander";
import { runReplay, runSimulation } from "./app/run.js";
import { type Config, type EnvName, loadConfig } from "./config.js";
import { VeloxError } from "./domain/errors.js";

/** Parses a positive number for a flag; commander reports the message with the flag's name. */
function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError("expected a whole number ≥ 0");
  return n;
}

function speed(value: string): number | "max" {
  return value === "max" ? "max" : positiveNumber(value);
}

function epochMs(value: string): number {
  const n = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(n)) throw new InvalidArgumentError("expected an ISO 8601 time or epoch milliseconds");
  return n;
}

/** Flags that override a VELOX_* variable, by that variable's name. */
const CONFIG_FLAGS: { flag: string; env: EnvName; description: string }[] = [
  { flag: "--data-dir <dir>", env: "VELOX_DATA_DIR", description: "local state directory" },
  { flag: "--sqlite-path <file>", env: "VELOX_SQLITE_PATH", description: "SQLite trade journal" },
  { flag: "--redis-url <url>", env: "VELOX_REDIS_URL", description: "Redis hot cache (unset: none)" },
  { flag: "--influx-url <url>", env: "VELOX_INFLUX_URL", description: "InfluxDB 2 (unset: none)" },
  {
    flag: "--postgres-url <url>",
    env: "VELOX_POSTGRES_URL",
    description: "PostgreSQL / TimescaleDB history store (unset: none)",
  },
  {
    flag: "--kafka-brokers <list>",
    env: "VELOX_KAFKA_BROKERS",
    description: "Kafka host:port list (unset: none)",
  },
  { flag: "--api-port <port>", env: "VELOX_API_PORT", description: "HTTP API port" },
  { flag: "--metrics-port <port>", env: "VELOX_METRICS_PORT", description: "Prometheus exporter port" },
  { flag: "--log-dir <dir>", env: "VELOX_LOG_DIR", description: "log file directory" },
  {
    flag: "--log-level <level>",
    env: "VELOX_LOG_LEVEL",
    description: "trace|debug|info|warn|error|fatal|silent",
  },
];

/** Options every engine command takes. */
function engineCommand(command: Command): Command {
  for (const { flag, env, description } of CONFIG_FLAGS) {
    command.addOption(new Option(flag, `${description} [env: ${env}]`));
  }
  return command
    .option("--config <file>", "strategies file (default: config/strategies.yaml)")
    .option("--close-positions", "close open positions at the last price before exiting", false)
    .option("--run-id <id>", "prefix for this run's trade ids (default: derived from the start time)")
    .option("--status-interval <seconds>", "seconds between status lines", positiveNumber, 5);
}

function configFrom(options: Record<string, unknown>): Config {
  const overrides: Partial<Record<EnvName, string>> = {};
  for (const { flag, env } of CONFIG_FLAGS) {
    const key = (flag.split(" ")[0] ?? "")
      .replace(/^--/, "")
      .replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const value = options[key];
    if (typeof value === "string") overrides[env] = value;
  }
  return loadConfig(process.env, overrides);
}

function common(options: Record<string, unknown>) {
  return {
    strategiesPath: options.config as string | undefined,
    statusIntervalSeconds: options.statusInterval as number,
    closePositions: Boolean(options.closePositions),
    runId: options.runId as string | undefined,
  };
}

const program = new Command()
  .name("velox")
  .description("Paper-trading engine with its data and observability layer")
  // A bad flag is one line (commander's own) and a pointer to the help, then exit 2.
  .showHelpAfterError("(velox --help, or velox <command> --help, lists the flags)")
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));

engineCommand(
  program
    .command("run")
    .description("trade the seeded market simulator until Ctrl-C (or --duration)")
    .option("--duration <seconds>", "stop after this many seconds of simulated time", positiveNumber)
    .option("--rate <ticks/s>", "ticks per second across all symbols", positiveNumber, 100)
    .option("--symbols <n>", "number of simulated symbols (default: AAPL, MSFT, GOOGL)", positiveNumber)
    .option("--seed <n>", "random seed: the same seed gives the same ticks", wholeNumber, 42)
    .option("--start <time>", "time of the first tick, ISO 8601 or epoch ms (default: now)", epochMs),
).action(async (options: Record<string, unknown>) => {
  process.exitCode = await runSimulation(configFrom(options), {
    ...common(options),
    durationSeconds: options.duration as number | undefined,
    rate: options.rate as number,
    symbols: options.symbols as number | undefined,
    seed: options.seed as number,
    startTime: options.start as number | undefined,
  });
});

engineCommand(
  program
    .command("replay")
    .description("trade ticks from a CSV file (timestamp,symbol,open,high,low,close,volume[,bid,ask])")
    .argument("<file>", "CSV file with a header row")
    .option("--speed <x|max>", "multiple of real time by the file's timestamps, or max", speed, "max"),
).action(async (file: string, options: Record<string, unknown>) => {
  process.exitCode = await runReplay(configFrom(options), {
    ...common(options),
    path: file,
    speed: options.speed as number | "max",
  });
});

const sentiment = program
  .command("sentiment")
  .description("news and sentiment records (seed 004's stocks:sentiment:{symbol})");
sentiment
  .command("import")
  .description(
    "store one sentiment record per line of a JSON Lines file in Redis; bad lines are reported with their number and never stored (exit 1 if any)",
  )
  .argument(
    "<file>",
    "JSON Lines: {symbol, sentiment_score, sentiment_label, news_count, latest_news, timestamp} per line",
  )
  .addOption(new Option("--redis-url <url>", "Redis hot cache [env: VELOX_REDIS_URL]"))
  .action(async (file: string, options: Record<string, unknown>) => {
    const { runSentimentImport } = await import("./app/sentiment-import.js");
    process.exitCode = await runSentimentImport(configFrom(options), file);
  });

program
  .command("dashboards")
  .description("write the Grafana dashboards, their layout pictures and the provisioning files")
  .option("--check", "write nothing; exit 1 naming every file that differs from what would be written", false)
  .option("--root <dir>", "project root the files are written under", ".")
  .action(async (options: { check: boolean; root: string }) => {
    // Loaded on demand: the engine commands need none of the Grafana SDK.
    const { staleGenerated, writeGenerated } = await import("./grafana/generate.js");
    if (options.check) {
      const stale = staleGenerated(options.root);
      for (const path of stale)
        console.error(`velox dashboards: ${path} differs from the generator's output`);
      if (stale.length > 0) {
        console.error("velox dashboards: run `npm run dashboards` and commit the result");
        process.exitCode = 1;
      } else {
        console.log("velox dashboards: every generated file is up to date");
      }
      return;
    }
    for (const path of writeGenerated(options.root)) console.log(`wrote ${path}`);
  });

try {
  await program.parseAsync();
} catch (err) {
  // Expected failures (bad configuration, a refused schema) get one clear line, not a stack.
  if (err instanceof VeloxError) {
    console.error(`velox: ${err.message}`);
    process.exitCode = 2;
  } else {
    throw err;
  }
}
// Every store was closed within its deadline (src/app/run.ts) and the logs are flushed: whatever
// timer is still pending (a spool retry, a reconnect) must not keep the process alive.
process.exit(process.exitCode ?? 0);
