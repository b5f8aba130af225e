import { createReadStream } from "node:fs";
import { access } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Config } from "../config.js";
import { ConfigError, errorMessage, StoreUnavailableError, ValidationError } from "../domain/errors.js";
import { parseOrThrow } from "../domain/identifiers.js";
import { type SentimentRecord, sentimentLineSchema } from "../domain/sentiment.js";
import { RedisCache } from "../storage/redis-cache.js";

/**
 * `velox sentiment import <file.jsonl>`: one sentiment record per line (seed 004's shape plus
 * `symbol`), each checked on its own. Good lines go to Redis (stocks:sentiment:{symbol}); a bad
 * line is reported with its number and reason and never stored. Blank lines are skipped.
 */

export interface ImportReport {
  lines: number;
  stored: number;
  rejected: { line: number; reason: string }[];
}

/** Lines longer than this are rejected unread (a record is a few kilobytes at most). */
export const MAX_SENTIMENT_LINE_BYTES = 64 * 1024;

export async function importSentiment(
  path: string,
  store: (symbol: string, record: SentimentRecord) => Promise<void>,
  onRejected: (line: number, reason: string) => void = () => {},
): Promise<ImportReport> {
  const report: ImportReport = { lines: 0, stored: 0, rejected: [] };
  const lines = createInterface({
    input: createReadStream(path, { encoding: "utf8" }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  for await (const text of lines) {
    report.lines++;
    if (text.trim() === "") continue;
    let record: SentimentRecord & { symbol: string };
    try {
      record = parseLine(text);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      report.rejected.push({ line: report.lines, reason: err.message });
      onRejected(report.lines, err.message);
      continue;
    }
    const { symbol, ...sentiment } = record;
    await store(symbol, sentiment);
    report.stored++;
  }
  return report;
}

function parseLine(text: string): SentimentRecord & { symbol: string } {
  if (Buffer.byteLength(text) > MAX_SENTIMENT_LINE_BYTES) {
    throw new ValidationError("line", `longer than ${MAX_SENTIMENT_LINE_BYTES} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ValidationError("line", `not JSON (${errorMessage(err)})`);
  }
  return parseOrThrow(sentimentLineSchema, value, "record");
}

/** The command: exit 0 when every line was stored, 1 when some were rejected, 2 when it cannot run. */
export async function runSentimentImport(config: Config, path: string): Promise<number> {
  if (!config.redisUrl) throw new ConfigError("VELOX_REDIS_URL", "required: sentiment is kept in Redis");
  try {
    await access(path);
  } catch (err) {
    throw new ConfigError(path, `cannot read the sentiment file (${errorMessage(err)})`);
  }
  let cache: RedisCache;
  try {
    cache = await RedisCache.connect(config.redisUrl);
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw new ConfigError("VELOX_REDIS_URL", err.message);
    throw err;
  }
  try {
    const report = await importSentiment(
      path,
      (symbol, record) => cache.setSentiment(symbol, record),
      (line, reason) => console.error(`${path}:${line}: rejected: ${reason}`),
    );
    console.log(
      `velox sentiment import: ${report.stored} stored, ${report.rejected.length} rejected, ${report.lines} lines read`,
    );
    return report.rejected.length > 0 ? 1 : 0;
  } finally {
    await cache.close();
  }
}
