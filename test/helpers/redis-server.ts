import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { ManagedProcess } from "./process.js";

/** Asks the kernel for a free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A real redis-server owned by one test file: its own port and temp dir, stopped by PID. */
export class RedisServer extends ManagedProcess {
  private constructor(
    port: number,
    private readonly extraArgs: string[],
  ) {
    super(port, "velox-redis-");
  }

  /** Starts a server on `port` (default: a free one), e.g. where a client is already retrying. */
  static async start(extraArgs: string[] = [], port?: number): Promise<RedisServer> {
    const server = new RedisServer(port ?? (await freePort()), extraArgs);
    await server.launch();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** (Re)starts the server on the same port and waits until it answers PING. */
  async launch(): Promise<void> {
    if (this.child) throw new Error("redis-server already running");
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        this.dir,
        "--save",
        "",
        ...this.extraArgs,
      ],
      { stdio: "ignore" },
    );
    this.child = child;
    child.once("exit", () => {
      if (this.child === child) this.child = undefined;
    });
    await this.waitUntilReady();
  }

  private async waitUntilReady(deadlineMs = 10_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (Date.now() < deadline) {
      const probe = new Redis(this.port, "127.0.0.1", {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
      });
      // Refused connections are expected while the server starts; they are retried below.
      probe.on("error", () => {});
      try {
        await probe.connect();
        if ((await probe.ping()) === "PONG") return;
      } catch {
        // not up yet
      } finally {
        probe.disconnect();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server on port ${this.port} did not become ready`);
  }
}
