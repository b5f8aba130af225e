import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { ConfigError } from "./domain/errors.js";
import { DEFAULT_STOP_INTERVAL_MS } from "./schema/sqlite.js";

/**
 * Every setting VELOX reads, in one zod schema. Values come from VELOX_* environment variables;
 * CLI flags override them by the same variable name. An invalid value stops start-up with one
 * line naming the variable.
 */

const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

const port = (fallback: number) =>
  z.coerce
    .number({ error: "expected a port number" })
    .int("expected a whole number")
    .min(1, "expected a port from 1 to 65535")
    .max(65535, "expected a port from 1 to 65535")
    .default(fallback);

const optionalText = z
  .string()
  .trim()
  .transform((v) => (v === "" ? undefined : v))
  .optional();

const url = (protocols: readonly string[]) =>
  optionalText.refine(
    (v) => {
      if (v === undefined) return true;
      try {
        return protocols.includes(new URL(v).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(" or ")}` },
  );

const brokers = optionalText.refine(
  (v) => v === undefined || v.split(",").every((b) => /^[A-Za-z0-9.-]+:\d{1,5}$/.test(b.trim())),
  { message: "expected a comma-separated list of host:port" },
);

/** A whole number of milliseconds from `min` to `max`, `fallback` when unset. */
function milliseconds(min: number, max: number, fallback: number) {
  const range = `expected ${min} to ${max} ms`;
  return z.coerce
    .number({ error: "expected milliseconds" })
    .int("expected a whole number")
    .min(min, range)
    .max(max, range)
    .default(fallback);
}

/** The raw variables, by their environment names. */
const envSchema = z.object({
  VELOX_DATA_DIR: z.string().trim().min(1).default("./data"),
  VELOX_SQLITE_PATH: optionalText,
  VELOX_JOURNAL_STOP_INTERVAL_MS: milliseconds(0, 60_000, DEFAULT_STOP_INTERVAL_MS),
  VELOX_REDIS_URL: url(["redis:", "rediss:"]),
  /** A file holding the Redis password (e.g. the compose stack's secret), put into VELOX_REDIS_URL. */
  VELOX_REDIS_PASSWORD_FILE: optionalText,
  VELOX_REDIS_FLUSH_MS: milliseconds(5, 1000, 5),
  VELOX_REDIS_INDICATORS_MS: milliseconds(5, 60_000, 250),
  VELOX_INFLUX_URL: url(["http:", "https:"]),
  VELOX_INFLUX_TOKEN: optionalText,
  /** A file holding the token (e.g. written by the compose stack's InfluxDB init script). */
  VELOX_INFLUX_TOKEN_FILE: optionalText,
  VELOX_INFLUX_ORG: z.string().trim().min(1).default("velox"),
  VELOX_INFLUX_BUCKET: z.string().trim().min(1).default("trading"),
  VELOX_INFLUX_PARAMS_MODE: z
    .enum(["prelude", "api"], { error: "expected prelude (InfluxDB OSS) or api (InfluxDB Cloud)" })
    .default("prelude"),
  VELOX_INFLUX_FLUSH_MS: milliseconds(10, 1000, 1000),
  VELOX_INFLUX_GZIP: z.enum(["auto", "on", "off"], { error: "expected auto, on or off" }).default("auto"),
  VELOX_INFLUX_SPOOL_MAX_POINTS: z.coerce
    .number({ error: "expected a number of points" })
    .int("expected a whole number")
    .positive("expected a positive number")
    .default(2_000_000),
  /** The PostgreSQL / TimescaleDB history store; unset: none. */
  VELOX_POSTGRES_URL: url(["postgres:", "postgresql:"]),
  /**
   * A file holding the PostgreSQL password (e.g. the compose stack's secret), put into
   * VELOX_POSTGRES_URL; read only when that is set (the stack names it whether or not the history
   * profile is on).
   */
  VELOX_POSTGRES_PASSWORD_FILE: optionalText,
  VELOX_POSTGRES_FLUSH_MS: milliseconds(50, 10_000, 1000),
  VELOX_POSTGRES_SPOOL_MAX_ROWS: z.coerce
    .number({ error: "expected a number of rows" })
    .int("expected a whole number")
    .positive("expected a positive number")
    .default(2_000_000),
  VELOX_POSTGRES_ARCHIVE_SECONDS: z.coerce
    .number({ error: "expected seconds" })
    .int("expected a whole number")
    .min(1, "expected 1 to 86400 seconds")
    .max(86_400, "expected 1 to 86400 seconds")
    .default(60),
  VELOX_POSTGRES_CHUNK_DAYS: z.coerce
    .number({ error: "expected days" })
    .int("expected a whole number")
    .min(1, "expected 1 to 365 days")
    .max(365, "expected 1 to 365 days")
    .default(1),
  VELOX_KAFKA_BROKERS: brokers,
  VELOX_API_PORT: port(5000),
  VELOX_API_HOST: z.string().trim().min(1).default("127.0.0.1"),
  /** Bearer token every API route but /api/health requires; absent: none required. */
  VELOX_API_TOKEN: optionalText,
  VELOX_API_TOKEN_FILE: optionalText,
  /** Browser origins allowed to call the API cross-origin (comma-separated); default none. */
  VELOX_API_CORS_ORIGINS: optionalText,
  /** Requests per minute per client address; 0 turns the limit off. */
  VELOX_API_RATE_LIMIT: z.coerce
    .number({ error: "expected requests per minute" })
    .int("expected a whole number")
    .min(0, "expected 0 (off) or a positive number")
    .default(1200),
  VELOX_METRICS_PORT: port(9464),
  VELOX_METRICS_HOST: z.string().trim().min(1).default("127.0.0.1"),
  VELOX_DRAWDOWN_LIMIT: z.coerce
    .number({ error: "expected an amount" })
    .finite()
    .nonnegative("expected 0 (no limit) or a positive amount")
    .default(0),
  VELOX_LOG_DIR: z.string().trim().min(1).default("./logs"),
  VELOX_LOG_LEVEL: z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(", ")}` }).default("info"),
});

