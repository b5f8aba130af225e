import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { logRecords, startVelox } from "../helpers/velox-process.js";

/**
 * The JSON log file keeps up with the console: a SIGKILL right after a status line was printed
 * finds that line in velox.json. (Before, the files were written asynchronously and lagged the
 * console by up to 2 s under load, so a crash lost their tail.)
 */
describe("log files under a crash", () => {
  it("hold every line the console showed before a SIGKILL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-logtail-"));
    const logDir = join(dir, "logs");
    const run = await startVelox(["run", "--rate", "3000", "--status-interval", "1"], {
      VELOX_DATA_DIR: join(dir, "data"),
      VELOX_LOG_DIR: logDir,
    });
    // Wait for the third status line on the console, then kill at once.
    const deadline = Date.now() + 20_000;
    while ((run.output().match(/ticks\/s \|/g) ?? []).length < 3) {
      if (Date.now() > deadline) throw new Error(`no status lines:\n${run.output()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    run.child.kill("SIGKILL");
    await run.exited;
    const shown = [...run.output().matchAll(/\] INFO: \[main\] (\d+ ticks\/s \|[^\n]*)/g)].map((m) => m[1]);
    const inFile = new Set(logRecords(logDir).map((r) => String(r.msg)));
    expect(shown.length).toBeGreaterThanOrEqual(3);
    for (const line of shown) expect(inFile.has(line as string), line).toBe(true);
  }, 40_000);
});
