import { escapeXml } from "../src/svg.js";

/**
 * The performance targets `npm run bench` is held to, read off its results: one definition for
 * the table's verdicts, the picture (bench/results.svg) and the README. A target is a bound on one
 * figure of bench/results.json; `score` is how far the figure is along the way to it (1 = exactly
 * met, above 1 = met with room), so bounds from above and below read the same way.
 */

/** The part of bench/results.json the targets read (the file has more). */
export interface BenchResults {
  date: string;
  commit?: string;
  quick: boolean;
  machine: { cpus: number; model: string; node: string };
  embedded: {
    ticks_per_second: number;
    journal_commit_p99_ms: number;
    wide: { cost_per_tick_ratio: number };
  };
  all_stores: {
    ratio_to_influx_ceiling: number;
    tick_to_redis_p99_ms: number;
    journal_commit_p99_ms: number;
    rss_peak_mb: number;
  };
  replay: { ticks: number; ticks_delivered: number; ratio_to_influx_ceiling: number };
}

/** Where the picture of a results file goes: beside it, `.svg` for `.json`. */
export function chartPathFor(resultsPath: string): string {
  return `${resultsPath.replace(/\.json$/, "")}.svg`;
}

export interface Target {
  /** What is bounded, as a reader says it. */
  label: string;
  /** "at least" or "at most" the bound. */
  bound: "at_least" | "at_most";
  value: number;
  /** The bound as text, e.g. "≥ 300,000 ticks/s". */
  text: string;
  measured: (r: BenchResults) => number;
  /** The measured figure as text. */
  show: (n: number) => string;
}

const thousands = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => `${n} ms`;

export const TARGETS: readonly Target[] = [
  {
    label: "embedded pipeline, journal only, 3 symbols",
    bound: "at_least",
    value: 300_000,
    text: "≥ 300,000 ticks/s",
    measured: (r) => r.embedded.ticks_per_second,
    show: (n) => `${thousands(n)} ticks/s`,
  },
  {
    label: "all stores: InfluxDB points/s ÷ client ceiling",
    bound: "at_least",
    value: 0.5,
    text: "≥ 0.5",
    measured: (r) => r.all_stores.ratio_to_influx_ceiling,
    show: String,
  },
  {
    label: "velox replay: InfluxDB points/s ÷ ceiling",
    bound: "at_least",
    value: 0.5,
    text: "≥ 0.5",
    measured: (r) => r.replay.ratio_to_influx_ceiling,
    show: String,
  },
  {
    label: "velox replay: ticks delivered to InfluxDB",
    bound: "at_least",
    value: 1,
    text: "all of them",
    measured: (r) => r.replay.ticks_delivered / r.replay.ticks,
    show: (n) => `${Math.round(n * 1000) / 10} %`,
  },
  {
    label: "cost per tick, 500 symbols ÷ 3 symbols",
    bound: "at_most",
    value: 1,
    text: "≤ 1 (as fast)",
    measured: (r) => r.embedded.wide.cost_per_tick_ratio,
    show: (n) => `${n} ×`,
  },
  {
    label: "tick → visible in Redis, p99",
    bound: "at_most",
    value: 25,
    text: "≤ 25 ms",
    measured: (r) => r.all_stores.tick_to_redis_p99_ms,
    show: ms,
  },
  {
    label: "journal group commit, p99 (worst of both runs)",
    bound: "at_most",
    value: 20,
    text: "≤ 20 ms",
    measured: (r) => Math.max(r.embedded.journal_commit_p99_ms, r.all_stores.journal_commit_p99_ms),
    show: ms,
  },
  {
    label: "peak RSS, all stores",
    bound: "at_most",
    value: 250,
    text: "≤ 250 MB",
    measured: (r) => r.all_stores.rss_peak_mb,
    show: (n) => `${n} MB`,
  },
];

export interface Verdict {
  target: Target;
  measured: number;
  /** Measured ÷ bound for "at least", bound ÷ measured for "at most": ≥ 1 is met. */
  score: number;
  met: boolean;
}

export function verdicts(results: BenchResults): Verdict[] {
  return TARGETS.map((target) => {
    const measured = target.measured(results);
    const score =
      target.bound === "at_least"
        ? measured / target.value
        : measured > 0
          ? target.value / measured
          : Number.POSITIVE_INFINITY;
    return { target, measured, score, met: score >= 1 };
  });
}

