/**
 * Every Prometheus metric VELOX exports, named once. The exporter registers them from here; the
 * alert rules, their tests and the dashboards use the same names. Base units (`_seconds`,
 * `_bytes`, ratios 0–1), counters end in `_total`, labels are bounded by configuration
 * (strategy, symbol) or by a closed list in code (reason, action, topic, route, operation).
 * Money figures are in the account currency.
 */
export const METRICS = {
  // --- market feed ---
  ticksProcessed: "velox_ticks_processed_total",
  ticksRejected: "velox_ticks_rejected_total",
  tickRate: "velox_tick_rate_per_second",
  tickToStore: "velox_tick_to_store_seconds",
  lastTickTimestamp: "velox_last_tick_timestamp_seconds",
  feedRunning: "velox_feed_running",
  // --- trading ---
  signals: "velox_signals_total",
  fills: "velox_fills_total",
  tradesClosed: "velox_trades_closed_total",
  openPositions: "velox_open_positions",
  realizedPnl: "velox_realized_pnl",
  unrealizedPnl: "velox_unrealized_pnl",
  winRatio: "velox_win_ratio",
  dailyPnl: "velox_daily_pnl",
  drawdown: "velox_drawdown",
  drawdownLimit: "velox_drawdown_limit",
  // --- market picture ---
  barsClosed: "velox_bars_closed_total",
  screenerRuns: "velox_screener_runs_total",
  screenerDuration: "velox_screener_duration_seconds",
  screenerCandidates: "velox_screener_candidates",
  marketBreadth: "velox_market_breadth",
  sectorChange: "velox_sector_change_percent",
  marketVolatility: "velox_market_volatility_percent",
  sentimentRecords: "velox_sentiment_records_total",
  // --- Redis ---
  redisUp: "velox_redis_up",
  redisMemoryUsed: "velox_redis_memory_used_bytes",
  redisMemoryMax: "velox_redis_memory_max_bytes",
  cacheWritesSkipped: "velox_cache_writes_skipped_total",
  cacheWriteErrors: "velox_cache_write_errors_total",
  cacheRewarms: "velox_cache_rewarms_total",
  // --- InfluxDB ---
  influxUp: "velox_influx_up",
  influxWriteRate: "velox_influx_write_points_per_second",
  influxPointsWritten: "velox_influx_points_written_total",
  influxPointsFailed: "velox_influx_points_failed_total",
  influxPointsRejected: "velox_influx_points_rejected_total",
  influxPointsSpooled: "velox_influx_points_spooled_total",
  influxPointsDropped: "velox_influx_points_dropped_total",
  influxRetries: "velox_influx_write_retries_total",
  influxSpoolPoints: "velox_influx_spool_points",
  influxBufferedPoints: "velox_influx_buffered_points",
  // --- PostgreSQL history store ---
  historyUp: "velox_history_up",
  historyRowsWritten: "velox_history_rows_written_total",
  historyRowsDuplicate: "velox_history_rows_duplicate_total",
  historyBatchesSpooled: "velox_history_batches_spooled_total",
  historyBatchesReplayed: "velox_history_batches_replayed_total",
  historyRowsDropped: "velox_history_rows_dropped_total",
  historyWriteErrors: "velox_history_write_errors_total",
  historySpoolRows: "velox_history_spool_rows",
  historyBufferedRows: "velox_history_buffered_rows",
  historyArchivePasses: "velox_history_archive_passes_total",
  historyArchiveFailures: "velox_history_archive_failures_total",
  historyArchiveLastSuccess: "velox_history_archive_last_success_timestamp_seconds",
  // --- SQLite journal ---
  journalWriteDuration: "velox_journal_write_seconds",
  journalWriteErrors: "velox_journal_write_errors_total",
  // --- event stream ---
  eventsUp: "velox_events_up",
  eventsPublished: "velox_events_published_total",
  eventsDropped: "velox_events_dropped_total",
  eventsBuffered: "velox_events_buffered",
  eventsLag: "velox_events_lag_seconds",
  // --- API ---
  apiRequestDuration: "velox_api_request_duration_seconds",
  apiRequestsRejected: "velox_api_requests_rejected_total",
  // --- process (prom-client's defaults, one renamed so `promtool check metrics` is clean) ---
  eventLoopLag: "nodejs_eventloop_lag_seconds",
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/**
 * prom-client's default process metrics that the dashboards read (registered by
 * `collectDefaultMetrics`, named here so no panel spells them).
 */
export const PROCESS_METRICS = {
  cpuSeconds: "process_cpu_seconds_total",
  residentMemory: "process_resident_memory_bytes",
  heapUsed: "nodejs_heap_size_used_bytes",
  gcDuration: "nodejs_gc_duration_seconds",
  eventLoopLagP50: "nodejs_eventloop_lag_p50_seconds",
  eventLoopLagP99: "nodejs_eventloop_lag_p99_seconds",
} as const;

/** The label names in use, also defined once. */
export const LABELS = {
  strategy: "strategy",
  symbol: "symbol",
  action: "action",
  reason: "reason",
  result: "result",
  topic: "topic",
  backend: "backend",
  operation: "operation",
  route: "route",
  method: "method",
  status: "status",
  timeframe: "timeframe",
  direction: "direction",
  sector: "sector",
  table: "table",
} as const;

/** The `direction` label of the market breadth. */
export const BREADTH_DIRECTIONS = ["advancing", "declining", "unchanged"] as const;
/** The `result` label of sentiment records. */
export const SENTIMENT_RESULTS = ["accepted", "rejected"] as const;
export type SentimentResult = (typeof SENTIMENT_RESULTS)[number];

/** The trade journal's write operations (the `operation` label), a closed list. */
export const JOURNAL_OPERATIONS = [
  "insert_trade",
  "insert_trades",
  "close_trade",
  "insert_signal_conditions",
  "insert_sl_update",
  "commit_group",
] as const;
export type JournalOperation = (typeof JOURNAL_OPERATIONS)[number];

/** Why the API answered a request with an error (the `reason` label), a closed list. */
export const API_REJECT_REASONS = [
  "invalid_input",
  "not_found",
  "unknown_route",
  "method_not_allowed",
  "body_too_large",
  "malformed_body",
  "store_unavailable",
  "unauthorized",
  "rate_limited",
  "internal_error",
] as const;
export type ApiRejectReason = (typeof API_REJECT_REASONS)[number];
export type ApiRejectCounts = Record<ApiRejectReason, number>;

/** The scrape job name Prometheus uses for VELOX (rules and dashboards select on it). */
export const SCRAPE_JOB = "velox";
