import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[[0-9;]*m`);

function runWriter(dir: string, lines: number): string {
  return execFileSync(
    process.execPath,
    ["--import", "tsx", "test/fixtures/log-writer.ts", dir, String(lines)],
    {
      encoding: "utf8",
    },
  );
}

describe("logging", () => {
  it("writes coloured console, JSON lines and plain text, with context as fields and secrets redacted", () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-log-"));
    const stdout = runWriter(dir, 3);

    // Console: human-readable, coloured, names the component.
    expect(stdout).toMatch(ANSI);
    expect(stdout).toContain("[strategy] Signal generated");

    const files = readdirSync(dir);
    const jsonFile = files.find((f) => f.endsWith(".json"));
    expect(jsonFile).toMatch(/^velox\.\d{4}-\d{2}-\d{2}\.\d+\.json$/);
    const records = readFileSync(join(dir, jsonFile as string), "utf8")
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(records).toHaveLength(5);
    const signal = records[0];
    expect(signal).toMatchObject({
      level: "info",
      component: "strategy",
      msg: "Signal generated",
      strategy_id: "rsi_agg",
      symbol: "RELIANCE",
      action: "BUY",
      rsi: 28.5,
      price: 2450,
    });
    expect(Number.isNaN(Date.parse(signal.time))).toBe(false);
    // Debug reaches the files; the token does not.
    expect(records[1]).toMatchObject({ level: "debug", component: "database", token: "***" });
    expect(readFileSync(join(dir, jsonFile as string), "utf8")).not.toContain("s3cret-token");

    const textFile = files.find((f) => f.endsWith(".log"));
    const text = readFileSync(join(dir, textFile as string), "utf8");
    expect(text).toContain("[strategy] Signal generated");
    expect(text).not.toMatch(ANSI);
    expect(text).not.toContain("s3cret-token");
  });

  it("rotates the text file by size and keeps only the configured number", () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-log-"));
    runWriter(dir, 200); // ~200 lines of ~100 bytes against a 2 KiB limit
    const textFiles = readdirSync(dir).filter((f) => f.endsWith(".log"));
    // textKeep = 2 rotated files + the active one.
    expect(textFiles.length).toBe(3);
    for (const f of textFiles) expect(readFileSync(join(dir, f), "utf8").length).toBeLessThan(8 * 1024);
  });
});

describe("log files and a crash", () => {
  it("hold a line as soon as it is logged: nothing waits in memory for a SIGKILL to take", async () => {
    const { createLogger } = await import("../../src/log.js");
    const dir = mkdtempSync(join(tmpdir(), "velox-log-sync-"));
    const logging = await createLogger({ level: "info", console: false, dir });
    const marker = `marker-${Date.now()}`;
    logging.for("main").info(marker);
    // Read at once, before the event loop turns: an asynchronous file writer would not have
    // written it yet (and a SIGKILL now would lose it).
    const json = readdirSync(dir).find((f) => f.endsWith(".json")) as string;
    expect(readFileSync(join(dir, json), "utf8")).toContain(marker);
    await logging.close();
  });
});
