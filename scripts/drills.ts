/**
 * `npm run drills`: fault drills against a real `velox run` (or `velox replay`) child process, each
 * bounded in time, with its own real servers (redis-server, VictoriaMetrics) and temp journal. It
 * prints a table — drill, fault, expected, observed, pass — and writes drills/results.json. It
 * exits 1 when a drill fails.
 *
 *   npm run drills                 # full: 10 s faults, 60 s InfluxDB outage, 20 SIGKILLs, full disks
 *   npm run drills -- --quick      # short form (the test command runs it): 2 s faults, 3 kills
 *   npm run drills -- --only redis-freeze,sigkill
 *
 * Rates are compared with a lower bar in the short form (its windows hold few fills); the
 * counts — fills lost, points twice, rows miscounted — are exact in both.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { Command } from "commander";
import { Redis } from "ioredis";
import { patterns } from "../src/schema/redis-keys.js";
import { freePort, RedisServer } from "../test/helpers/redis-server.js";
import { runSummary, startVelox, type VeloxRun } from "../test/helpers/velox-process.js";
import { VictoriaMetrics } from "../test/helpers/victoria-metrics.js";

const options = new Command()
  .option("--quick", "short faults, for the test command", false)
  .option("--only <names>", "comma-separated drill names")
  .option("--out <file>", "results file", "drills/results.json")
  .parse()
  .opts<{ quick: boolean; only?: string; out: string }>();
const quick = options.quick;
const only = options.only ? new Set(options.only.split(",")) : undefined;

const SIZES = {
  faultSeconds: quick ? 2 : 10,
  outageSeconds: quick ? 3 : 60,
  kills: quick ? 3 : 20,
  malformed: quick ? 1_000 : 10_000,
  /** Ticks a second of the drilled runs: enough fills per window to compare rates. */
  rate: 1_500,
  /** Lower bar of fills/s during a fault against before it. */
  rateBar: quick ? 0.5 : 0.9,
};

interface DrillResult {
  drill: string;
  fault: string;
  expected: string;
  observed: string;
  pass: boolean;
  figures: Record<string, number | string | boolean>;
}

const root = mkdtempSync(join(tmpdir(), "velox-drills-"));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 2) => Number(n.toFixed(digits));

/** A `velox run` with fresh ports, its own data and log dirs. */
async function velox(name: string, args: string[], env: Record<string, string> = {}) {
  const dataDir = join(root, name, "data");
  const logDir = join(root, name, "logs");
  const metricsPort = await freePort();
  const run = await startVelox(args, {
    VELOX_DATA_DIR: dataDir,
    VELOX_LOG_DIR: logDir,
    VELOX_METRICS_PORT: String(metricsPort),
    VELOX_API_RATE_LIMIT: "0",
    ...env,
  });
  const metrics = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const sums = new Map<string, number>();
    for (const line of text.split("\n")) {
      const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+|NaN)$/.exec(line);
      if (m?.[1] && m[3] !== "NaN") sums.set(m[1], (sums.get(m[1]) ?? 0) + Number(m[3]));
    }
    return sums;
  };
  await waitFor(`${name}: /metrics`, async () => (await metrics()).has("velox_fills_total"), 20_000);
  return { run, dataDir, logDir, metrics, stop: () => stopRun(run) };
}

async function stopRun(run: VeloxRun): Promise<{ code: number | null; seconds: number }> {
  const started = Date.now();
  run.child.kill("SIGTERM");
  const code = await Promise.race([run.exited, sleep(20_000).then(() => "hung" as const)]);
  if (code === "hung") {
    run.child.kill("SIGKILL");
    return { code: null, seconds: (Date.now() - started) / 1000 };
  }
  return { code, seconds: (Date.now() - started) / 1000 };
}

