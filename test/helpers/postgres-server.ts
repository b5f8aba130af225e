import { execFile } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { freePort } from "./redis-server.js";

const run = promisify(execFile);

/** PostgreSQL's own binaries (Debian keeps them out of PATH). */
export const PG_BIN = process.env.VELOX_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";
export const hasPgBinaries = () => existsSync(join(PG_BIN, "initdb")) && existsSync(join(PG_BIN, "pg_ctl"));

/**
 * A PostgreSQL server a test owns: PostgreSQL's own `initdb` into a temp directory and `pg_ctl`
 * on a free port, so the test can stop it and start it again. initdb refuses to run as root, so
 * as root the cluster belongs to the `postgres` user and the commands run as that user.
 */
export class PostgresServer {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly asUser: string | undefined,
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(): Promise<PostgresServer> {
    const root = mkdtempSync(join(tmpdir(), "velox-pg-server-"));
    const asUser = process.getuid?.() === 0 ? "postgres" : undefined;
    if (asUser) {
      const { stdout } = await run("id", ["-u", asUser]);
      const { stdout: gid } = await run("id", ["-g", asUser]);
      chownSync(root, Number(stdout.trim()), Number(gid.trim()));
      chmodSync(root, 0o700);
    }
    const server = new PostgresServer(await freePort(), root, asUser);
    await server.pg("initdb", [
      "-D",
      server.data,
      "-U",
      "postgres",
      "-A",
      "trust",
      "--no-sync",
      "-E",
      "UTF8",
    ]);
    await server.launch();
    return server;
  }

  private get data(): string {
    return join(this.dir, "data");
  }

  /** Starts (again) on the same port and waits until it accepts connections. */
  async launch(): Promise<void> {
    await this.pg("pg_ctl", [
      "-D",
      this.data,
      "-l",
      join(this.dir, "server.log"),
      "-w",
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`,
      "start",
    ]);
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    await client.end();
  }

  /** Stops the server at once (open connections are cut). */
  async halt(): Promise<void> {
    await this.pg("pg_ctl", ["-D", this.data, "-m", "immediate", "-w", "stop"]);
  }

  async stop(): Promise<void> {
    await this.pg("pg_ctl", ["-D", this.data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async pg(program: string, args: string[]): Promise<void> {
    const binary = join(PG_BIN, program);
    if (this.asUser) await run("runuser", ["-u", this.asUser, "--", binary, ...args]);
    else await run(binary, args);
  }
}
