import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { logRecords, startVelox } from "../helpers/velox-process.js";

/**
 * Restarts on one journal, as the README's Quick start has a user do them. Before: positions left
 * open by `velox run` (ticks of today) crashed a later `velox replay samples/ticks.csv` (ticks of
 * 2024) with "exit time … is before the entry time …", and again on every later run; reusing
 * `--run-id` on the same journal failed with a UNIQUE-constraint stack.
 */

function openTrades(dataDir: string): { trade_id: string; entry_time: number }[] {
  const db = new Database(join(dataDir, "velox.db"), { readonly: true });
  try {
    return db.prepare("SELECT trade_id, entry_time FROM trades WHERE status = 'open'").all() as {
      trade_id: string;
      entry_time: number;
    }[];
  } finally {
    db.close();
  }
}

function tradeCount(dataDir: string, prefix: string): number {
  const db = new Database(join(dataDir, "velox.db"), { readonly: true });
  try {
    return (
      db
        .prepare("SELECT COUNT(*) AS n FROM trades WHERE substr(trade_id, 1, length(?)) = ?")
        .get(prefix, prefix) as {
        n: number;
      }
    ).n;
  } finally {
    db.close();
  }
}

describe("restarts on one journal", () => {
  it("a replay of older ticks after a run left positions open: the newer trades are left open, named, and every run exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-restart-"));
    const env = { VELOX_DATA_DIR: join(dir, "data"), VELOX_LOG_DIR: join(dir, "logs") };
    const first = await startVelox(["run", "--duration", "4", "--rate", "300", "--run-id", "today"], env);
    expect(await first.exited, first.output()).toBe(0);
    const leftOpen = openTrades(env.VELOX_DATA_DIR);
    expect(leftOpen.length).toBeGreaterThan(0);

    for (const attempt of [1, 2]) {
      const replay = await startVelox(["replay", "samples/ticks.csv", "--run-id", `old${attempt}`], env);
      expect(await replay.exited, replay.output()).toBe(0);
      expect(replay.output()).not.toMatch(/before the entry time|\n\s+at /);
    }
    // Today's trades are still open, untouched, and were named when let go.
    const stillOpen = new Set(openTrades(env.VELOX_DATA_DIR).map((t) => t.trade_id));
    for (const t of leftOpen) expect(stillOpen.has(t.trade_id), t.trade_id).toBe(true);
    const warned = logRecords(env.VELOX_LOG_DIR).filter((r) =>
      String(r.msg).includes("not managed by this run"),
    );
    expect(warned.length).toBeGreaterThan(0);
    expect(leftOpen.map((t) => t.trade_id)).toContain(warned[0]?.trade_id);
    // The replays traded on their own.
    expect(tradeCount(env.VELOX_DATA_DIR, "old1-")).toBeGreaterThan(0);
  }, 90_000);

  it("a run id used before on the journal continues its numbering instead of colliding", async () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-runid-"));
    const env = { VELOX_DATA_DIR: join(dir, "data"), VELOX_LOG_DIR: join(dir, "logs") };
    const args = ["run", "--duration", "3", "--rate", "300", "--run-id", "same", "--close-positions"];
    const first = await startVelox(args, env);
    expect(await first.exited, first.output()).toBe(0);
    const after1 = tradeCount(env.VELOX_DATA_DIR, "same-");
    expect(after1).toBeGreaterThan(0);
    const second = await startVelox(args, env);
    expect(await second.exited, second.output()).toBe(0);
    expect(second.output()).not.toMatch(/UNIQUE|\n\s+at /);
    expect(tradeCount(env.VELOX_DATA_DIR, "same-")).toBeGreaterThan(after1);
  }, 60_000);
});