async function waitFor(what: string, ok: () => Promise<boolean> | boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await ok()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Fills per second over `seconds`, from velox_fills_total. */
async function fillRate(metrics: () => Promise<Map<string, number>>, seconds: number): Promise<number> {
  const a = (await metrics()).get("velox_fills_total") ?? 0;
  await sleep(seconds * 1000);
  const b = (await metrics()).get("velox_fills_total") ?? 0;
  return (b - a) / seconds;
}

/**
 * Fills in the journal made between `fromMs` and `toMs` (wall time: the drilled runs simulate at
 * the wall clock, and never overlap): entries by entry time, exits by exit time, whoever's trade.
 */
function journalFills(dataDir: string, fromMs: number, toMs: number): number {
  const db = new Database(join(dataDir, "velox.db"), { readonly: true });
  try {
    const [from, to] = [fromMs / 1000, toMs / 1000];
    const row = db
      .prepare(
        `SELECT (SELECT COUNT(*) FROM trades WHERE entry_time BETWEEN ? AND ?)
              + (SELECT COUNT(*) FROM trades WHERE exit_time BETWEEN ? AND ?) AS fills`,
      )
      .get(from, to, from, to) as { fills: number };
    return row.fills;
  } finally {
    db.close();
  }
}

function journalChecks(
  dataDir: string,
  file = join(dataDir, "velox.db"),
): { integrity: string; withoutConditions: number; open: string[] } {
  const db = new Database(file, { readonly: true });
  try {
    return {
      integrity: String(db.pragma("integrity_check", { simple: true })),
      withoutConditions: (
        db
          .prepare(
            `SELECT COUNT(*) AS n FROM trades t WHERE NOT EXISTS
               (SELECT 1 FROM signal_conditions c WHERE c.trade_id = t.trade_id AND c.signal_type = 'entry')`,
          )
          .get() as { n: number }
      ).n,
      open: (
        db.prepare("SELECT trade_id FROM trades WHERE status = 'open'").all() as { trade_id: string }[]
      ).map((r) => r.trade_id),
    };
  } finally {
    db.close();
  }
}

// --- the drills ----------------------------------------------------------------------------------

/** Redis killed (or frozen) for the fault window: trading goes on, nothing is lost, the cache re-warms. */
async function redisDrill(kind: "kill" | "freeze"): Promise<DrillResult> {
  const redis = await RedisServer.start();
  const name = `redis-${kind}`;
  try {
    const v = await velox(name, ["run", "--rate", String(SIZES.rate)], { VELOX_REDIS_URL: redis.url });
    await sleep(2_000);
    const before = await fillRate(v.metrics, SIZES.faultSeconds);
    const pid = redis.pid as number;
    if (kind === "kill") await redis.kill();
    else process.kill(pid, "SIGSTOP");
    const during = await fillRate(v.metrics, SIZES.faultSeconds);
    if (kind === "kill") await redis.launch();
    else process.kill(pid, "SIGCONT");
    // Re-warmed: the journal's open trades are the positions Redis holds again.
    const probe = new Redis(redis.url);
    let rewarmed = false;
    try {
      await waitFor(
        "the cache to re-warm",
        async () => {
          const cached = new Set<string>();
          for (const key of await probe.keys(patterns.activePositions)) {
            for (const value of Object.values(await probe.hgetall(key)))
              cached.add(JSON.parse(value).trade_id);
          }
          const open = journalChecks(v.dataDir).open;
          rewarmed = open.every((id) => cached.has(id));
          return rewarmed;
        },
        5_000,
      ).catch(() => undefined);
    } finally {
      probe.disconnect();
    }
    const reported = (await v.metrics()).get("velox_fills_total") ?? 0;
    const stopped = await v.stop();
    const lost = Math.max(0, reported - journalFills(v.dataDir, 0, Date.now()));
    const ratio = before > 0 ? during / before : 0;
    return {
      drill: name,
      fault:
        kind === "kill"
          ? `redis-server SIGKILL, ${SIZES.faultSeconds} s, restarted`
          : `redis-server SIGSTOP ${SIZES.faultSeconds} s, SIGCONT`,
      expected: `fills/s during ≥ ${SIZES.rateBar} × before, 0 fills lost, cache re-warmed, exit 0`,
      observed: `${round(during, 1)} vs ${round(before, 1)} fills/s (${round(ratio)}×), ${lost} lost, re-warmed ${rewarmed}, exit ${stopped.code}`,
      pass: ratio >= SIZES.rateBar && lost === 0 && rewarmed && stopped.code === 0,
      figures: {
        fills_per_second_before: round(before),
        fills_per_second_during: round(during),
        ratio: round(ratio),
        fills_lost: lost,
        rewarmed,
        exit: stopped.code ?? -1,
      },
    };
  } finally {
    await redis.stop();
  }
}

/** VictoriaMetrics (the InfluxDB write path) stopped: every tick point arrives after, none twice. */
async function influxOutageDrill(): Promise<DrillResult> {
  const vm = await VictoriaMetrics.start();
  try {
    const v = await velox("influx-outage", ["run", "--rate", "500", "--symbols", "5"], {
      VELOX_INFLUX_URL: vm.url,
      VELOX_INFLUX_TOKEN: "drill",
    });
    await sleep(2_000);
    // What VictoriaMetrics acknowledged goes to its disk first: its own last seconds are not
    // what this drill is about.
    await vm.persist();
    await vm.kill();
    await sleep(SIZES.outageSeconds * 1000);
    const spooled = (await v.metrics()).get("velox_influx_spool_points") ?? 0;
    await vm.launch();
    await sleep(3_000);
    const stopped = await v.stop();
    const ticks = Number(runSummary(v.logDir).ticks);
    // One `ticks_close` sample per tick, none twice (same series and timestamp).
    let samples = 0;
    let twice = 0;
    for (const { timestamps } of await vm.exportSeries("ticks_close")) {
      samples += timestamps.length;
      twice += timestamps.length - new Set(timestamps).size;
    }
    return {
      drill: "influx-outage",
      fault: `VictoriaMetrics killed for ${SIZES.outageSeconds} s, restarted`,
      expected: "every tick point delivered after recovery, none twice, exit 0",
      observed: `${samples} of ${ticks} tick points, ${twice} twice, ${spooled} spooled during the outage, exit ${stopped.code}`,
      pass: samples === ticks && twice === 0 && spooled > 0 && stopped.code === 0,
      figures: { ticks, delivered: samples, twice, spooled_during_outage: spooled, exit: stopped.code ?? -1 },
    };
  } finally {
    await vm.stop();
  }
}

/** SIGKILL at random moments on one journal: nothing reported is lost, nothing half-written. */
async function sigkillDrill(): Promise<DrillResult> {
  const dataDir = join(root, "sigkill", "data");
  let reportedTotal = 0;
  let missing = 0;
  for (let i = 0; i < SIZES.kills; i++) {
    const from = Date.now();
    const v = await velox(`sigkill-${i}`, ["run", "--rate", String(SIZES.rate), "--run-id", `k${i}`], {
      VELOX_DATA_DIR: dataDir,
    });
    await sleep(1_000 + Math.random() * 2_000);
    // What the process has reported (committed, then announced) right before the kill. Its fills
    // include closes of trades earlier runs left open: counted by time, not by trade id.
    const reported = (await v.metrics()).get("velox_fills_total") ?? 0;
    v.run.child.kill("SIGKILL");
    await v.run.exited;
    reportedTotal += reported;
    missing += Math.max(0, reported - journalFills(dataDir, from, Date.now()));
  }
  const checks = journalChecks(dataDir);
  return {
    drill: "sigkill",
    fault: `SIGKILL at ${SIZES.kills} random moments, one journal`,
    expected: "integrity_check ok, every reported fill in the journal, every trade with its entry conditions",
    observed: `integrity ${checks.integrity}, ${missing} of ${reportedTotal} reported fills missing, ${checks.withoutConditions} trades without conditions`,
    pass: checks.integrity === "ok" && missing === 0 && checks.withoutConditions === 0 && reportedTotal > 0,
    figures: {
      kills: SIZES.kills,
      reported_fills: reportedTotal,
      missing,
      trades_without_conditions: checks.withoutConditions,
      integrity: checks.integrity,
    },
  };
}

/** A tmpfs of `size` for drill `name`, or undefined (said loudly) where mounting needs root. */
function tinyDisk(name: string, size: string): string | undefined {
  const disk = join(root, name, "disk");
  mkdirSync(disk, { recursive: true });
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", disk], { stdio: "ignore" });
    return disk;
  } catch {
    process.stderr.write(`*** SKIPPING ${name}: mounting a tmpfs needs root ***\n`);
    return undefined;
  }
}

