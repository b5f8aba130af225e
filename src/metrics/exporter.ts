import {
  Counter,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  Registry,
  type RegistryContentType,
} from "prom-client";
import { ALL_TOPICS } from "../schema/events.js";
import {
  type ApiRejectCounts,
  BREADTH_DIRECTIONS,
  JOURNAL_OPERATIONS,
  type JournalOperation,
  LABELS as L,
  METRICS as M,
  SENTIMENT_RESULTS,
  type SentimentResult,
} from "../schema/metrics.js";
import { BucketHistogram } from "./bucket-histogram.js";
import type { EngineSnapshot, MetricsSource } from "./source.js";

/**
 * The Prometheus exporter's registry. Histograms are observed as things happen (through the hooks
 * the engine and the API are given); everything read from elsewhere — engine counters, store and
 * event-bus statistics, Redis `INFO memory` — is read once per scrape, in `collect()`.
 */

/** prom-client's default gauges that end in `_total` (which `promtool check metrics` rejects). */
const MISNAMED_DEFAULTS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

const HISTORY_METRICS = [
  M.historyUp,
  M.historyRowsWritten,
  M.historyRowsDuplicate,
  M.historyBatchesSpooled,
  M.historyBatchesReplayed,
  M.historyRowsDropped,
  M.historyWriteErrors,
  M.historySpoolRows,
  M.historyBufferedRows,
  M.historyArchivePasses,
  M.historyArchiveFailures,
  M.historyArchiveLastSuccess,
];

const INFLUX_METRICS = [
  M.influxUp,
  M.influxWriteRate,
  M.influxPointsWritten,
  M.influxPointsFailed,
  M.influxPointsRejected,
  M.influxPointsSpooled,
  M.influxPointsDropped,
  M.influxRetries,
  M.influxSpoolPoints,
  M.influxBufferedPoints,
];

/** What one scrape reads, gathered once before the registry is serialised. */
interface ScrapeState {
  engine: EngineSnapshot;
  redis: { up: boolean; usedBytes: number; maxBytes: number } | undefined;
}

export interface ExporterOptions {
  /** Drawdown (currency) above which the drawdown alert fires; 0 = no limit. */
  drawdownLimit: number;
}

/**
 * prom-client 15 strips `_total` from a counter's own name when it writes OpenMetrics (and never
 * puts it back), which would break every later Prometheus-format scrape; put it back.
 */
function restoreCounterNames(registry: Registry<RegistryContentType>): void {
  for (const metric of registry.getMetricsAsArray() as unknown as { type: string; name: string }[]) {
    if (metric.type === "counter" && !metric.name.endsWith("_total")) metric.name = `${metric.name}_total`;
  }
}

export class VeloxMetrics {
  readonly registry = new Registry<RegistryContentType>();
  private engine: MetricsSource | undefined;
  private apiRejected: (() => ApiRejectCounts) | undefined;
  private state: ScrapeState | undefined;
  private scraping: Promise<unknown> = Promise.resolve();
  private readonly tickToStore: BucketHistogram;
  private readonly journalWrite: BucketHistogram<JournalOperation>;
  private readonly journalErrors: Counter<typeof L.operation>;
  private readonly apiDuration: Histogram<typeof L.route | typeof L.method | typeof L.status>;
  private readonly screenerDuration: Histogram;
  private readonly sentimentRecords: Counter<typeof L.result>;

