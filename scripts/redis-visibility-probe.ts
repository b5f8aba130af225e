/**
 * The bench's tick → Redis probe, in a process of its own so that its polls do not wait for the
 * engine's busy event loop: it measures when a tick becomes visible in Redis, not when the engine's
 * process gets round to asking. The bench sends `{symbol, timestamp, sentAt}` over IPC for a
 * sampled tick (`sentAt`: wall-clock ms, high resolution, when the engine had processed it); the
 * probe polls `stocks:price:{symbol}` every millisecond until its `timestamp` reaches the tick's,
 * and on `{done: true}` answers with every latency in ms. It says `{ready: true}` once connected:
 * samples sent before that would count its own start-up (a few hundred ms) as latency.
 *
 *   started by scripts/bench.ts with the Redis URL as its argument
 */
import { Redis } from "ioredis";
import { keys } from "../src/schema/redis-keys.js";

interface Sample {
  symbol: string;
  timestamp: number;
  sentAt: number;
}

const redis = new Redis(process.argv[2] ?? "redis://127.0.0.1:6379");
const now = () => performance.timeOrigin + performance.now();
const watches: Promise<number>[] = [];

async function watch(sample: Sample): Promise<number> {
  for (;;) {
    const ts = Number(await redis.hget(keys.stockPrice(sample.symbol), "timestamp"));
    if (ts >= Math.round(sample.timestamp)) return now() - sample.sentAt;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

redis.once("ready", () => process.send?.({ ready: true }));

process.on("message", (message: Sample | { done: true }) => {
  if ("done" in message) {
    void Promise.all(watches).then((latencies) => {
      process.send?.({ latencies }, () => {
        redis.disconnect();
        process.exit(0);
      });
    });
    return;
  }
  watches.push(watch(message));
});