/** The spool on a full disk (a 1 MiB tmpfs, InfluxDB away): drops counted, memory flat, prompt exit. */
async function spoolFullDrill(): Promise<DrillResult | undefined> {
  const disk = tinyDisk("spool-full", "1m");
  if (disk === undefined) return undefined;
  try {
    const v = await velox("spool-full", ["run", "--rate", String(SIZES.rate), "--symbols", "20"], {
      VELOX_DATA_DIR: disk,
      VELOX_SQLITE_PATH: join(root, "spool-full", "velox.db"),
      VELOX_INFLUX_URL: "http://127.0.0.1:1",
      VELOX_INFLUX_TOKEN: "drill",
    });
    const rss: number[] = [];
    const sample = () => {
      const status = readFileSync(`/proc/${v.run.child.pid}/status`, "utf8");
      rss.push(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
    };
    const deadline = Date.now() + (quick ? 8_000 : 20_000);
    while (Date.now() < deadline) {
      sample();
      await sleep(500);
    }
    const m = await v.metrics();
    const dropped = m.get("velox_influx_points_dropped_total") ?? 0;
    const ticksPerSecond = m.get("velox_tick_rate_per_second") ?? 0;
    const stopped = await v.stop();
    const later = rss.slice(Math.floor(rss.length / 2));
    const growth = Math.max(...later) - Math.min(...later);
    return {
      drill: "spool-full",
      fault: "InfluxDB unreachable, spool on a 1 MiB tmpfs",
      expected: "drops counted, RSS flat (< 40 MB growth), ticks at rate, exit 0 within 10 s of SIGTERM",
      observed: `${dropped} dropped, RSS growth ${round(growth, 1)} MB, ${round(ticksPerSecond)} ticks/s, exit ${stopped.code} in ${round(stopped.seconds, 1)} s`,
      pass:
        dropped > 0 &&
        growth < 40 &&
        ticksPerSecond > SIZES.rate * 0.8 &&
        stopped.code === 0 &&
        stopped.seconds < 10,
      figures: {
        dropped,
        rss_growth_mb: round(growth, 1),
        ticks_per_second: round(ticksPerSecond),
        exit: stopped.code ?? -1,
        exit_seconds: round(stopped.seconds, 1),
      },
    };
  } finally {
    execFileSync("umount", [disk], { stdio: "ignore" });
  }
}

/**
 * The journal on a full disk (a 256 KiB tmpfs): the run stops by itself, at once, with one line
 * naming the journal; nothing it reported is missing and the file is intact.
 */
async function journalFullDrill(): Promise<DrillResult | undefined> {
  const disk = tinyDisk("journal-full", "256k");
  if (disk === undefined) return undefined;
  try {
    const started = Date.now();
    const run = await startVelox(["run", "--rate", String(SIZES.rate), "--symbols", "20"], {
      VELOX_DATA_DIR: join(root, "journal-full", "data"),
      VELOX_SQLITE_PATH: join(disk, "velox.db"),
      VELOX_LOG_DIR: join(root, "journal-full", "logs"),
      VELOX_METRICS_PORT: String(await freePort()),
    });
    const code = await Promise.race([run.exited, sleep(30_000).then(() => "hung" as const)]);
    if (code === "hung") run.child.kill("SIGKILL");
    const seconds = (Date.now() - started) / 1000;
    const stopLine =
      run
        .output()
        .split("\n")
        .find((l) => l.includes("the run stopped:")) ?? "";
    const named = /journal unavailable: a commit failed \(database or disk is full\)/.test(stopLine);
    const checks = journalChecks(join(disk, ".."), join(disk, "velox.db"));
    const stack = /\n\s+at /.test(run.output());
    return {
      drill: "journal-full",
      fault: "the journal on a 256 KiB tmpfs",
      expected:
        "the run stops by itself with one line naming the journal, exit 1, no stack, integrity_check ok",
      observed: `exit ${code} after ${round(seconds, 1)} s, journal named ${named}, stack ${stack}, integrity ${checks.integrity}`,
      pass: code === 1 && named && !stack && checks.integrity === "ok" && seconds < 20,
      figures: {
        exit: code === "hung" ? -1 : (code ?? -1),
        seconds: round(seconds, 1),
        journal_named: named,
        integrity: checks.integrity,
      },
    };
  } finally {
    execFileSync("umount", [disk], { stdio: "ignore" });
  }
}

/** A replay with malformed rows mixed in (over 1 MiB, stray quotes, bad values): all counted. */
async function malformedDrill(): Promise<DrillResult> {
  const dir = join(root, "malformed");
  mkdirSync(dir, { recursive: true });
  const t0 = Date.UTC(2024, 0, 2, 14, 30);
  const lines = ["timestamp,symbol,open,high,low,close,volume,bid,ask"];
  const expected: Record<string, number> = {};
  const bad = (reason: string, line: string) => {
    expected[reason] = (expected[reason] ?? 0) + 1;
    lines.push(line);
  };
  let good = 0;
  let t = t0;
  for (let i = 0; i < SIZES.malformed; i++) {
    t += 10;
    const ok = `${t},AAPL,100,101,99,100.5,10,100.4,100.6`;
    lines.push(ok);
    good++;
    switch (i % 8) {
      case 0:
        bad("malformed_row", `${t},"AAPL,100,101,99,100.5,10,100.4,100.6`);
        break;
      case 1:
        bad("malformed_row", `${t},AAPL,100,101,99`);
        break;
      case 2:
        bad("bad_timestamp", `yesterday,AAPL,100,101,99,100.5,10,100.4,100.6`);
        break;
      case 3:
        bad("not_a_number", `${t + 1},AAPL,abc,101,99,100.5,10,100.4,100.6`);
        break;
      case 4:
        bad("high_below_low", `${t + 2},AAPL,100,98,99,100.5,10,100.4,100.6`);
        break;
      case 5:
        bad("bad_symbol", `${t + 3},aapl!,100,101,99,100.5,10,100.4,100.6`);
        break;
      case 6:
        bad("negative_volume", `${t + 4},AAPL,100,101,99,100.5,-1,100.4,100.6`);
        break;
      case 7:
        if (i % 800 === 7) bad("malformed_row", `${t + 5},AAPL,${"9".repeat(1024 * 1024 + 10)}`);
        else bad("out_of_order", `${t - 5},AAPL,100,101,99,100.5,10,100.4,100.6`);
        break;
    }
  }
  const file = join(dir, "ticks.csv");
  writeFileSync(file, `${lines.join("\n")}\n`);
  const logDir = join(dir, "logs");
  const run = await startVelox(["replay", file], {
    VELOX_DATA_DIR: join(dir, "data"),
    VELOX_LOG_DIR: logDir,
    VELOX_METRICS_PORT: String(await freePort()),
  });
  const code = await run.exited;
  const summary = runSummary(logDir);
  const rejected = summary.rejected as Record<string, number>;
  const wrong = Object.keys({ ...expected, ...rejected }).filter(
    (r) => (rejected[r] ?? 0) !== (expected[r] ?? 0),
  );
  const badRows = Object.values(expected).reduce((a, b) => a + b, 0);
  return {
    drill: "malformed",
    fault: `${badRows} malformed rows among ${good} good ones (rows over 1 MiB, stray quotes, bad values)`,
    expected: "every bad row counted by its reason, every good row processed, exit 0",
    observed: `${summary.ticks} of ${good} good rows processed, reasons miscounted: ${wrong.length ? wrong.map((r) => `${r} ${rejected[r] ?? 0}≠${expected[r] ?? 0}`).join(", ") : "none"}, exit ${code}`,
    pass: summary.ticks === good && wrong.length === 0 && code === 0,
    figures: {
      good_rows: good,
      bad_rows: badRows,
      processed: Number(summary.ticks),
      miscounted_reasons: wrong.length,
      exit: code ?? -1,
    },
  };
}

/** Settings and files that stop the start: one line, exit 2, no secret. */
async function badConfigDrill(): Promise<DrillResult> {
  const dir = join(root, "bad-config");
  mkdirSync(join(dir, "a-directory.db"), { recursive: true });
  writeFileSync(join(dir, "not-sqlite.db"), "not a database\n".repeat(50));
  writeFileSync(join(dir, "a-file"), "x");
  const secret = `s3cr3t${Math.random().toString(36).slice(2)}`;
  const held = await freePort();
  const blocker = (await import("node:net")).createServer().listen(held, "127.0.0.1");
  const cases: [string, string[], Record<string, string>][] = [
    ["API port in use", ["run"], { VELOX_API_PORT: String(held) }],
    ["journal is a directory", ["run"], { VELOX_SQLITE_PATH: join(dir, "a-directory.db") }],
    ["journal is not SQLite", ["run"], { VELOX_SQLITE_PATH: join(dir, "not-sqlite.db") }],
    ["data dir is a file", ["run"], { VELOX_DATA_DIR: join(dir, "a-file") }],
    ["log dir unwritable", ["run"], { VELOX_LOG_DIR: join(dir, "a-file", "logs") }],
    ["replay file missing", ["replay", join(dir, "none.csv")], {}],
    ["Redis URL with a password, invalid", ["run"], { VELOX_REDIS_URL: `redis://:${secret}@host:port` }],
    ["InfluxDB URL with a password, invalid", ["run"], { VELOX_INFLUX_URL: `http://u:${secret}@bad host` }],
    ["API token too short", ["run"], { VELOX_API_TOKEN: secret.slice(0, 8) }],
  ];
  const failures: string[] = [];
  for (const [label, args, env] of cases) {
    const run = await startVelox(args, {
      VELOX_DATA_DIR: join(dir, "data"),
      VELOX_LOG_DIR: join(dir, "logs"),
      ...env,
    });
    const code = await Promise.race([run.exited, sleep(15_000).then(() => "hung" as const)]);
    if (code === "hung") run.child.kill("SIGKILL");
    const lines = run.errors().trim().split("\n");
    if (
      code !== 2 ||
      lines.length !== 1 ||
      !lines[0]?.startsWith("velox: ") ||
      run.output().includes(secret.slice(0, 8))
    ) {
      failures.push(`${label} (exit ${code}, ${lines.length} lines)`);
    }
  }
  blocker.close();
  return {
    drill: "bad-config",
    fault: `${cases.length} settings or files that stop the start`,
    expected: "one line naming it, exit 2, no secret",
    observed: failures.length ? `failed: ${failures.join("; ")}` : `all ${cases.length} as expected`,
    pass: failures.length === 0,
    figures: { cases: cases.length, failures: failures.length },
  };
}

const DRILLS: [string, () => Promise<DrillResult | undefined>][] = [
  ["redis-kill", () => redisDrill("kill")],
  ["redis-freeze", () => redisDrill("freeze")],
  ["influx-outage", influxOutageDrill],
  ["sigkill", sigkillDrill],
  ["spool-full", spoolFullDrill],
  ["journal-full", journalFullDrill],
  ["malformed", malformedDrill],
  ["bad-config", badConfigDrill],
];

const results: DrillResult[] = [];
try {
  for (const [name, drill] of DRILLS) {
    if (only && !only.has(name)) continue;
    process.stderr.write(`drills: ${name}…\n`);
    try {
      const result = await drill();
      if (result) results.push(result);
    } catch (err) {
      results.push({
        drill: name,
        fault: "(the drill itself failed)",
        expected: "",
        observed: (err as Error).message.split("\n")[0] ?? "",
        pass: false,
        figures: {},
      });
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

const report = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "unknown", node: process.version },
  quick,
  sizes: SIZES,
  drills: results,
};
mkdirSync(join(options.out, ".."), { recursive: true });
writeFileSync(options.out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`VELOX drills${quick ? " (quick)" : ""}, ${report.date}`);
console.log("| drill | fault | expected | observed | pass |");
console.log("| --- | --- | --- | --- | --- |");
for (const r of results)
  console.log(`| ${r.drill} | ${r.fault} | ${r.expected} | ${r.observed} | ${r.pass ? "yes" : "**no**"} |`);
console.log(`written to ${options.out}`);
process.exit(results.every((r) => r.pass) ? 0 : 1);