  constructor(private readonly options: ExporterOptions) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    for (const name of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(name);

    // Observed once per tick and per journal write: see BucketHistogram.
    this.tickToStore = new BucketHistogram({
      name: M.tickToStore,
      help: "Time from a tick's arrival to the end of its pipeline and store writes.",
      buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers,
    });
    this.journalWrite = new BucketHistogram({
      name: M.journalWriteDuration,
      help: "Duration of SQLite trade-journal writes, by operation.",
      label: { name: L.operation, values: JOURNAL_OPERATIONS },
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 1],
      registers,
    });
    this.journalErrors = new Counter({
      name: M.journalWriteErrors,
      help: "Trade-journal writes that SQLite failed, by operation.",
      labelNames: [L.operation],
      registers,
    });
    for (const operation of JOURNAL_OPERATIONS) this.journalErrors.inc({ operation }, 0);
    this.apiDuration = new Histogram({
      name: M.apiRequestDuration,
      help: "HTTP API request duration, by route pattern, method and status code.",
      labelNames: [L.route, L.method, L.status],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    });
    this.screenerDuration = new Histogram({
      name: M.screenerDuration,
      help: "Duration of one market scan (screener and market context).",
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
      registers,
    });
    this.sentimentRecords = new Counter({
      name: M.sentimentRecords,
      help: "Sentiment records received, by result (accepted, or rejected as invalid).",
      labelNames: [L.result],
      registers,
    });
    for (const result of SENTIMENT_RESULTS) this.sentimentRecords.inc({ result }, 0);
    this.registerScrapeTime();
  }

  /** Starts reading the engine (and the API's rejection counts) at scrape time. */
  attach(engine: MetricsSource, apiRejected?: () => ApiRejectCounts): void {
    this.engine = engine;
    this.apiRejected = apiRejected;
    // A store that is not configured has no series at all (a 0 would read as "down" and alert).
    const absent: string[] = [];
    if (!engine.stores.cache) absent.push(M.redisUp, M.redisMemoryUsed, M.redisMemoryMax);
    if (!engine.stores.series) absent.push(...INFLUX_METRICS);
    if (!engine.stores.postgres) absent.push(...HISTORY_METRICS);
    for (const name of absent) this.registry.removeSingleMetric(name);
  }

  readonly observeTick = (seconds: number): void => {
    this.tickToStore.observe(seconds);
  };

  readonly observeJournalWrite = (operation: JournalOperation, seconds: number, failed: boolean): void => {
    this.journalWrite.observe(seconds, operation);
    if (failed) this.journalErrors.inc({ operation });
  };

  readonly observeScan = (seconds: number): void => {
    this.screenerDuration.observe(seconds);
  };

  readonly observeSentiment = (result: SentimentResult): void => {
    this.sentimentRecords.inc({ result });
  };

  readonly observeRequest = (route: string, method: string, status: number, seconds: number): void => {
    this.apiDuration.observe({ route, method, status: String(status) }, seconds);
  };

  /** One scrape: reads every source once, then serialises in the requested format. */
  scrape(openMetrics: boolean): Promise<{ contentType: string; body: string }> {
    // Scrapes are serialised: the content type is registry-wide while one is written.
    const run = this.scraping.then(async () => {
      this.state = await this.readSources();
      const contentType = openMetrics ? Registry.OPENMETRICS_CONTENT_TYPE : Registry.PROMETHEUS_CONTENT_TYPE;
      this.registry.setContentType(contentType);
      try {
        return { contentType, body: await this.registry.metrics() };
      } finally {
        this.registry.setContentType(Registry.PROMETHEUS_CONTENT_TYPE);
        if (openMetrics) restoreCounterNames(this.registry);
        this.state = undefined;
      }
    });
    this.scraping = run.catch(() => {});
    return run;
  }

  private async readSources(): Promise<ScrapeState | undefined> {
    const engine = this.engine;
    if (!engine) return undefined;
    const cache = engine.stores.cache;
    let redis: ScrapeState["redis"];
    if (cache) {
      redis = { up: false, usedBytes: 0, maxBytes: 0 };
      if (cache.connected) {
        try {
          redis = { up: true, ...(await cache.memory()) };
        } catch {
          // down between the check and the call: reported as down
        }
      }
    }
    return { engine: engine.snapshot(), redis };
  }

  /** Gauges and mirrored counters whose values are read at scrape time. */
  private registerScrapeTime(): void {
    const registers = [this.registry];
    const snap = () => this.state?.engine;

    /** A counter whose value is a cumulative count kept elsewhere: set to it at each scrape. */
    const mirror = <T extends string>(
      name: string,
      help: string,
      labelNames: readonly T[],
      read: () => [Partial<Record<T, string>>, number][] | undefined,
    ) =>
      new Counter<T>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const values = read();
          if (!values) return;
          this.reset();
          for (const [labels, value] of values) this.inc(labels, value);
        },
      });
    const gauge = <T extends string>(
      name: string,
      help: string,
      labelNames: readonly T[],
      read: () => [Partial<Record<T, string>>, number][] | undefined,
    ) =>
      new Gauge<T>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const values = read();
          this.reset();
          if (!values) return;
          for (const [labels, value] of values) this.set(labels, value);
        },
      });
    const one = (value: number | undefined): [Record<string, string>, number][] | undefined =>
      value === undefined ? undefined : [[{}, value]];
    const perStrategy = (pick: (f: EngineSnapshot["strategies"][string]) => number) => () => {
      const s = snap();
      return (
        s &&
        Object.entries(s.strategies).map(
          ([strategy, f]) => [{ strategy }, pick(f)] as [{ strategy: string }, number],
        )
      );
    };
    const series = () => this.engine?.stores.series?.stats();
    const history = () => this.engine?.stores.postgres?.history.stats();
    const archiver = () => this.engine?.stores.postgres?.archiver.stats();
    const bus = () => this.engine?.bus.stats();
    const data = () => this.engine?.stores.data.stats();

    // --- market feed ---
    mirror(M.ticksProcessed, "Ticks processed by the pipeline, by symbol.", [L.symbol], () => {
      const s = snap();
      return s && Object.entries(s.ticksBySymbol).map(([symbol, n]) => [{ symbol }, n]);
    });
    mirror(M.ticksRejected, "Ticks rejected before the pipeline, by reason.", [L.reason], () => {
      const s = snap();
      return s && Object.entries(s.rejectedByReason).map(([reason, n]) => [{ reason }, n]);
    });
    gauge(M.tickRate, "Ticks processed per second over the last 10 s.", [], () => one(snap()?.tickRate));
    gauge(M.feedRunning, "1 while a tick source is running.", [], () =>
      one(snap() ? Number(snap()?.feedRunning) : undefined),
    );
    gauge(M.lastTickTimestamp, "Event time of the last tick processed, unix seconds.", [], () => {
      const t = snap()?.lastTickTime;
      return one(t === undefined ? undefined : t / 1000);
    });

    // --- trading ---
    mirror(M.signals, "Strategy signals, by strategy and action.", [L.strategy, L.action], () => {
      const s = snap();
      return (
        s &&
        Object.entries(s.pipeline.signals).flatMap(([strategy, byAction]) =>
          Object.entries(byAction).map(
            ([action, n]) => [{ strategy, action }, n ?? 0] as [Record<string, string>, number],
          ),
        )
      );
    });
    mirror(M.fills, "Paper fills, by strategy and action.", [L.strategy, L.action], () => {
      const s = snap();
      return (
        s &&
        Object.entries(s.strategies).flatMap(([strategy, f]) =>
          (["BUY", "SELL"] as const).map(
            (action) => [{ strategy, action }, f.fills[action] ?? 0] as [Record<string, string>, number],
          ),
        )
      );
    });
    mirror(M.tradesClosed, "Closed trades, by strategy and result.", [L.strategy, L.result], () => {
      const s = snap();
      return (
        s &&
        Object.entries(s.strategies).flatMap(([strategy, f]) =>
          Object.entries(f.closed).map(
            ([result, n]) => [{ strategy, result }, n] as [Record<string, string>, number],
          ),
        )
      );
    });
    gauge(
      M.openPositions,
      "Open positions, by strategy.",
      [L.strategy],
      perStrategy((f) => f.openPositions),
    );
    gauge(
      M.realizedPnl,
      "Realized P&L net of fees since start, by strategy (currency).",
      [L.strategy],
      perStrategy((f) => f.realizedPnl),
    );
    gauge(
      M.unrealizedPnl,
      "Unrealized P&L of open positions, by strategy (currency).",
      [L.strategy],
      perStrategy((f) => f.unrealizedPnl),
    );
    gauge(
      M.winRatio,
      "Share of closed trades that won, by strategy (0-1).",
      [L.strategy],
      perStrategy((f) => {
        const total = f.closed.win + f.closed.loss + f.closed.flat;
        return total === 0 ? 0 : f.closed.win / total;
      }),
    );
    gauge(M.dailyPnl, "Realized P&L of trades closed on the current (UTC) trading day (currency).", [], () =>
      one(snap()?.dailyPnl),
    );
    gauge(M.drawdown, "Peak equity (realized + unrealized P&L) minus current equity (currency).", [], () =>
      one(snap()?.drawdown),
    );
    gauge(M.drawdownLimit, "Configured drawdown limit (currency); 0 = none.", [], () =>
      one(this.options.drawdownLimit),
    );

    // --- market picture ---
    mirror(M.barsClosed, "Bars closed, by timeframe.", [L.timeframe], () => {
      const s = snap();
      return s && Object.entries(s.pipeline.barsClosed).map(([timeframe, n]) => [{ timeframe }, n]);
    });
    mirror(M.screenerRuns, "Market scans run (screener and market context).", [], () =>
      one(snap()?.market.scans),
    );
    gauge(M.screenerCandidates, "Candidates the last scan ranked.", [], () => one(snap()?.market.candidates));
    gauge(
      M.marketBreadth,
      "Symbols advancing, declining or unchanged since their session open.",
      [L.direction],
      () => {
        const b = snap()?.market.breadth;
        return b && BREADTH_DIRECTIONS.map((direction) => [{ direction }, b[direction]]);
      },
    );
    gauge(
      M.sectorChange,
      "Equal-weight change of each sector since the session open, percent.",
      [L.sector],
      () => {
        const s = snap();
        return s && Object.entries(s.market.sectors).map(([sector, change]) => [{ sector }, change]);
      },
    );
    gauge(M.marketVolatility, "Annualised volatility of the equal-weight index, percent.", [], () => {
      const v = snap()?.market.volatility;
      return v === null || v === undefined ? undefined : one(v);
    });

    // --- Redis ---
    gauge(M.redisUp, "1 when the Redis hot cache answers.", [], () => {
      const r = this.state?.redis;
      return r && one(Number(r.up));
    });
    gauge(M.redisMemoryUsed, "Redis used_memory from INFO memory, read at scrape time.", [], () => {
      const r = this.state?.redis;
      return r?.up ? one(r.usedBytes) : undefined;
    });
    gauge(M.redisMemoryMax, "Redis maxmemory from INFO memory (0 = no limit).", [], () => {
      const r = this.state?.redis;
      return r?.up ? one(r.maxBytes) : undefined;
    });
    mirror(M.cacheWritesSkipped, "Cache writes skipped because Redis was down.", [], () =>
      one(data()?.cacheWritesSkipped),
    );
    mirror(M.cacheWriteErrors, "Cache writes that failed.", [], () => one(data()?.cacheWriteErrors));
    mirror(M.cacheRewarms, "Times the cache was rebuilt from the journal after Redis returned.", [], () =>
      one(data()?.cacheRewarms),
    );

    // --- InfluxDB ---
    gauge(M.influxUp, "1 when the last InfluxDB write succeeded.", [], () =>
      one(series() && Number(series()?.up)),
    );
    gauge(M.influxWriteRate, "Points written to InfluxDB per second over the last 10 s.", [], () =>
      one(series()?.pointsPerSecond),
    );
    mirror(M.influxPointsWritten, "Points InfluxDB accepted.", [], () => one(series()?.pointsWritten));
    mirror(M.influxPointsFailed, "Points InfluxDB refused as bad data (4xx).", [], () =>
      one(series()?.failedPoints),
    );
    mirror(M.influxPointsRejected, "Points refused by validation before sending.", [], () =>
      one(series()?.rejectedPoints),
    );
    mirror(M.influxPointsSpooled, "Points written to the on-disk spool.", [], () =>
      one(series()?.spooledPoints),
    );
    mirror(M.influxPointsDropped, "Points dropped by a full spool.", [], () => one(series()?.droppedPoints));
    mirror(M.influxRetries, "Failed InfluxDB writes that will be retried.", [], () => one(series()?.retries));
    gauge(M.influxSpoolPoints, "Points waiting in the on-disk spool.", [], () => one(series()?.spoolPoints));
    gauge(M.influxBufferedPoints, "Points waiting in memory.", [], () => one(series()?.bufferedPoints));

    // --- PostgreSQL history store ---
    gauge(M.historyUp, "1 when PostgreSQL took the history store's last attempt.", [], () =>
      one(history() && Number(history()?.up)),
    );
    mirror(M.historyRowsWritten, "New rows PostgreSQL took, by table.", [L.table], () => {
      const h = history();
      return h && Object.entries(h.rowsWritten).map(([table, n]) => [{ table }, n]);
    });
    mirror(
      M.historyRowsDuplicate,
      "Rows PostgreSQL already had (a replay), skipped by ON CONFLICT.",
      [],
      () => one(history()?.rowsDuplicate),
    );
    mirror(
      M.historyBatchesSpooled,
      "Batches written to the on-disk spool while PostgreSQL was down.",
      [],
      () => one(history()?.batchesSpooled),
    );
    mirror(M.historyBatchesReplayed, "Spooled batches delivered to PostgreSQL.", [], () =>
      one(history()?.batchesReplayed),
    );
    mirror(M.historyRowsDropped, "Rows dropped by a full spool.", [], () => one(history()?.droppedRows));
    mirror(M.historyWriteErrors, "Failed attempts to write to PostgreSQL.", [], () =>
      one(history()?.writeErrors),
    );
    gauge(M.historySpoolRows, "Rows waiting in the on-disk spool.", [], () => one(history()?.spoolRows));
    gauge(M.historyBufferedRows, "Rows waiting in memory.", [], () => one(history()?.bufferedRows));
    mirror(M.historyArchivePasses, "Archival passes completed.", [], () => one(archiver()?.passes));
    mirror(M.historyArchiveFailures, "Archival passes that failed (retried on the next).", [], () =>
      one(archiver()?.failedPasses),
    );
    gauge(
      M.historyArchiveLastSuccess,
      "When the last archival pass completed, unix seconds (0: none yet).",
      [],
      () => {
        const a = archiver();
        return one(a && (a.lastSuccessMs ?? 0) / 1000);
      },
    );

    // --- event stream ---
    gauge(M.eventsUp, "1 when the event backend is reachable.", [L.backend], () => {
      const b = bus();
      return b && b.backend !== "none" ? [[{ backend: b.backend }, Number(b.up)]] : undefined;
    });
    mirror(M.eventsPublished, "Events the backend acknowledged, by topic.", [L.topic], () => {
      const b = bus();
      return b && ALL_TOPICS.map((topic) => [{ topic }, b.published[topic]]);
    });
    mirror(
      M.eventsDropped,
      "Events lost (full buffer, refused, or unsent at shutdown), by topic.",
      [L.topic],
      () => {
        const b = bus();
        return b && ALL_TOPICS.map((topic) => [{ topic }, b.dropped[topic]]);
      },
    );
    gauge(M.eventsBuffered, "Events waiting to be sent.", [], () => one(bus()?.buffered));
    gauge(M.eventsLag, "Age of the oldest event waiting to be sent.", [], () => {
      const b = bus();
      return one(b && b.lagMs / 1000);
    });

    // --- API ---
    mirror(M.apiRequestsRejected, "API requests answered with an error, by reason.", [L.reason], () => {
      const counts = this.apiRejected?.();
      return counts && Object.entries(counts).map(([reason, n]) => [{ reason }, n]);
    });
  }
}
