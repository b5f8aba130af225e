/**
 * The names Grafana and VELOX share, defined once: the provisioned datasources (uid, type, name),
 * the dashboards' uids, the targets the API's JSON datasource answers, and where the compose stack
 * mounts what the dashboards read. The generator, the API and the tests import from here.
 */

export interface DatasourceDef {
  readonly uid: string;
  /** The Grafana plugin id. */
  readonly type: string;
  /** The name shown in Grafana. */
  readonly name: string;
}

export const DATASOURCES = {
  prometheus: { uid: "velox-prometheus", type: "prometheus", name: "VELOX Prometheus" },
  influxdb: { uid: "velox-influxdb", type: "influxdb", name: "VELOX InfluxDB" },
  /** The same InfluxDB through InfluxQL (InfluxDB 1.x, 3, or 2.x's v1 API): the InfluxQL dashboards' source. */
  influxql: { uid: "velox-influxql", type: "influxdb", name: "VELOX InfluxDB (InfluxQL)" },
  sqlite: { uid: "velox-sqlite", type: "frser-sqlite-datasource", name: "VELOX Journal" },
  api: { uid: "velox-api", type: "simpod-json-datasource", name: "VELOX API" },
  /** The PostgreSQL / TimescaleDB history store, through Grafana's built-in PostgreSQL plugin. */
  postgres: { uid: "velox-postgres", type: "grafana-postgresql-datasource", name: "VELOX History" },
} as const satisfies Record<string, DatasourceDef>;

export type DatasourceKey = keyof typeof DATASOURCES;

export const DASHBOARD_UIDS = {
  systemOverview: "velox-system-overview",
  tradeAnalysis: "velox-trade-analysis",
  tradeDetail: "velox-trade-detail",
  history: "velox-history",
} as const;

/** The InfluxQL variant of a dashboard has its own uid, so both variants can be loaded side by side. */
export function influxQLUid(uid: string): string {
  return `${uid}-influxql`;
}

/** Path prefix of the simpod-json-datasource routes on the API. */
export const GRAFANA_API_BASE = "/grafana";

/** What `POST /grafana/metrics` lists and `POST /grafana/query` answers (the target's value). */
export const GRAFANA_API_TARGETS = {
  /** Table: open positions with their live mark and unrealized P&L. */
  openPositions: "open_positions",
  /** Table: per-strategy stats over closed trades (the journal's formulas). */
  strategyStats: "strategy_stats",
  /** Table: the most recent trades, newest first. */
  recentTrades: "recent_trades",
  /** Table: the screener's ranked candidates (candidates:ranked), best first. */
  candidates: "candidates",
} as const;

export type GrafanaApiTarget = (typeof GRAFANA_API_TARGETS)[keyof typeof GRAFANA_API_TARGETS];

/** What `POST /grafana/variable` answers, by the payload's `target`. */
export const GRAFANA_API_VARIABLES = {
  strategies: "strategies",
  symbols: "symbols",
} as const;

/**
 * Where the compose stack puts things inside the Grafana container. The journal's directory is a
 * volume shared with the velox container, mounted writable (SQLite's WAL needs its -shm file).
 */
export const GRAFANA_PATHS = {
  provisioning: "/etc/grafana/provisioning",
  dashboards: "/var/lib/grafana/dashboards/velox",
  journalDir: "/var/lib/velox",
  journal: "/var/lib/velox/velox.db",
} as const;

/**
 * The bucket-scoped InfluxDB tokens the influxdb container's init script creates (InfluxDB 2
 * cannot create a token with a chosen value), on a volume shared read-only with VELOX and Grafana.
 */
export const INFLUX_TOKEN_FILES = {
  dir: "/run/velox-tokens",
  /** Write and read on the bucket: VELOX writes points and reads a trade's history back. */
  velox: "/run/velox-tokens/velox-write.token",
  /** Read on the bucket: Grafana's InfluxDB datasource. */
  grafana: "/run/velox-tokens/grafana-read.token",
} as const;

/** The API's bearer token as a compose secret: VELOX reads it, Grafana's VELOX API datasource sends it. */
export const API_TOKEN_FILE = "/run/secrets/api_token";

/** Compose service hostnames the provisioned datasources point at. */
export const COMPOSE_URLS = {
  prometheus: "http://prometheus:9090",
  influxdb: "http://influxdb:8086",
  api: "http://velox:5000",
  /** host:port, as Grafana's PostgreSQL datasource takes it (`--profile history`). */
  postgres: "timescaledb:5432",
} as const;

/**
 * The history database and the read-only role Grafana uses on it: the timescaledb container's
 * init script (grafana/postgres-init/) creates the role with SELECT only, its password from the
 * postgres_grafana_password secret.
 */
export const POSTGRES_GRAFANA = {
  database: "velox",
  user: "velox_grafana",
  passwordFile: "/run/secrets/postgres_grafana_password",
} as const;
