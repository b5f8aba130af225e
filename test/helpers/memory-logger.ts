import { Writable } from "node:stream";
import pino from "pino";

/** A pino logger that keeps its JSON lines in memory, for tests that check what was logged. */
export function memoryLogger(): { logger: pino.Logger; entries: Record<string, unknown>[] } {
  const entries: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) if (line) entries.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level: "debug" }, stream), entries };
}
