import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { METRICS, type MetricName, SCRAPE_JOB } from "../../src/schema/metrics.js";
import { skipWithout } from "../helpers/backend.js";
import { PROMETHEUS, Prometheus, type RuleGroup, withForDuration } from "../helpers/prometheus.js";

const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CONFIG = "prometheus/prometheus.yml";
const RULES = "prometheus/rules/velox.rules.yml";
const RULE_TESTS = "prometheus/tests/velox.rules.test.yml";
const RULES_TEXT = readFileSync(join(PROJECT_ROOT, RULES), "utf8");

/** The alerts the rule file must define. */
const REQUIRED_ALERTS = [
  "VeloxDown",
  "VeloxTickFeedStalled",
  "VeloxRedisDown",
  "VeloxInfluxDown",
  "VeloxInfluxSpoolGrowing",
  "VeloxHistoryArchivalStalled",
  "VeloxPointsDropped",
  "VeloxJournalWriteErrors",
  "VeloxEventLoopLagHigh",
  "VeloxDrawdownOverLimit",
  "VeloxTicksRejectedHigh",
];

/** The histograms among METRICS; their series are `_bucket`, `_sum` and `_count`. */
const HISTOGRAMS: readonly MetricName[] = [
  METRICS.tickToStore,
  METRICS.journalWriteDuration,
  METRICS.apiRequestDuration,
];
const HISTOGRAM_SERIES = new Set(HISTOGRAMS.flatMap((h) => [`${h}_bucket`, `${h}_sum`, `${h}_count`]));
const SERIES_NAMES = new Set<string>([
  ...Object.values(METRICS).filter((name) => !HISTOGRAMS.includes(name)),
  ...HISTOGRAM_SERIES,
]);

// --- reading rule files -------------------------------------------------------------------------

