import { type ChildProcess, fork } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keys } from "../../src/schema/redis-keys.js";
import { skipWithout } from "../helpers/backend.js";
import { killChild } from "../helpers/process.js";
import { RedisServer } from "../helpers/redis-server.js";

/**
 * The bench's tick → Redis probe (scripts/redis-visibility-probe.ts) against a real redis-server:
 * it says when it is connected, so that no sample counts its start-up, and it measures a sample
 * until the tick's timestamp shows in the key.
 */

const skip = skipWithout("redis-server", "the Redis visibility probe");

const now = () => performance.timeOrigin + performance.now();

function nextMessage(child: ChildProcess): Promise<unknown> {
  return new Promise((resolve, reject) => {
    child.once("message", resolve);
    child.once("exit", (code) => reject(new Error(`probe exited with ${code}`)));
  });
}

describe.skipIf(skip)("redis-visibility-probe", () => {
  let server: RedisServer;
  let admin: Redis;
  let probe: ChildProcess | undefined;

  beforeAll(async () => {
    server = await RedisServer.start();
    admin = new Redis(server.port, "127.0.0.1");
  });

  afterAll(async () => {
    await killChild(probe);
    admin?.disconnect();
    await server?.stop();
  });

  it("says it is ready before the first sample, then measures until the tick shows", async () => {
    await admin.hset(keys.stockPrice("AAPL"), { timestamp: 1_000 });
    probe = fork("scripts/redis-visibility-probe.ts", [server.url], {
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    expect(await nextMessage(probe)).toEqual({ ready: true });

    // Already visible, then visible only after 100 ms.
    probe.send({ symbol: "AAPL", timestamp: 1_000, sentAt: now() });
    probe.send({ symbol: "MSFT", timestamp: 5, sentAt: now() });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await admin.hset(keys.stockPrice("MSFT"), { timestamp: 5 });
    const answer = nextMessage(probe);
    probe.send({ done: true });
    const { latencies } = (await answer) as { latencies: number[] };
    expect(latencies).toHaveLength(2);
    expect(latencies[1]).toBeGreaterThanOrEqual(95);
    expect(latencies[0]).toBeLessThan(latencies[1] as number);
  }, 30_000);
});
