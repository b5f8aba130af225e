/**
 * A real Prometheus (Debian package `prometheus`, executable `/usr/bin/prometheus`, 2.42 on
 * bookworm) owned by one test file: its own port, temp dir (config, rule copies, TSDB, log),
 * stopped by PID. It scrapes the targets it is given and evaluates the rule files it is given.
 *
 * Timing (observed with 2.42):
 * - `/-/ready` answers 200 about 0.1 s after start; by then the config and the rules are loaded
 *   (a config or rule file Prometheus cannot load makes it exit, and {@link Prometheus.start}
 *   throws with its log).
 * - The first scrape does NOT come at once: targets reach the scrape manager on its 5 s tick, and
 *   each target then waits a per-target offset within its scrape interval. With a 1 s interval the
 *   first sample of `up` appears 5-6 s after start; with a 10 s interval about 11 s. Wait for it
 *   with {@link Prometheus.waitForScrapes} rather than sleeping.
 * - Rule groups are evaluated every evaluation interval (default here 1 s), each group at its own
 *   offset within the interval; a rule's `health` is "unknown" until its first evaluation.
 * - An alert is "pending" from the first evaluation that returns it and "firing" once it has been
 *   returned for its `for:` duration, checked at evaluation times. The real rules' `for:` values
 *   (30 s to 5 m) are too long for a test: {@link PrometheusOptions.forDuration} loads each rule
 *   file with the `yaml` package and writes a copy whose alerts wait that long instead; the
 *   expressions are copied unchanged. Range windows inside expressions (`[5m]`) are not touched.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { parse, stringify } from "yaml";
import { ManagedProcess, readLog } from "./process.js";
import { freePort } from "./redis-server.js";

export const PROMETHEUS = "prometheus";

/** One scrape job of the generated config. */
export interface ScrapeJob {
  /** The job name, e.g. SCRAPE_JOB: rules select on it. */
  job: string;
  /** host:port of each target. */
  targets: string[];
  /** Default `/metrics`. */
  metricsPath?: string;
  /** Default: the global scrape interval. */
  scrapeInterval?: string;
}

export interface PrometheusOptions {
  /** Scrape jobs; default none (only rules are evaluated, over an empty TSDB). */
  scrapeJobs?: ScrapeJob[];
  /** Global scrape interval (and timeout). Default "1s". */
  scrapeInterval?: string;
  /** Rule evaluation interval. Default "1s". */
  evaluationInterval?: string;
  /** Rule files to load (paths). Default none. */
  ruleFiles?: string[];
  /**
   * When set, every alert that has a `for:` gets this one instead (e.g. "1s"), in a copy of its
   * rule file; the expressions are kept as they are. Default: the files are loaded as they are.
   */
  forDuration?: string;
  /** More command-line flags. */
  extraArgs?: string[];
}

/** One element of an instant vector. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
  /** Unix seconds. */
  timestamp: number;
}

/** One element of `/api/v1/alerts`: pending or firing. */
export interface ActiveAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: "pending" | "firing";
  activeAt: string;
  value: string;
}

/** One element of `/api/v1/targets`' `activeTargets`. */
export interface Target {
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: "up" | "down" | "unknown";
  lastError: string;
  /** RFC 3339; "0001-01-01T00:00:00Z" before the first scrape. */
  lastScrape: string;
}

/** One rule of `/api/v1/rules`. */
export interface Rule {
  type: "alerting" | "recording";
  name: string;
  /** The expression as Prometheus prints it (normalised, not the file's text). */
  query: string;
  health: "ok" | "err" | "unknown";
  lastError?: string;
  /** RFC 3339; "0001-01-01T00:00:00Z" before the first evaluation. */
  lastEvaluation: string;
  /** Alerting rules: the `for:` duration in seconds. */
  duration?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  state?: "inactive" | "pending" | "firing";
}

export interface RuleGroup {
  name: string;
  file: string;
  /** Seconds. */
  interval: number;
  rules: Rule[];
}

/** Go's zero time, which Prometheus reports for "never". */
const NEVER = "0001-01-01T00:00:00Z";

/** True when an RFC 3339 time from the API is a real time, not Go's zero time. */
export function happened(time: string | undefined): boolean {
  return time !== undefined && time !== NEVER && !time.startsWith("0001-01-01");
}

/**
 * A copy of a rule file's text in which every alert that has a `for:` waits `duration` instead.
 * Everything else (expressions, labels, annotations, recording rules) is carried over unchanged.
 */
export function withForDuration(rulesText: string, duration: string): string {
  const doc = parse(rulesText) as { groups?: { rules?: Record<string, unknown>[] }[] } | null;
  for (const group of doc?.groups ?? []) {
    for (const rule of group.rules ?? []) {
      if (typeof rule.alert === "string" && rule.for !== undefined) rule.for = duration;
    }
  }
  return stringify(doc, { lineWidth: 0 });
}

/** Parses a sample value as Prometheus writes it ("1.5", "NaN", "+Inf", "-Inf"). */
function sampleValue(text: string): number {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  return Number(text);
}

export class Prometheus extends ManagedProcess {
  private constructor(
    port: number,
    private readonly options: PrometheusOptions,
  ) {
    super(port, "velox-prometheus-");
  }

