import { BigValueColorMode } from "@grafana/grafana-foundation-sdk/common";
import { DASHBOARD_UIDS, GRAFANA_API_TARGETS } from "../schema/grafana.js";
import { METRICS as M, PROCESS_METRICS as P, SCRAPE_JOB } from "../schema/metrics.js";
import {
  type DashboardOptions,
  DEFAULT_DASHBOARD_OPTIONS,
  gauge,
  MONEY_UNIT,
  queryVariable,
  row,
  stat,
  table,
  timeseries,
  UP_DOWN_MAPPINGS,
  unitOf,
  veloxDashboard,
} from "./common.js";
import { INFLUX_PANELS } from "./influx-panels.js";
import { apiQuery, influxQuery, promQuery } from "./queries.js";

/**
 * System Overview (seed 002 task 4.4.2): is VELOX healthy, is it trading, how are the strategies
 * doing, what is open right now, and how is the process itself. `job` and `instance` variables
 * let one Grafana serve several VELOX processes.
 */

/** The label selector every VELOX series is read through. */
const SEL = `job=~"$job", instance=~"$instance"`;
const rate = (metric: string, by: string) => `sum by (${by}) (rate(${metric}{${SEL}}[$__rate_interval]))`;

export function systemOverview(options: DashboardOptions = DEFAULT_DASHBOARD_OPTIONS) {
  const d = veloxDashboard(
    {
      title: "VELOX · System Overview",
      uid: DASHBOARD_UIDS.systemOverview,
      description:
        "Health of the feed and the stores, trading activity, strategy performance, open positions and the process.",
      tags: ["trading", "system"],
      from: "now-1h",
      refresh: "10s",
    },
    options,
  )
    .withVariable(
      queryVariable("job", "Job", "prometheus", `label_values(${M.ticksProcessed}, job)`, {
        multi: false,
        includeAll: false,
      }).current({ text: SCRAPE_JOB, value: SCRAPE_JOB, selected: true }),
    )
    .withVariable(
      queryVariable(
        "instance",
        "Instance",
        "prometheus",
        `label_values(${M.ticksProcessed}{job=~"$job"}, instance)`,
        {
          multi: true,
          includeAll: true,
          allValue: ".+",
        },
      ),
    );

  // --- System health ---
  d.withRow(row(100, "System health"))
    .withPanel(
      timeseries({
        id: 1,
        title: "Tick processing rate",
        description: "Ticks through the pipeline per second, per process.",
        unit: "cps",
        targets: [promQuery(rate(M.ticksProcessed, "instance"), "{{instance}}")],
        w: 8,
        h: 8,
      }),
    )
    .withPanel(
      timeseries({
        id: 2,
        title: "Redis memory used vs max",
        description: "Memory Redis reports in INFO memory; max is maxmemory (0 when unlimited).",
        unit: "bytes",
        targets: [
          promQuery(`max by (instance) (${M.redisMemoryUsed}{${SEL}})`, "used {{instance}}"),
          promQuery(`max by (instance) (${M.redisMemoryMax}{${SEL}})`, "max {{instance}}"),
        ],
        w: 8,
        h: 8,
      }),
    )
    .withPanel(
      timeseries({
        id: 3,
        title: "InfluxDB write rate, spool and drops",
        description:
          "Points InfluxDB accepted per second, points dropped per second (spool full or rejected), and points waiting in the on-disk spool (right axis).",
        unit: "cps",
        targets: [
          promQuery(rate(M.influxPointsWritten, "instance"), "written {{instance}}"),
          promQuery(rate(M.influxPointsDropped, "instance"), "dropped {{instance}}"),
          promQuery(`max by (instance) (${M.influxSpoolPoints}{${SEL}})`, "spooled {{instance}}"),
        ],
        w: 8,
        h: 8,
      }).overrideByQuery("C", [...unitOf("short"), { id: "custom.axisPlacement", value: "right" }]),
    )
    .withPanel(
      timeseries({
        id: 4,
        title: "Event stream lag",
        description:
          "Age of the oldest event waiting to be sent to the event stream (Redis Streams or Kafka): the seed's Kafka lag.",
        unit: "s",
        targets: [promQuery(`max by (instance) (${M.eventsLag}{${SEL}})`, "{{instance}}")],
        w: 6,
        h: 8,
      }),
    )
    .withPanel(
      timeseries({
        id: 5,
        title: "Event stream drops by topic",
        description: "Events dropped per second because the stream's bounded buffer was full, per topic.",
        unit: "cps",
        targets: [promQuery(rate(M.eventsDropped, "topic"), "{{topic}}")],
        w: 6,
        h: 8,
      }),
    )
    .withPanel(
      stat({
        id: 6,
        title: "Stores",
        description:
          "Whether each store answers: Redis, InfluxDB and the event stream (absent when not configured).",
        mappings: UP_DOWN_MAPPINGS,
        targets: [
          promQuery(`min(${M.redisUp}{${SEL}})`, "Redis", { instant: true }),
          promQuery(`min(${M.influxUp}{${SEL}})`, "InfluxDB", { instant: true }),
          promQuery(`min by (backend) (${M.eventsUp}{${SEL}})`, "events ({{backend}})", { instant: true }),
        ],
        w: 6,
        h: 8,
      }).colorMode(BigValueColorMode.Background),
    )
    .withPanel(
      timeseries({
        id: 7,
        title: "Ticks rejected by reason",
        description: "Malformed or out-of-range ticks refused before the pipeline, per second, by reason.",
        unit: "cps",
        targets: [promQuery(rate(M.ticksRejected, "reason"), "{{reason}}")],
        w: 6,
        h: 8,
      }),
    );

  // --- Trading activity ---
  d.withRow(row(101, "Trading activity"))
    .withPanel(
      gauge({
        id: 10,
        title: "Open positions",
        description: "Positions open now, across strategies.",
        unit: "short",
        min: 0,
        targets: [promQuery(`sum(${M.openPositions}{${SEL}})`, "open", { instant: true })],
        w: 6,
        h: 6,
      }),
    )
    .withPanel(
      stat(
        {
          id: 11,
          title: "Daily P&L",
          description: "Realized P&L of the trades closed today (UTC), red below zero.",
          unit: MONEY_UNIT,
          decimals: 2,
          targets: [promQuery(`sum(${M.dailyPnl}{${SEL}})`, "daily P&L")],
          w: 6,
          h: 6,
        },
        { colorBySign: true, sparkline: true },
      ),
    )
    .withPanel(
      stat({
        id: 12,
        title: "Signals today",
        description: "Strategy signals since midnight (browser time), all strategies and actions.",
        unit: "short",
        decimals: 0,
        timeFrom: "now/d",
        targets: [promQuery(`sum(increase(${M.signals}{${SEL}}[$__range]))`, "signals", { instant: true })],
        w: 6,
        h: 6,
      }),
    )
    .withPanel(
      stat({
        id: 13,
        title: "Active strategies",
        description: "Strategies the running processes trade.",
        unit: "short",
        decimals: 0,
        targets: [
          promQuery(`count(count by (strategy) (${M.openPositions}{${SEL}}))`, "strategies", {
            instant: true,
          }),
        ],
        w: 6,
        h: 6,
      }),
    );

  // --- Performance ---
  d.withRow(row(102, "Performance"))
    .withPanel(
      timeseries({
        id: 20,
        title: "P&L by strategy",
        description: "Realized P&L per strategy over time, from InfluxDB strategy_metrics.",
        unit: MONEY_UNIT,
        targets: [influxQuery(INFLUX_PANELS.pnlByStrategy, options.influx)],
        w: 10,
        h: 8,
      }),
    )
    .withPanel(
      gauge({
        id: 21,
        title: "Win rate by strategy",
        description: "Share of closed trades with a positive P&L, per strategy.",
        unit: "percentunit",
        min: 0,
        max: 1,
        targets: [promQuery(`max by (strategy) (${M.winRatio}{${SEL}})`, "{{strategy}}", { instant: true })],
        w: 6,
        h: 8,
      }),
    )
    .withPanel(
      timeseries(
        {
          id: 22,
          title: "Trade frequency",
          description: "Trades closed per minute, per strategy.",
          unit: "cpm",
          targets: [promQuery(`60 * ${rate(M.tradesClosed, "strategy")}`, "{{strategy}}")],
          w: 8,
          h: 8,
        },
        { bars: true },
      ),
    );

  // --- Real-time positions ---
  d.withRow(row(103, "Real-time positions")).withPanel(
    table({
      id: 30,
      title: "Open positions",
      description:
        "Open positions with their live mark and unrealized P&L, from the VELOX API (Redis marks over the journal).",
      unit: "short",
      targets: [apiQuery(GRAFANA_API_TARGETS.openPositions)],
      overrides: {
        entry_price: unitOf(MONEY_UNIT),
        current_price: unitOf(MONEY_UNIT),
        stop_loss: unitOf(MONEY_UNIT),
        unrealized_pnl: unitOf(MONEY_UNIT),
        unrealized_pnl_pct: unitOf("percent"),
        entry_time: unitOf("dateTimeAsIso"),
      },
      w: 24,
      h: 8,
    }),
  );

  // --- Market context (seed 004: the screener's universe) ---
  d.withRow(row(105, "Market context"))
    .withPanel(
      timeseries(
        {
          id: 50,
          title: "Market breadth",
          description:
            "Symbols advancing, declining and unchanged since their session open (within ±1 bp is unchanged), at each market scan.",
          unit: "short",
          targets: [promQuery(`max by (direction) (${M.marketBreadth}{${SEL}})`, "{{direction}}")],
          w: 8,
          h: 8,
        },
        { bars: true },
      ),
    )
    .withPanel(
      timeseries({
        id: 51,
        title: "Sector performance",
        description:
          "Equal-weight change of each sector's symbols since the session open, percent (the sector map is in config/strategies.yaml).",
        unit: "percent",
        targets: [promQuery(`max by (sector) (${M.sectorChange}{${SEL}})`, "{{sector}}")],
        w: 8,
        h: 8,
      }),
    )
    .withPanel(
      table({
        id: 52,
        title: "Top candidates",
        description:
          "The last scan's ranked candidates (candidates:ranked) with the screener rules that fired, from the VELOX API.",
        unit: "short",
        targets: [apiQuery(GRAFANA_API_TARGETS.candidates)],
        overrides: { price: unitOf(MONEY_UNIT), timestamp: unitOf("dateTimeAsIso") },
        w: 8,
        h: 8,
      }),
    );

  // --- Process ---
  d.withRow(row(104, "Process"))
    .withPanel(
      timeseries({
        id: 40,
        title: "CPU",
        description: "CPU time used per second of wall time (1 = one core).",
        unit: "percentunit",
        targets: [promQuery(rate(P.cpuSeconds, "instance"), "{{instance}}")],
        w: 6,
        h: 7,
      }),
    )
    .withPanel(
      timeseries({
        id: 41,
        title: "Memory",
        description: "Resident set size and V8 heap in use.",
        unit: "bytes",
        targets: [
          promQuery(`max by (instance) (${P.residentMemory}{${SEL}})`, "RSS {{instance}}"),
          promQuery(`max by (instance) (${P.heapUsed}{${SEL}})`, "heap {{instance}}"),
        ],
        w: 6,
        h: 7,
      }),
    )
    .withPanel(
      timeseries({
        id: 42,
        title: "Event-loop lag and GC",
        description: "Event-loop delay (p50, p99) and the share of time spent in garbage collection.",
        unit: "s",
        targets: [
          promQuery(`max by (instance) (${P.eventLoopLagP50}{${SEL}})`, "lag p50 {{instance}}"),
          promQuery(`max by (instance) (${P.eventLoopLagP99}{${SEL}})`, "lag p99 {{instance}}"),
          promQuery(rate(`${P.gcDuration}_sum`, "instance"), "GC s/s {{instance}}"),
        ],
        w: 6,
        h: 7,
      }),
    )
    .withPanel(
      timeseries({
        id: 43,
        title: "Tick to store latency",
        description: "Time from a tick's arrival to the end of its pipeline and store writes, p50 and p99.",
        unit: "s",
        targets: [
          promQuery(`histogram_quantile(0.5, ${rate(`${M.tickToStore}_bucket`, "le")})`, "p50"),
          promQuery(`histogram_quantile(0.99, ${rate(`${M.tickToStore}_bucket`, "le")})`, "p99"),
        ],
        w: 6,
        h: 7,
      }),
    );

  return d.build();
}