export type EnvName = keyof z.input<typeof envSchema>;
export const ENV_NAMES = Object.keys(envSchema.shape) as EnvName[];

export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  dataDir: string;
  sqlitePath: string;
  /** A trade's trailing stop is journaled at most this often (0: every commit window). */
  journalStopIntervalMs: number;
  /** Unset means no Redis: reads fall back to the journal and in-process state. */
  redisUrl: string | undefined;
  /** The write-behind window of the Redis cache: how stale the cache may be, and how often it is written. */
  redisFlushMs: number;
  /** How often the indicator hashes go with a cache window at most (they are most of its bytes). */
  redisIndicatorsMs: number;
  /** Unset `url` means no InfluxDB. */
  influx: {
    url: string | undefined;
    token: string | undefined;
    org: string;
    bucket: string;
    /** How Flux `params` reach the server: a sanitised prelude (OSS) or the API field (Cloud). */
    paramsMode: "prelude" | "api";
    flushIntervalMs: number;
    /** Whether write bodies are gzipped (VELOX_INFLUX_GZIP, see {@link influxGzip}). */
    gzip: boolean;
    /** Bound of the on-disk spool that holds points while InfluxDB is unreachable. */
    spoolMaxPoints: number;
  };
  /** Unset `url` means no PostgreSQL history store. */
  postgres: {
    url: string | undefined;
    flushIntervalMs: number;
    /** Bound of each table's on-disk spool while PostgreSQL is unreachable. */
    spoolMaxRows: number;
    /** Seconds between archival passes (journal trades and Redis figures to PostgreSQL). */
    archiveSeconds: number;
    /** TimescaleDB chunk interval in days (native partitions are daily). */
    chunkDays: number;
  };
  /** Empty means no Kafka. */
  kafkaBrokers: string[];
  apiPort: number;
  /** Interface the API listens on; 127.0.0.1 unless deliberately opened (e.g. inside a container). */
  apiHost: string;
  /** Bearer token the API requires (all routes but /api/health); undefined: none. Never logged. */
  apiToken: string | undefined;
  /** Origins allowed cross-origin (CORS and the WebSocket); empty: none. */
  apiCorsOrigins: string[];
  /** Requests per minute per client address; 0: no limit. */
  apiRateLimit: number;
  metricsPort: number;
  metricsHost: string;
  /** Drawdown (currency) that fires the drawdown alert; 0 = none. */
  drawdownLimit: number;
  logDir: string;
  logLevel: LogLevel;
}