interface RuleEntry {
  record?: string;
  alert?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function rulesOf(text: string): RuleEntry[] {
  const doc = parse(text) as { groups: { name: string; rules: RuleEntry[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

/** An expression without its string literals and comments, so that only PromQL names remain. */
function code(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""').replace(/#.*$/gm, "");
}

/** Every identifier of an expression with its offset (metric names, functions, labels, rule names). */
function identifiers(expr: string): { name: string; at: number }[] {
  return [...code(expr).matchAll(/(?<![A-Za-z0-9_:.])[A-Za-z_:][A-Za-z0-9_:]*/g)].map((m) => ({
    name: m[0],
    at: m.index ?? 0,
  }));
}

/** Metric names the expressions use: identifiers starting with `velox_` or `nodejs_`. */
function metricNamesIn(rulesText: string): string[] {
  const names = rulesOf(rulesText).flatMap((r) =>
    identifiers(r.expr)
      .map((i) => i.name)
      .filter((name) => /^(velox|nodejs)_/.test(name)),
  );
  return [...new Set(names)].sort();
}

/** Metric names in the expressions that VELOX does not export. */
function unknownMetricNames(rulesText: string): string[] {
  return metricNamesIn(rulesText).filter((name) => !SERIES_NAMES.has(name));
}

/** Counters and histogram series outside rate()/increase(), and gauges inside them. */
function rateMisuse(rulesText: string): string[] {
  const problems: string[] = [];
  for (const rule of rulesOf(rulesText)) {
    const text = code(rule.expr);
    for (const { name, at } of identifiers(rule.expr)) {
      if (!/^(velox|nodejs)_/.test(name)) continue;
      const inRate = /\b(rate|irate|increase)\(\s*$/.test(text.slice(0, at));
      const cumulative = name.endsWith("_total") || HISTOGRAM_SERIES.has(name);
      if (cumulative && !inRate)
        problems.push(`${rule.alert ?? rule.record}: ${name} outside rate()/increase()`);
      if (!cumulative && inRate)
        problems.push(`${rule.alert ?? rule.record}: gauge ${name} inside rate()/increase()`);
    }
  }
  return problems;
}

/** Selectors of metrics (and `up`) in the expressions, with their label matchers ("" when none). */
function selectors(rulesText: string): { rule: string; name: string; matchers: string }[] {
  return rulesOf(rulesText).flatMap((rule) =>
    [...rule.expr.matchAll(/(?<![A-Za-z0-9_:])((?:velox|nodejs)_[A-Za-z0-9_]+|up)\b(\{[^}]*\})?/g)].map(
      (m) => ({
        rule: rule.alert ?? rule.record ?? "?",
        name: m[1] ?? "",
        matchers: m[2] ?? "",
      }),
    ),
  );
}

/** Recording-rule names that expressions use but no rule records. */
function undefinedRecordings(rulesText: string): string[] {
  const rules = rulesOf(rulesText);
  const recorded = new Set(rules.map((r) => r.record).filter(Boolean));
  const used = rules.flatMap((r) => identifiers(r.expr).map((i) => i.name)).filter((n) => n.includes(":"));
  return [...new Set(used)].filter((name) => !recorded.has(name));
}

function run(command: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(command, args, { cwd: PROJECT_ROOT, encoding: "utf8" });
  const output = `$ ${command} ${args.join(" ")}\n${result.stdout ?? ""}${result.stderr ?? ""}${result.error ?? ""}`;
  return { status: result.status, output };
}

// --- static checks ------------------------------------------------------------------------------

describe("Prometheus config and rule files", () => {
  it("uses only metric names that VELOX exports (recording-rule names aside)", () => {
    const names = metricNamesIn(RULES_TEXT);
    expect(names).toContain(METRICS.ticksProcessed);
    expect(names).toContain(`${METRICS.apiRequestDuration}_bucket`);
    expect(names).toContain(METRICS.eventLoopLag);
    expect(names.some((n) => n.includes(":"))).toBe(false);
    expect(unknownMetricNames(RULES_TEXT)).toEqual([]);
  });

  it("the name check reports misspelt names, also in recording rules, but not strings or rule names", () => {
    const fake = `
groups:
  - name: fake
    rules:
      - record: velox:ticks:rate1m
        expr: sum(rate(velox_tick_processed_total{job="velox"}[1m]))
      - alert: Typo
        expr: |
          velox:ticks:rate1m == 0 and velox_feed_runing == 1
          and label_replace(velox_drawdown, "x", "velox_not_a_metric", "", "")
          # velox_in_a_comment
          and rate(velox_api_request_duration_seconds_buckets[5m]) > 0
`;
    expect(unknownMetricNames(fake)).toEqual([
      "velox_api_request_duration_seconds_buckets",
      "velox_feed_runing",
      "velox_tick_processed_total",
    ]);
  });

  it("reads counters and histogram series only through rate() or increase(), gauges never", () => {
    expect(rateMisuse(RULES_TEXT)).toEqual([]);
    const fake = `
groups:
  - name: fake
    rules:
      - alert: Bad
        expr: velox_ticks_processed_total > 0 or rate(velox_drawdown[5m]) > 0 or velox_journal_write_seconds_count > 1
      - alert: Good
        expr: increase( velox_fills_total[5m]) > 0 and deriv(velox_influx_spool_points[5m]) > 0
`;
    expect(rateMisuse(fake)).toEqual([
      "Bad: velox_ticks_processed_total outside rate()/increase()",
      "Bad: gauge velox_drawdown inside rate()/increase()",
      "Bad: velox_journal_write_seconds_count outside rate()/increase()",
    ]);
  });

  it("selects every series by the velox scrape job, and uses only recording rules it defines", () => {
    const found = selectors(RULES_TEXT);
    expect(found.length).toBeGreaterThan(20);
    const unselected = found.filter((s) => !s.matchers.includes(`job="${SCRAPE_JOB}"`));
    expect(unselected).toEqual([]);
    expect(undefinedRecordings(RULES_TEXT)).toEqual([]);
    expect(
      undefinedRecordings("groups: [{name: g, rules: [{alert: A, expr: 'velox:nope:rate1m > 0'}]}]"),
    ).toEqual(["velox:nope:rate1m"]);
  });

  it("defines the required alerts, each with a severity, a summary and a description", () => {
    const alerts = rulesOf(RULES_TEXT).filter((r) => r.alert);
    expect(alerts.map((a) => a.alert).sort()).toEqual([...REQUIRED_ALERTS].sort());
    for (const alert of alerts) {
      expect(["critical", "warning"], alert.alert).toContain(alert.labels?.severity);
      expect(alert.annotations?.summary, alert.alert).toMatch(/\S/);
      expect(alert.annotations?.description, alert.alert).toMatch(/\S/);
    }
    const records = rulesOf(RULES_TEXT).filter((r) => r.record);
    expect(records.every((r) => r.record?.startsWith("velox:"))).toBe(true);
    // The rejected-share alert spells out its recording rule's expression: the two stay the same.
    const squash = (expr = "") => expr.replace(/\s+/g, " ").trim();
    const ratio = records.find((r) => r.record === "velox:ticks_rejected:ratio_rate5m");
    const rejected = alerts.find((a) => a.alert === "VeloxTicksRejectedHigh");
    expect(squash(rejected?.expr)).toBe(`${squash(ratio?.expr)} > 0.05`);
  });

  it("has a promtool unit test that fires every alert", () => {
    const tests = parse(readFileSync(join(PROJECT_ROOT, RULE_TESTS), "utf8")) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of REQUIRED_ALERTS) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires somewhere`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} stays quiet somewhere`,
      ).toBe(true);
    }
  });

  it("scrapes VELOX as the compose stack runs it", () => {
    const config = parse(readFileSync(join(PROJECT_ROOT, CONFIG), "utf8")) as {
      global: { evaluation_interval: string };
      rule_files: string[];
      scrape_configs: {
        job_name: string;
        scrape_interval?: string;
        static_configs: { targets: string[] }[];
      }[];
    };
    expect(config.global.evaluation_interval).toBe("5s");
    expect(config.rule_files).toEqual(["rules/*.yml"]);
    const jobs = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j]));
    expect(jobs[SCRAPE_JOB]?.scrape_interval).toBe("5s");
    expect(jobs[SCRAPE_JOB]?.static_configs).toEqual([{ targets: ["velox:9464"] }]);
    expect(jobs["redis-exporter"]?.static_configs).toEqual([{ targets: ["redis-exporter:9121"] }]);
    expect(jobs.influxdb?.static_configs).toEqual([{ targets: ["influxdb:8086"] }]);
  });

