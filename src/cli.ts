#!/usr/bin/env node
import { Command, InvalidArgumentError, Option } from "commander";
import { runMain } from "./app/run.js";
import { type Config, type EnvName, loadConfig } from "./config.js";
import { VeloxError } from "./domain/errors.js";

/** Parses a positive number for a flag; commander reports the message with the flag's name. */
function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a positive number");
  return n;
}

/** Flags that override a VELOX_* variable, by that variable's name. */
const CONFIG_FLAGS: { flag: string; env: EnvName; description: string }[] = [
  { flag: "--data-dir <dir>", env: "VELOX_DATA_DIR", description: "local state directory" },
  { flag: "--sqlite-path <file>", env: "VELOX_SQLITE_PATH", description: "SQLite trade journal" },
  { flag: "--redis-url <url>", env: "VELOX_REDIS_URL", description: "Redis hot cache (unset: none)" },
  { flag: "--api-port <port>", env: "VELOX_API_PORT", description: "HTTP API port" },
  { flag: "--metrics-port <port>", env: "VELOX_METRICS_PORT", description: "Prometheus exporter port" },
  { flag: "--log-dir <dir>", env: "VELOX_LOG_DIR", description: "log file directory" },
  {
    flag: "--log-level <level>",
    env: "VELOX_LOG_LEVEL",
    description: "trace|debug|info|warn|error|fatal|silent",
  },
];

function addConfigFlags(command: Command): Command {
  for (const { flag, env, description } of CONFIG_FLAGS) {
    command.addOption(new Option(flag, `${description} [env: ${env}]`));
  }
  return command;
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

const program = new Command()
  .name("velox")
  .description("Paper-trading data and observability engine")
  .showHelpAfterError();

addConfigFlags(
  program
    .command("run")
    .description("run the engine on the configured stores until Ctrl-C (or --duration)")
    .option("--duration <seconds>", "stop after this many seconds", positiveNumber)
    .option("--status-interval <seconds>", "seconds between status lines", positiveNumber, 5),
).action(async (options: Record<string, unknown>) => {
  const config = configFrom(options);
  const code = await runMain(config, {
    durationSeconds: options.duration as number | undefined,
    statusIntervalSeconds: options.statusInterval as number,
  });
  process.exitCode = code;
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