/** The verdicts as lines for the bench's table. */
export function verdictLines(results: BenchResults): string[] {
  const rows = verdicts(results);
  const width = Math.max(...rows.map((v) => `${v.target.label} ${v.target.text}`.length));
  return rows.map((v) => {
    const goal = `${v.target.label} ${v.target.text}`.padEnd(width);
    const verdict = v.met ? "met" : `not met (${round2(v.score)} of the way)`;
    return `  ${goal}  ${v.target.show(v.measured).padStart(16)}  ${verdict}`;
  });
}

const round2 = (n: number) => Math.round(n * 100) / 100;

const WIDTH = 960;
const ROW = 44;
const TOP = 78;
const LABEL_W = 400;
const BAR_W = 380;
/** Bars end at this score: "met with room" reads the same whatever the room. */
const MAX_SCORE = 1.5;
const MET = "#73bf69";
const NOT_MET = "#f2495c";
const TEXT = "#d8d9da";
const MUTED = "#8e8e8e";

/**
 * A picture of where the targets stand: one bar per target, its length the score (the dashed line
 * is the target), green where met, red where not; beside it the bound and the figure measured.
 * Deterministic (nothing but `results` goes in), so the committed picture can be checked against
 * the committed results.
 */
export function benchChartSvg(results: BenchResults): string {
  const rows = verdicts(results);
  const height = TOP + rows.length * ROW + 40;
  const scale = (score: number) => (Math.min(Math.max(score, 0), MAX_SCORE) / MAX_SCORE) * BAR_W;
  const targetX = round2(LABEL_W + scale(1));
  const met = rows.filter((v) => v.met).length;
  const run = [
    results.date.slice(0, 16).replace("T", " "),
    "UTC",
    results.commit ? `· code at ${results.commit}` : "",
    `· ${results.machine.cpus} × ${results.machine.model}, Node ${results.machine.node}`,
    results.quick ? "· QUICK RUN: timings mean nothing" : "",
  ]
    .filter(Boolean)
    .join(" ");
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<title>${met} of ${rows.length} performance targets met (${escapeXml(run)})</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#111217"/>`,
    `<text x="16" y="30" fill="${TEXT}" font-size="18" font-weight="bold">npm run bench: where the performance targets stand</text>`,
    `<text x="16" y="52" fill="${MUTED}" font-size="12">${escapeXml(run)}</text>`,
  ];
  rows.forEach((v, i) => {
    const y = TOP + i * ROW;
    const colour = v.met ? MET : NOT_MET;
    const verdict = v.met ? "met" : "not met";
    parts.push(
      `<text x="16" y="${y + 13}" fill="${TEXT}" font-size="13">${escapeXml(v.target.label)}</text>`,
      `<text x="16" y="${y + 29}" fill="${MUTED}" font-size="12">target ${escapeXml(v.target.text)}</text>`,
      `<rect x="${LABEL_W}" y="${y + 4}" width="${BAR_W}" height="22" fill="#22252b"/>`,
      `<rect x="${LABEL_W}" y="${y + 4}" width="${round2(scale(v.score))}" height="22" fill="${colour}"/>`,
      `<text x="${LABEL_W + BAR_W + 12}" y="${y + 14}" fill="${colour}" font-size="13" font-weight="bold">${verdict}</text>`,
      `<text x="${LABEL_W + BAR_W + 12}" y="${y + 29}" fill="${TEXT}" font-size="12">${escapeXml(v.target.show(v.measured))}</text>`,
    );
  });
  // Over the bars, so it shows where a bar passes it.
  parts.push(
    `<line x1="${targetX}" y1="${TOP - 10}" x2="${targetX}" y2="${TOP + rows.length * ROW - 6}" stroke="${TEXT}" stroke-dasharray="4 3"/>`,
    `<text x="${targetX}" y="${TOP - 14}" fill="${TEXT}" font-size="11" text-anchor="middle">target</text>`,
    `<text x="16" y="${height - 14}" fill="${MUTED}" font-size="11">Bar: the figure ÷ its bound (the bound ÷ the figure for upper bounds), cut at ${MAX_SCORE}. bench/results.json holds every figure.</text>`,
    "</svg>",
    "",
  );
  return parts.join("\n");
}