/**
 * Reads the configuration from `env` with `overrides` (same variable names, e.g. from CLI flags)
 * taking precedence. Throws ConfigError naming the first bad variable.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<EnvName, string | number | undefined>> = {},
): Config {
  const raw: Record<string, unknown> = {};
  for (const name of ENV_NAMES) {
    const value = overrides[name] ?? env[name];
    if (value !== undefined) raw[name] = value;
  }
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const variable = String(issue?.path[0] ?? "configuration");
    const given = raw[variable];
    // A URL is shown with its password masked; a token not at all.
    const shown =
      given === undefined || variable.endsWith("_TOKEN")
        ? ""
        : ` (got ${JSON.stringify(variable.endsWith("_URL") ? redactUrl(String(given)) : given)})`;
    throw new ConfigError(variable, `${issue?.message ?? "invalid value"}${shown}`);
  }
  const v = parsed.data;
  const redisUrl = passwordInUrl(v.VELOX_REDIS_URL, v.VELOX_REDIS_PASSWORD_FILE, "VELOX_REDIS");
  const influxToken = influxTokenFrom(v.VELOX_INFLUX_TOKEN, v.VELOX_INFLUX_TOKEN_FILE);
  if (v.VELOX_INFLUX_URL && !influxToken) {
    throw new ConfigError(
      "VELOX_INFLUX_TOKEN",
      "required when VELOX_INFLUX_URL is set (a write-scoped token, or VELOX_INFLUX_TOKEN_FILE)",
    );
  }
  return {
    dataDir: v.VELOX_DATA_DIR,
    sqlitePath: v.VELOX_SQLITE_PATH ?? join(v.VELOX_DATA_DIR, "velox.db"),
    journalStopIntervalMs: v.VELOX_JOURNAL_STOP_INTERVAL_MS,
    redisUrl,
    redisFlushMs: v.VELOX_REDIS_FLUSH_MS,
    redisIndicatorsMs: v.VELOX_REDIS_INDICATORS_MS,
    influx: {
      url: v.VELOX_INFLUX_URL,
      token: influxToken,
      org: v.VELOX_INFLUX_ORG,
      bucket: v.VELOX_INFLUX_BUCKET,
      paramsMode: v.VELOX_INFLUX_PARAMS_MODE,
      flushIntervalMs: v.VELOX_INFLUX_FLUSH_MS,
      gzip: v.VELOX_INFLUX_URL ? influxGzip(v.VELOX_INFLUX_URL, v.VELOX_INFLUX_GZIP) : false,
      spoolMaxPoints: v.VELOX_INFLUX_SPOOL_MAX_POINTS,
    },
    postgres: {
      // The compose stack always names the password file; the store is on only with a URL.
      url:
        v.VELOX_POSTGRES_URL === undefined
          ? undefined
          : passwordInUrl(v.VELOX_POSTGRES_URL, v.VELOX_POSTGRES_PASSWORD_FILE, "VELOX_POSTGRES"),
      flushIntervalMs: v.VELOX_POSTGRES_FLUSH_MS,
      spoolMaxRows: v.VELOX_POSTGRES_SPOOL_MAX_ROWS,
      archiveSeconds: v.VELOX_POSTGRES_ARCHIVE_SECONDS,
      chunkDays: v.VELOX_POSTGRES_CHUNK_DAYS,
    },
    kafkaBrokers: v.VELOX_KAFKA_BROKERS ? v.VELOX_KAFKA_BROKERS.split(",").map((b) => b.trim()) : [],
    apiPort: v.VELOX_API_PORT,
    apiHost: v.VELOX_API_HOST,
    apiToken: apiTokenFrom(v.VELOX_API_TOKEN, v.VELOX_API_TOKEN_FILE),
    apiCorsOrigins: corsOrigins(v.VELOX_API_CORS_ORIGINS),
    apiRateLimit: v.VELOX_API_RATE_LIMIT,
    metricsPort: v.VELOX_METRICS_PORT,
    metricsHost: v.VELOX_METRICS_HOST,
    drawdownLimit: v.VELOX_DRAWDOWN_LIMIT,
    logDir: v.VELOX_LOG_DIR,
    logLevel: v.VELOX_LOG_LEVEL,
  };
}

/**
 * A server URL (`<prefix>_URL`) with the password from `<prefix>_PASSWORD_FILE` (when set) as the
 * URL's percent-encoded password, so that every client VELOX opens gets it from the one URL.
 */
