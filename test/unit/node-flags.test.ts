import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { NODE_FLAGS } from "../../src/app/node-flags.js";

/** Every way VELOX is started passes the same V8 heap settings (src/app/node-flags.ts). */
describe("the V8 heap settings", () => {
  const flags = NODE_FLAGS.join(" ");

  it("are passed by npm start, the velox command's shebang and the Docker image", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node ${flags} dist/cli.js run`);
    expect(readFileSync("src/cli.ts", "utf8").split("\n")[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
    expect(readFileSync("Dockerfile", "utf8")).toContain(
      `CMD ["node", ${NODE_FLAGS.map((f) => JSON.stringify(f)).join(", ")}, "dist/cli.js", "run"]`,
    );
  });

  it("are taken by this Node: the old generation is capped at 1 GiB", () => {
    const limit = Number(
      execFileSync(
        process.execPath,
        [...NODE_FLAGS, "-p", "require('node:v8').getHeapStatistics().heap_size_limit"],
        {
          encoding: "utf8",
        },
      ),
    );
    // The old-space cap plus the young generation (three semi-spaces of 8 MB).
    expect(limit / 2 ** 20).toBeGreaterThanOrEqual(1024);
    expect(limit / 2 ** 20).toBeLessThan(1100);
  });
});