  it("shortens for: durations for a test run and keeps everything else", () => {
    const copy = rulesOf(withForDuration(RULES_TEXT, "1s"));
    const original = rulesOf(RULES_TEXT);
    expect(copy.map((r) => r.expr)).toEqual(original.map((r) => r.expr));
    expect(copy.map((r) => r.annotations)).toEqual(original.map((r) => r.annotations));
    expect(copy.map((r) => r.for)).toEqual(original.map((r) => (r.for === undefined ? undefined : "1s")));
    expect(original.some((r) => r.for !== undefined && r.for !== "1s")).toBe(true);
  });
});

// --- promtool -----------------------------------------------------------------------------------

const skipPromtool = skipWithout("promtool", "the promtool checks of the Prometheus config and rules");

describe.skipIf(skipPromtool)("promtool", () => {
  // The compose hostnames (velox, redis-exporter, influxdb) do not resolve here: `check config`
  // does not resolve them. It finds rule_files relative to the config file, from any cwd.
  it("check config: valid, and the rules/*.yml glob finds the rule file", () => {
    const { status, output } = run("promtool", ["check", "config", CONFIG]);
    expect(status, output).toBe(0);
    expect(output).toContain("SUCCESS: 1 rule files found");
    expect(output).toContain(`Checking ${join("prometheus", "rules", "velox.rules.yml")}`);
  });

  it("check rules", () => {
    const { status, output } = run("promtool", ["check", "rules", RULES]);
    expect(status, output).toBe(0);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("test rules: the unit tests pass", () => {
    const { status, output } = run("promtool", ["test", "rules", RULE_TESTS]);
    expect(status, output).toBe(0);
    expect(output).toContain("SUCCESS");
  });
});

// --- a real Prometheus --------------------------------------------------------------------------

const skipPrometheus = skipWithout(PROMETHEUS, "the Prometheus rule-loading tests");

function ruleSummary(groups: RuleGroup[]) {
  return groups.flatMap((g) => g.rules.map((r) => ({ name: r.name, health: r.health, error: r.lastError })));
}

describe.skipIf(skipPrometheus)("the rules in a real Prometheus", () => {
  const expectedRules = rulesOf(RULES_TEXT);
  let prometheus: Prometheus | undefined;

  afterEach(async () => {
    await prometheus?.stop();
    prometheus = undefined;
  });

  it("loads every rule, and every expression evaluates (no scrape targets)", async () => {
    prometheus = await Prometheus.start({ ruleFiles: [join(PROJECT_ROOT, RULES)] });
    const loaded = await prometheus.rules();
    // The API lists groups by name; rules within a group in file order.
    expect(loaded.map((g) => g.name).sort()).toEqual(["velox.alerts", "velox.recording"]);
    expect(loaded.flatMap((g) => g.rules.map((r) => r.name)).sort()).toEqual(
      expectedRules.map((r) => r.alert ?? r.record).sort(),
    );
    const before = ruleSummary(loaded);
    expect(before.filter((r) => r.health !== "ok" && r.health !== "unknown")).toEqual([]);

    const evaluated = ruleSummary(await prometheus.waitForRuleEvaluations());
    expect(evaluated.filter((r) => r.health !== "ok")).toEqual([]);
    expect(evaluated).toHaveLength(expectedRules.length);
    // The file's for: durations, loaded as they are.
    const durations = loaded.flatMap((g) =>
      g.rules.filter((r) => r.type === "alerting").map((r) => r.duration),
    );
    expect(durations).toContain(300);
    expect(await prometheus.alerts()).toEqual([]);
  });
});