  /** Writes the config (and rule copies), starts Prometheus and waits until `/-/ready`. */
  static async start(options: PrometheusOptions = {}): Promise<Prometheus> {
    const server = new Prometheus(await freePort(), options);
    try {
      server.writeConfig();
      await server.launch();
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get configFile(): string {
    return join(this.dir, "prometheus.yml");
  }

  get logFile(): string {
    return join(this.dir, "prometheus.log");
  }

  /** The rule files Prometheus loads: the originals, or their copies with short `for:`. */
  get loadedRuleFiles(): string[] {
    const files = this.options.ruleFiles ?? [];
    if (this.options.forDuration === undefined) return files;
    return files.map((file, i) => join(this.dir, "rules", `${i}-${basename(file)}`));
  }

  private writeConfig(): void {
    const { forDuration, ruleFiles = [], scrapeJobs = [] } = this.options;
    if (forDuration !== undefined) {
      mkdirSync(join(this.dir, "rules"));
      const copies = this.loadedRuleFiles;
      ruleFiles.forEach((file, i) => {
        writeFileSync(copies[i] as string, withForDuration(readFileSync(file, "utf8"), forDuration));
      });
    }
    const interval = this.options.scrapeInterval ?? "1s";
    const config = {
      global: {
        scrape_interval: interval,
        scrape_timeout: interval,
        evaluation_interval: this.options.evaluationInterval ?? "1s",
      },
      rule_files: this.loadedRuleFiles,
      scrape_configs: scrapeJobs.map((job) => ({
        job_name: job.job,
        metrics_path: job.metricsPath ?? "/metrics",
        ...(job.scrapeInterval
          ? { scrape_interval: job.scrapeInterval, scrape_timeout: job.scrapeInterval }
          : {}),
        static_configs: [{ targets: job.targets }],
      })),
    };
    writeFileSync(this.configFile, stringify(config));
  }

  private async launch(): Promise<void> {
    await this.spawnLogged(
      PROMETHEUS,
      [
        `--config.file=${this.configFile}`,
        `--storage.tsdb.path=${join(this.dir, "data")}`,
        `--web.listen-address=127.0.0.1:${this.port}`,
        "--log.level=warn",
        ...(this.options.extraArgs ?? []),
      ],
      this.logFile,
      async () => {
        const response = await fetch(`${this.url}/-/ready`);
        await response.arrayBuffer();
        return response.ok;
      },
    );
  }

  /** GET an API path; returns `data`, or throws with Prometheus' error. */
  private async api<T>(path: string, params: Record<string, string> = {}): Promise<T> {
    const query = new URLSearchParams(params).toString();
    const response = await fetch(`${this.url}${path}${query ? `?${query}` : ""}`);
    const text = await response.text();
    let body: { status?: string; data?: T; errorType?: string; error?: string };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new Error(`${path}: HTTP ${response.status}: ${text}`);
    }
    if (!response.ok || body.status !== "success") {
      throw new Error(`${path}: HTTP ${response.status}: ${body.errorType ?? ""} ${body.error ?? text}`);
    }
    return body.data as T;
  }

  /**
   * An instant query (`/api/v1/query`) at `time` (unix seconds; default now). Throws when the
   * expression does not parse or its result is not an instant vector (wrap scalars in `vector()`).
   */
  async query(promql: string, time?: number): Promise<Sample[]> {
    const params: Record<string, string> = { query: promql };
    if (time !== undefined) params.time = String(time);
    const data = await this.api<{ resultType: string; result: unknown }>("/api/v1/query", params);
    if (data.resultType !== "vector") {
      throw new Error(`query ${promql}: expected a vector, got ${data.resultType}`);
    }
    const result = data.result as { metric: Record<string, string>; value: [number, string] }[];
    return result.map(({ metric, value: [timestamp, value] }) => ({
      metric,
      value: sampleValue(value),
      timestamp,
    }));
  }

  /** Pending and firing alerts (`/api/v1/alerts`). */
  async alerts(): Promise<ActiveAlert[]> {
    return (await this.api<{ alerts: ActiveAlert[] }>("/api/v1/alerts")).alerts;
  }

  /** Loaded rule groups with each rule's health and last evaluation (`/api/v1/rules`). */
  async rules(): Promise<RuleGroup[]> {
    return (await this.api<{ groups: RuleGroup[] }>("/api/v1/rules")).groups;
  }

  /** Active scrape targets (`/api/v1/targets`); empty until the first hand-off, about 5 s in. */
  async targets(): Promise<Target[]> {
    return (await this.api<{ activeTargets: Target[] }>("/api/v1/targets", { state: "active" }))
      .activeTargets;
  }

  /**
   * Polls `probe` until it returns something other than undefined / false / null, and returns
   * that; throws with `what` (and the log) after `timeoutMs`.
   */
  async waitFor<T>(
    what: string,
    probe: () => Promise<T | undefined | null | false>,
    timeoutMs = 20_000,
    everyMs = 200,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      try {
        const result = await probe();
        if (result !== undefined && result !== null && result !== false) return result;
      } catch (err) {
        lastError = err;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
    const cause = lastError instanceof Error ? `; last error: ${lastError.message}` : "";
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}\n${this.logs()}`);
  }

  /** Waits until every configured target has been scraped at least once (see the timing notes). */
  async waitForScrapes(timeoutMs = 20_000): Promise<Target[]> {
    const expected = (this.options.scrapeJobs ?? []).reduce((n, job) => n + job.targets.length, 0);
    return this.waitFor(
      `a first scrape of all ${expected} targets`,
      async () => {
        const targets = await this.targets();
        return targets.length === expected && targets.every((t) => happened(t.lastScrape)) && targets;
      },
      timeoutMs,
    );
  }

  /** Waits until every loaded rule has been evaluated at least once. */
  async waitForRuleEvaluations(timeoutMs = 20_000): Promise<RuleGroup[]> {
    return this.waitFor(
      "every rule to be evaluated once",
      async () => {
        const groups = await this.rules();
        return groups.every((g) => g.rules.every((r) => happened(r.lastEvaluation))) && groups;
      },
      timeoutMs,
    );
  }

  /** Prometheus' log (warnings and errors only). */
  logs(): string {
    return readLog(this.logFile);
  }
}
