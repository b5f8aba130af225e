import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/** SIGKILLs `child` by PID and waits for its exit; does nothing once it has exited. */
export async function killChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  await exited;
}

/** A log file's text, or "" when there is none (yet). */
export function readLog(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * A server process owned by one test file: its own port and temp dir, killed by PID. A subclass
 * starts the process and keeps it in `child` while it runs (and clears it when it exits).
 */
export abstract class ManagedProcess {
  protected child: ChildProcess | undefined;
  readonly dir: string;

  /** Creates the temp dir, named `dirPrefix` plus a random suffix. */
  protected constructor(
    readonly port: number,
    dirPrefix: string,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), dirPrefix));
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Starts `command` with its output appended to `logFile`, then polls `isReady` every 50 ms (a
   * throw counts as "not yet") until it says so. Throws, with the log, when the process exits
   * during start-up or is not ready within `deadlineMs`.
   */
  protected async spawnLogged(
    command: string,
    args: readonly string[],
    logFile: string,
    isReady: () => Promise<boolean>,
    deadlineMs = 15_000,
  ): Promise<void> {
    if (this.child) throw new Error(`${command} already running`);
    const log = openSync(logFile, "a");
    const child = spawn(command, args, { stdio: ["ignore", log, log] });
    closeSync(log);
    this.child = child;
    const gone = () => {
      if (this.child === child) this.child = undefined;
    };
    child.once("exit", gone);
    child.once("error", gone);

    const deadline = Date.now() + deadlineMs;
    while (Date.now() < deadline) {
      if (!this.child) throw new Error(`${command} exited during start-up:\n${readLog(logFile)}`);
      try {
        if (await isReady()) return;
      } catch {
        // not up yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`${command} on port ${this.port} did not become ready:\n${readLog(logFile)}`);
  }

  /** SIGKILL: the server disappears mid-conversation, as in a crash. */
  async kill(): Promise<void> {
    await killChild(this.child);
  }

  /** Stops the server and removes its temp dir (and everything in it: data, config, log). */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A fixture script run in a child process (`node --import tsx <script> …args`) from the project root. */
export interface FixtureProcess {
  child: ChildProcess;
  /** Resolves with how the child ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `script` and resolves once it prints `line` on stdout (a line of its own), so a test can
 * then kill it at a known point; rejects with its stderr if it exits first.
 */
export async function startFixtureUntil(
  script: string,
  args: string[],
  line: string,
): Promise<FixtureProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
    cwd: fileURLToPath(new URL("../..", import.meta.url)),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    child.once("exit", (code, signal) => done({ code, signal }));
  });
  await new Promise<void>((done, fail) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      if (out.split("\n").includes(line)) done();
    });
    void exited.then(({ code, signal }) =>
      fail(
        new Error(`${script} exited before printing "${line}" (code ${code}, signal ${signal}): ${stderr}`),
      ),
    );
  });
  return { child, exited };
}

/**
 * `node <args>` to its end: exit status and output. Asynchronous on purpose: a test worker blocked
 * in spawnSync for minutes misses vitest's own RPC deadline ("Timeout calling onTaskUpdate"),
 * which fails the run even when every test passes.
 */
export async function runNode(
  args: string[],
  timeout: number,
): Promise<{ status: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, args, {
      encoding: "utf8",
      timeout,
      maxBuffer: 64 * 2 ** 20,
    });
    return { status: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return {
      status: typeof e.code === "number" ? e.code : 1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? "",
    };
  }
}
