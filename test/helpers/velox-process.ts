import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./redis-server.js";

/** A `velox` CLI run in a child process, as a user would start it (from the TypeScript source). */
export interface VeloxRun {
  child: ChildProcess;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  output(): string;
  /** What it wrote to stderr alone. */
  errors(): string;
}

/** Starts `velox <args>`; the API and metrics ports are free ones unless `env` names them. */
export async function startVelox(args: string[], env: Record<string, string>): Promise<VeloxRun> {
  const ports = { VELOX_API_PORT: String(await freePort()), VELOX_METRICS_PORT: String(await freePort()) };
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", ...args], {
    env: { ...process.env, VELOX_LOG_LEVEL: "info", ...ports, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  let errors = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    text += chunk.toString();
    errors += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, exited, output: () => text, errors: () => errors };
}

/** The JSON log records a run wrote to `logDir`. */
export function logRecords(logDir: string): Record<string, unknown>[] {
  return readdirSync(logDir)
    .filter((f) => f.endsWith(".json"))
    .flatMap((f) =>
      readFileSync(join(logDir, f), "utf8")
        .split("\n")
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    );
}

/** The `summary` object of a run's closing log line. */
export function runSummary(logDir: string): Record<string, unknown> {
  const record = logRecords(logDir).find((r) => typeof r.msg === "string" && r.msg.startsWith("summary:"));
  if (!record) throw new Error(`no summary line in ${logDir}`);
  return record.summary as Record<string, unknown>;
}