function passwordInUrl(
  url: string | undefined,
  passwordFile: string | undefined,
  prefix: "VELOX_REDIS" | "VELOX_POSTGRES",
): string | undefined {
  if (passwordFile === undefined) return url;
  const fileVariable = `${prefix}_PASSWORD_FILE` as const;
  if (url === undefined) {
    throw new ConfigError(fileVariable, `set ${prefix}_URL too (the password is for that server)`);
  }
  const parsed = new URL(url);
  if (parsed.password !== "") {
    throw new ConfigError(
      fileVariable,
      `${prefix}_URL has a password already: give it in one place, not both`,
    );
  }
  // encodeURIComponent: the URL setter leaves `%` as it is, and both clients decode the password.
  parsed.password = encodeURIComponent(secretFromFile(fileVariable, passwordFile));
  return parsed.toString();
}

/** The InfluxDB token, given inline or as a file (not both). */
function influxTokenFrom(inline: string | undefined, file: string | undefined): string | undefined {
  if (file === undefined) return inline;
  if (inline !== undefined) {
    throw new ConfigError(
      "VELOX_INFLUX_TOKEN_FILE",
      "set either VELOX_INFLUX_TOKEN or VELOX_INFLUX_TOKEN_FILE, not both",
    );
  }
  return secretFromFile("VELOX_INFLUX_TOKEN_FILE", file);
}

/** Characters a bearer token may hold: it travels in a header and a WebSocket subprotocol. */
const API_TOKEN = /^[A-Za-z0-9._~-]{16,256}$/;

/** The API token, given inline or as a file (not both), checked for length and characters. */
function apiTokenFrom(inline: string | undefined, file: string | undefined): string | undefined {
  if (file !== undefined && inline !== undefined) {
    throw new ConfigError(
      "VELOX_API_TOKEN_FILE",
      "set either VELOX_API_TOKEN or VELOX_API_TOKEN_FILE, not both",
    );
  }
  const fromFile = file !== undefined;
  const variable: EnvName = fromFile ? "VELOX_API_TOKEN_FILE" : "VELOX_API_TOKEN";
  const token = file === undefined ? inline : secretFromFile(variable, file);
  if (token !== undefined && !API_TOKEN.test(token)) {
    // The token itself is never part of the message.
    throw new ConfigError(variable, "expected 16 to 256 characters of A-Z a-z 0-9 . _ ~ -");
  }
  return token;
}

/** `https://grafana.example.org,http://localhost:3000` → origins, each checked to be one. */
function corsOrigins(list: string | undefined): string[] {
  if (list === undefined) return [];
  return list.split(",").map((item) => {
    const origin = item.trim();
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !["http:", "https:"].includes(parsed.protocol) || parsed.origin !== origin) {
      throw new ConfigError(
        "VELOX_API_CORS_ORIGINS",
        `${JSON.stringify(origin)} is not an origin (scheme://host[:port], no path)`,
      );
    }
    return origin;
  });
}

/**
 * A secret read once at start from the file `variable` names, trimmed. A missing, unreadable or
 * empty file is a ConfigError naming the variable; the file's content is never part of a message.
 */
function secretFromFile(variable: EnvName, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new ConfigError(variable, `cannot read ${JSON.stringify(file)} (${code})`);
  }
  const secret = text.trim();
  if (secret === "") throw new ConfigError(variable, `${JSON.stringify(file)} is empty`);
  return secret;
}

/**
 * Whether InfluxDB write bodies are gzipped. `auto` (the default) gzips unless the server is on
 * this host (a loopback name or address): there gzip saves no bandwidth and costs CPU on both
 * sides of the same cores, about a fifth of the CPU seconds with every store on (README
 * "Performance"). Elsewhere, line protocol shrinks to about a fifth of its size.
 */
export function influxGzip(url: string, setting: "auto" | "on" | "off"): boolean {
  if (setting !== "auto") return setting === "on";
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  return !(host === "localhost" || host === "::1" || /^127(\.\d{1,3}){3}$/.test(host));
}

/** A URL with any password (and username, which can be a token) masked, for logs and status lines. */
export function redactUrl(raw: string): string {
  try {
    const parsed = new URL(raw);
    if (parsed.password) parsed.password = "***";
    if (parsed.username && !parsed.password) parsed.username = "***";
    return parsed.toString();
  } catch {
    return "***";
  }
}

/** The configuration as it may be logged: secrets masked. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    redisUrl: config.redisUrl && redactUrl(config.redisUrl),
    influx: {
      ...config.influx,
      url: config.influx.url && redactUrl(config.influx.url),
      token: config.influx.token ? "***" : undefined,
    },
    postgres: { ...config.postgres, url: config.postgres.url && redactUrl(config.postgres.url) },
    apiToken: config.apiToken ? "***" : undefined,
  };
}
