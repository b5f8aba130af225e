import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/redis-server.js";
import { startVelox } from "../helpers/velox-process.js";

/**
 * Whatever stops the start — a port that cannot be bound, a journal or data directory that cannot
 * be used, a log directory that cannot be written, a replay file that cannot be read, a bad flag —
 * ends the process within seconds with exit 2 and one line on stderr naming the setting or file.
 * (Before: a bound API port left the process hanging, the rest printed a stack and exited 1.)
 */

const dir = mkdtempSync(join(tmpdir(), "velox-cannot-start-"));
let held: Server;
let heldPort: number;

beforeAll(async () => {
  heldPort = await freePort();
  held = createServer();
  await new Promise<void>((resolve) => held.listen(heldPort, "127.0.0.1", resolve));
  writeFileSync(join(dir, "not-a-journal.db"), "this is not SQLite, whatever its name says\n".repeat(100));
  writeFileSync(join(dir, "a-file"), "x");
  mkdirSync(join(dir, "a-directory.db"));
  writeFileSync(join(dir, "empty.csv"), "");
  writeFileSync(join(dir, "wrong-header.csv"), "when,what,price\n1,AAPL,100\n");
});
afterAll(() => new Promise<void>((resolve) => held.close(() => resolve())));

const data = (name: string) => ({
  VELOX_DATA_DIR: join(dir, `data-${name}`),
  VELOX_LOG_DIR: join(dir, `logs-${name}`),
});

const CASES: { name: string; args: string[]; env: () => Record<string, string>; line: RegExp }[] = [
  {
    name: "the API port is in use",
    args: ["run", "--duration", "5"],
    env: () => ({ ...data("api"), VELOX_API_PORT: String(heldPort) }),
    line: /^velox: VELOX_API_PORT: port \d+ is in use$/,
  },
  {
    name: "the API port is the metrics port",
    args: ["run", "--duration", "5"],
    env: () => ({
      ...data("same"),
      VELOX_API_PORT: String(heldPort + 1),
      VELOX_METRICS_PORT: String(heldPort + 1),
    }),
    line: /^velox: VELOX_API_PORT: port \d+ is in use$/,
  },
  {
    name: "the metrics port is in use",
    args: ["run", "--duration", "5"],
    env: () => ({ ...data("metrics"), VELOX_METRICS_PORT: String(heldPort) }),
    line: /^velox: VELOX_METRICS_PORT: port \d+ is in use$/,
  },
  {
    name: "the journal path is a directory",
    args: ["run", "--duration", "5"],
    env: () => ({ ...data("dir"), VELOX_SQLITE_PATH: join(dir, "a-directory.db") }),
    line: /^velox: VELOX_SQLITE_PATH: .*a-directory\.db: cannot be opened/,
  },
  {
    name: "the journal is not SQLite",
    args: ["run", "--duration", "5"],
    env: () => ({ ...data("notdb"), VELOX_SQLITE_PATH: join(dir, "not-a-journal.db") }),
    line: /^velox: VELOX_SQLITE_PATH: .*not-a-journal\.db: is not an SQLite database/,
  },
  {
    name: "VELOX_DATA_DIR is a file",
    args: ["run", "--duration", "5"],
    env: () => ({ VELOX_DATA_DIR: join(dir, "a-file"), VELOX_LOG_DIR: join(dir, "logs-file") }),
    line: /^velox: VELOX_DATA_DIR: .*a-file: exists and is not a directory/,
  },
  {
    name: "VELOX_LOG_DIR cannot be written",
    args: ["run", "--duration", "5"],
    env: () => ({ VELOX_DATA_DIR: join(dir, "data-log"), VELOX_LOG_DIR: join(dir, "a-file", "logs") }),
    line: /^velox: VELOX_LOG_DIR: .*cannot write log files there \(ENOTDIR\)$/,
  },
  {
    name: "the replay file is missing",
    args: ["replay", join(dir, "missing.csv")],
    env: () => data("missing"),
    line: /^velox: .*missing\.csv: no such file$/,
  },
  {
    name: "the replay file is empty",
    args: ["replay", join(dir, "empty.csv")],
    env: () => data("empty"),
    line: /^velox: .*empty\.csv: the file is empty; expected a header row$/,
  },
  {
    name: "the replay file has a wrong header",
    args: ["replay", join(dir, "wrong-header.csv")],
    env: () => data("header"),
    line: /^velox: .*wrong-header\.csv: unknown columns "when", "what", "price"/,
  },
];

describe("a start that cannot happen", () => {
  it.each(CASES)("$name: exit 2 within 15 s, one line on stderr naming it", async ({ args, env, line }) => {
    const started = Date.now();
    const run = await startVelox(args, env());
    const code = await run.exited;
    expect(code, run.output()).toBe(2);
    expect(Date.now() - started).toBeLessThan(15_000);
    const lines = run.errors().trim().split("\n");
    expect(lines, run.errors()).toHaveLength(1);
    expect(lines[0]).toMatch(line);
    expect(run.output()).not.toMatch(/\n\s+at /); // no stack trace anywhere
  });

  it("a bad flag: commander's line and a pointer to the help, exit 2, not the whole help", async () => {
    const run = await startVelox(["run", "--no-such-flag"], data("flag"));
    expect(await run.exited).toBe(2);
    const lines = run.errors().trim().split("\n");
    expect(lines[0]).toBe("error: unknown option '--no-such-flag'");
    expect(lines).toHaveLength(2);
    expect(run.errors()).not.toContain("Options:");
  });
});
