import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { skipWithout } from "../helpers/backend.js";
import { runNode } from "../helpers/process.js";
import { VICTORIA_METRICS } from "../helpers/victoria-metrics.js";

/**
 * `npm run drills -- --quick` in the test command: every drill runs against a real `velox`
 * child process with its real servers, in its short form (2 s faults, 3 kills, 1,000 malformed
 * rows), and must pass. The full form (`npm run drills`) is what the README's table reports.
 */

const skip = skipWithout("redis-server", "the drills") || skipWithout(VICTORIA_METRICS, "the drills");

describe.skipIf(skip)("npm run drills -- --quick", () => {
  it("runs every drill and every one passes", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "velox-drills-test-")), "results.json");
    const run = await runNode(["--import", "tsx", "scripts/drills.ts", "--quick", "--out", out], 240_000);
    const results = JSON.parse(readFileSync(out, "utf8")) as {
      drills: { drill: string; pass: boolean; observed: string }[];
    };
    const names = results.drills.map((d) => d.drill);
    for (const name of [
      "redis-kill",
      "redis-freeze",
      "influx-outage",
      "sigkill",
      "malformed",
      "bad-config",
    ]) {
      expect(names).toContain(name);
    }
    for (const d of results.drills) expect(d.pass, `${d.drill}: ${d.observed}`).toBe(true);
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain("| drill | fault | expected | observed | pass |");
  }, 250_000);
});
