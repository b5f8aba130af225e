import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TradeJournal } from "../../src/storage/trade-journal.js";
import { startFixtureUntil } from "../helpers/process.js";

const N = 50;

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "velox-durability-"));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("trade journal durability", () => {
  it("keeps every committed trade when the writer is SIGKILLed", async () => {
    const dbPath = join(dir, "journal.db");
    // Wait for the last commit to be reported, failing fast if the child dies first.
    const { child, exited } = await startFixtureUntil(
      "test/fixtures/journal-writer.ts",
      [dbPath, String(N)],
      `committed ${N}`,
    );

    expect(child.kill("SIGKILL")).toBe(true);
    expect(await exited).toEqual({ code: null, signal: "SIGKILL" });
    // Killed with the connection open: the committed pages may still sit in the WAL only.
    expect(existsSync(`${dbPath}-wal`)).toBe(true);

    const journal = TradeJournal.open(dbPath);
    try {
      const trades = journal.tradesByStrategy("durability", 1000);
      expect(trades).toHaveLength(N);
      for (let n = 1; n <= N; n += 1) {
        const t = journal.getTrade(`D${n}`);
        expect(t, `trade D${n}`).toBeDefined();
        expect(t?.entry_price).toBe(100 + n);
        if (n % 3 === 0) {
          expect(t).toMatchObject({ status: "closed", exit_price: 101 + n, pnl: n, duration_seconds: 60 });
        } else {
          expect(t?.status).toBe("open");
        }
      }
      expect(journal.openTrades("durability")).toHaveLength(N - Math.floor(N / 3));
    } finally {
      journal.close();
    }

    const db = new Database(dbPath, { readonly: true });
    try {
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    } finally {
      db.close();
    }
  });

  it("keeps every fill the DataManager reported when it is SIGKILLed mid-group", async () => {
    const dbPath = join(dir, "grouped.db");
    const { child, exited } = await startFixtureUntil(
      "test/fixtures/grouped-journal-writer.ts",
      [dbPath],
      "ready",
    );
    // Keep reading what it reports until the kill: the last reported fill must survive it.
    let lastReported = 200;
    let buffered = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      for (const m of buffered.matchAll(/^reported (\d+)$/gm))
        lastReported = Math.max(lastReported, Number(m[1]));
      buffered = buffered.slice(buffered.lastIndexOf("\n") + 1);
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(child.kill("SIGKILL")).toBe(true);
    expect((await exited).signal).toBe("SIGKILL");

    const db = new Database(dbPath, { readonly: true });
    try {
      expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
      const ids = new Set(db.prepare("SELECT trade_id FROM trades").pluck().all() as string[]);
      for (let n = 1; n <= lastReported; n += 1) expect(ids.has(`G${n}`), `reported trade G${n}`).toBe(true);
      // One transaction per trade and its conditions: no trade without them, none without its close.
      const orphans = db
        .prepare(
          `SELECT COUNT(*) FROM trades t WHERE NOT EXISTS
             (SELECT 1 FROM signal_conditions c WHERE c.trade_id = t.trade_id AND c.signal_type = 'entry')`,
        )
        .pluck()
        .get();
      expect(orphans).toBe(0);
    } finally {
      db.close();
    }
  });
});
