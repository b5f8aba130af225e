import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { describeConfig, influxGzip, loadConfig, redactUrl } from "../../src/config.js";
import { ConfigError } from "../../src/domain/errors.js";
import { startVelox } from "../helpers/velox-process.js";

/** The ConfigError `loadConfig(env)` throws. */
function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config", () => {
  it("has embedded defaults: SQLite under ./data, no Redis, no InfluxDB, no Kafka", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      dataDir: "./data",
      sqlitePath: "data/velox.db",
      redisUrl: undefined,
      redisFlushMs: 5,
      redisIndicatorsMs: 250,
      journalStopIntervalMs: 1000,
      influx: { url: undefined, org: "velox", bucket: "trading" },
      kafkaBrokers: [],
      apiPort: 5000,
      metricsPort: 9464,
      logDir: "./logs",
      logLevel: "info",
    });
  });

  it("reads VELOX_* variables and lets overrides win", () => {
    const config = loadConfig(
      {
        VELOX_DATA_DIR: "/var/velox",
        VELOX_REDIS_URL: "redis://:pw@127.0.0.1:6380/2",
        VELOX_KAFKA_BROKERS: "k1:9092, k2:9093",
        VELOX_API_PORT: "5001",
        VELOX_LOG_LEVEL: "debug",
      },
      { VELOX_API_PORT: 6000 },
    );
    expect(config.sqlitePath).toBe("/var/velox/velox.db");
    expect(config.redisUrl).toBe("redis://:pw@127.0.0.1:6380/2");
    expect(config.kafkaBrokers).toEqual(["k1:9092", "k2:9093"]);
    expect(config.apiPort).toBe(6000);
    expect(config.logLevel).toBe("debug");
  });

  it.each([
    ["VELOX_API_PORT", "abc", /VELOX_API_PORT: .*port.*"abc"/],
    ["VELOX_METRICS_PORT", "70000", /VELOX_METRICS_PORT: expected a port from 1 to 65535/],
    ["VELOX_REDIS_URL", "http://x:1", /VELOX_REDIS_URL: expected a URL starting with redis:\/\//],
    ["VELOX_LOG_LEVEL", "loud", /VELOX_LOG_LEVEL: expected one of trace, debug/],
    ["VELOX_KAFKA_BROKERS", "nohost", /VELOX_KAFKA_BROKERS: expected a comma-separated list of host:port/],
  ])("rejects %s=%s with one line naming the variable", (name, value, message) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).variable).toBe(name);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain("\n");
  });

  it("gzips InfluxDB writes unless the server is on this host (VELOX_INFLUX_GZIP=auto), or as set", () => {
    for (const local of [
      "http://localhost:8086",
      "http://127.0.0.1:8428",
      "http://127.3.2.1:1",
      "http://[::1]:8086",
    ])
      expect(influxGzip(local, "auto"), local).toBe(false);
    for (const remote of [
      "http://influxdb:8086",
      "https://eu-central-1-1.aws.cloud2.influxdata.com",
      "http://10.0.0.5:8086",
      "http://127.0.0.1.example.com:8086",
    ])
      expect(influxGzip(remote, "auto"), remote).toBe(true);
    expect(influxGzip("http://127.0.0.1:8086", "on")).toBe(true);
    expect(influxGzip("http://influxdb:8086", "off")).toBe(false);
    const token = { VELOX_INFLUX_TOKEN: "t" };
    expect(loadConfig({ VELOX_INFLUX_URL: "http://127.0.0.1:8086", ...token }).influx.gzip).toBe(false);
    expect(loadConfig({ VELOX_INFLUX_URL: "http://influxdb:8086", ...token }).influx.gzip).toBe(true);
    expect(
      loadConfig({ VELOX_INFLUX_URL: "http://127.0.0.1:8086", VELOX_INFLUX_GZIP: "on", ...token }).influx
        .gzip,
    ).toBe(true);
    expect(configError({ VELOX_INFLUX_GZIP: "yes" }).message).toBe(
      'VELOX_INFLUX_GZIP: expected auto, on or off (got "yes")',
    );
  });

  it("requires a token with an InfluxDB URL and never echoes a token", () => {
    expect(() => loadConfig({ VELOX_INFLUX_URL: "http://127.0.0.1:8086" })).toThrow(
      /VELOX_INFLUX_TOKEN: required/,
    );
    const config = loadConfig({
      VELOX_INFLUX_URL: "http://127.0.0.1:8086",
      VELOX_INFLUX_TOKEN: "tok-123",
      VELOX_REDIS_URL: "redis://user:secret@redis:6379",
    });
    const shown = JSON.stringify(describeConfig(config));
    expect(shown).not.toContain("tok-123");
    expect(shown).not.toContain("secret");
    expect(shown).toContain("redis:6379");
  });

  describe("VELOX_INFLUX_TOKEN_FILE", () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-token-"));
    const token = randomBytes(24).toString("base64url");
    const tokenFile = join(dir, "velox-write.token");
    writeFileSync(tokenFile, `${token}\n`);

    it("reads the token from the file once, trimmed", () => {
      const config = loadConfig({
        VELOX_INFLUX_URL: "http://influxdb:8086",
        VELOX_INFLUX_TOKEN_FILE: tokenFile,
      });
      expect(config.influx.token).toBe(token);
      expect(JSON.stringify(describeConfig(config))).not.toContain(token);
    });

    const emptyFile = join(dir, "empty.token");
    writeFileSync(emptyFile, " \n");

    it.each([
      ["a missing file", join(dir, "absent.token"), /cannot read ".*absent\.token" \(ENOENT\)$/],
      ["a directory", dir, /cannot read ".*" \(EISDIR\)$/],
      ["an empty file", emptyFile, /empty\.token" is empty$/],
    ])("rejects %s with one line naming the variable", (_what, file, message) => {
      const error = configError({ VELOX_INFLUX_URL: "http://influxdb:8086", VELOX_INFLUX_TOKEN_FILE: file });
      expect(error.variable).toBe("VELOX_INFLUX_TOKEN_FILE");
      expect(error.message).toMatch(/^VELOX_INFLUX_TOKEN_FILE: /);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain("\n");
    });

    it("refuses the token given twice, without echoing either", () => {
      const inline = randomBytes(24).toString("base64url");
      const error = configError({ VELOX_INFLUX_TOKEN: inline, VELOX_INFLUX_TOKEN_FILE: tokenFile });
      expect(error.variable).toBe("VELOX_INFLUX_TOKEN_FILE");
      expect(error.message).toMatch(/not both/);
      expect(error.message).not.toContain(inline);
      expect(error.message).not.toContain(token);
    });

    it("stops `velox run` with one line and exit 2, the token never printed", async () => {
      const run = await startVelox(["run", "--duration", "1"], {
        VELOX_DATA_DIR: dir,
        VELOX_LOG_DIR: join(dir, "logs"),
        VELOX_INFLUX_URL: "http://127.0.0.1:1",
        VELOX_INFLUX_TOKEN: randomBytes(24).toString("base64url"),
        VELOX_INFLUX_TOKEN_FILE: tokenFile,
      });
      expect(await run.exited, run.output()).toBe(2);
      expect(run.output().trim()).toMatch(/^velox: VELOX_INFLUX_TOKEN_FILE: .*not both$/);
      expect(run.output()).not.toContain(token);
    });
  });

  it("masks the password of a rejected URL in the error line", () => {
    const password = randomBytes(16).toString("hex");
    const error = configError({ VELOX_REDIS_URL: `http://:${password}@redis:6379` });
    expect(error.message).toMatch(
      /^VELOX_REDIS_URL: expected a URL .*\(got "http:\/\/:\*\*\*@redis:6379\/?"\)$/,
    );
    expect(error.message).not.toContain(password);
  });

  describe("VELOX_REDIS_PASSWORD_FILE", () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-redis-password-"));
    // Characters a URL would misread, to prove the encoding; the compose secret is hex.
    const password = `${randomBytes(12).toString("hex")}%@:/ #?`;
    const passwordFile = join(dir, "redis_password");
    writeFileSync(passwordFile, `${password}\n`);
    const emptyFile = join(dir, "empty");
    writeFileSync(emptyFile, "\n");

    /** What ioredis, behind every Redis client VELOX opens, makes of the URL (no connection made). */
    const clientOptions = (url: string) => {
      const client = new Redis(url, { lazyConnect: true });
      const { username, password, host, port, db } = client.options;
      client.disconnect();
      return { username, password, host, port, db };
    };

    it("puts the trimmed password into the Redis URL, encoded, and never shows it", () => {
      const config = loadConfig({
        VELOX_REDIS_URL: "redis://redis:6379/0",
        VELOX_REDIS_PASSWORD_FILE: passwordFile,
      });
      const url = new URL(config.redisUrl ?? "");
      expect(decodeURIComponent(url.password)).toBe(password);
      expect(url.username).toBe("");
      expect(`${url.hostname}:${url.port}${url.pathname}`).toBe("redis:6379/0");
      expect(clientOptions(config.redisUrl ?? "")).toEqual({
        username: "",
        password,
        host: "redis",
        port: 6379,
        db: 0,
      });
      const shown = JSON.stringify(describeConfig(config));
      expect(shown).toContain("redis://:***@redis:6379/0");
      expect(shown).not.toContain(password);
      expect(shown).not.toContain(encodeURIComponent(password));
    });

    it("keeps a username given in the URL", () => {
      const config = loadConfig({
        VELOX_REDIS_URL: "rediss://velox@redis:6380",
        VELOX_REDIS_PASSWORD_FILE: passwordFile,
      });
      expect(clientOptions(config.redisUrl ?? "")).toMatchObject({ username: "velox", password, port: 6380 });
      expect(config.redisUrl).toMatch(/^rediss:\/\/velox:/);
    });

    it.each<[string, { file: string; url?: string }, RegExp]>([
      ["a missing file", { file: join(dir, "absent") }, /cannot read ".*absent" \(ENOENT\)$/],
      // What Compose v1 mounts when the secret file was never generated.
      ["a directory", { file: dir }, /cannot read ".*" \(EISDIR\)$/],
      ["an empty file", { file: emptyFile }, /empty" is empty$/],
      ["no VELOX_REDIS_URL", { file: passwordFile, url: "" }, /set VELOX_REDIS_URL too/],
      [
        "a password in VELOX_REDIS_URL as well",
        { file: passwordFile, url: "redis://:other-password@redis:6379" },
        /has a password already: give it in one place, not both$/,
      ],
    ])("rejects %s with one line naming the variable, the password never in it", (_what, given, message) => {
      const error = configError({
        VELOX_REDIS_URL: given.url ?? "redis://redis:6379",
        VELOX_REDIS_PASSWORD_FILE: given.file,
      });
      expect(error.variable).toBe("VELOX_REDIS_PASSWORD_FILE");
      expect(error.message).toMatch(/^VELOX_REDIS_PASSWORD_FILE: /);
      expect(error.message).toMatch(message);
      expect(error.message).not.toContain("\n");
      expect(error.message).not.toContain(password);
      expect(error.message).not.toContain("other-password");
    });

    it("stops `velox run` with one line and exit 2, no password printed", async () => {
      const run = await startVelox(["run", "--duration", "1"], {
        VELOX_DATA_DIR: dir,
        VELOX_LOG_DIR: join(dir, "logs"),
        VELOX_REDIS_URL: "redis://:other-password@127.0.0.1:1",
        VELOX_REDIS_PASSWORD_FILE: passwordFile,
      });
      expect(await run.exited, run.output()).toBe(2);
      expect(run.output().trim()).toMatch(/^velox: VELOX_REDIS_PASSWORD_FILE: .*not both$/);
      expect(run.output()).not.toContain(password);
      expect(run.output()).not.toContain("other-password");
    });
  });

  it("takes the Redis write-behind window from VELOX_REDIS_FLUSH_MS, 5 to 1000 ms", () => {
    expect(loadConfig({ VELOX_REDIS_FLUSH_MS: "250" }).redisFlushMs).toBe(250);
    for (const bad of ["4", "1001", "fast", "2.5"]) {
      expect(() => loadConfig({ VELOX_REDIS_FLUSH_MS: bad }), bad).toThrow(/VELOX_REDIS_FLUSH_MS/);
    }
  });

  it("takes the indicator hashes' pace from VELOX_REDIS_INDICATORS_MS, 5 to 60000 ms", () => {
    expect(loadConfig({ VELOX_REDIS_INDICATORS_MS: "1000" }).redisIndicatorsMs).toBe(1000);
    for (const bad of ["4", "60001", "slow", "2.5"]) {
      expect(() => loadConfig({ VELOX_REDIS_INDICATORS_MS: bad }), bad).toThrow(/VELOX_REDIS_INDICATORS_MS/);
    }
  });

  it("takes how often a trade's stop is journaled from VELOX_JOURNAL_STOP_INTERVAL_MS, 0 to 60000 ms", () => {
    expect(loadConfig({ VELOX_JOURNAL_STOP_INTERVAL_MS: "0" }).journalStopIntervalMs).toBe(0);
    expect(loadConfig({ VELOX_JOURNAL_STOP_INTERVAL_MS: "5000" }).journalStopIntervalMs).toBe(5000);
    for (const bad of ["-1", "60001", "often", "0.5"]) {
      expect(() => loadConfig({ VELOX_JOURNAL_STOP_INTERVAL_MS: bad }), bad).toThrow(
        /VELOX_JOURNAL_STOP_INTERVAL_MS/,
      );
    }
  });

  it("redacts passwords in URLs", () => {
    expect(redactUrl("redis://:hunter2@h:1")).toBe("redis://:***@h:1");
    expect(redactUrl("redis://default:hunter2@h:1/0")).toBe("redis://default:***@h:1/0");
    expect(redactUrl("not a url")).toBe("***");
  });
});

describe("API guards configuration", () => {
  it("takes a bearer token of 16-256 safe characters, inline or from a file, and never echoes it", () => {
    const token = `${"a".repeat(12)}._~-${"Z9".repeat(8)}`;
    expect(loadConfig({ VELOX_API_TOKEN: token }).apiToken).toBe(token);
    expect(describeConfig(loadConfig({ VELOX_API_TOKEN: token })).apiToken).toBe("***");
    for (const bad of ["short", "has space inside it!!", "x".repeat(257), 'quote"inside0123456']) {
      const error = configError({ VELOX_API_TOKEN: bad });
      expect(error.variable).toBe("VELOX_API_TOKEN");
      expect(error.message).not.toContain(bad);
    }
    const dir = mkdtempSync(join(tmpdir(), "velox-api-token-"));
    const file = join(dir, "token");
    writeFileSync(file, `${token}\n`);
    expect(loadConfig({ VELOX_API_TOKEN_FILE: file }).apiToken).toBe(token);
    expect(configError({ VELOX_API_TOKEN_FILE: file, VELOX_API_TOKEN: token }).variable).toBe(
      "VELOX_API_TOKEN_FILE",
    );
    writeFileSync(file, "bad token\n");
    expect(configError({ VELOX_API_TOKEN_FILE: file }).message).not.toContain("bad token");
    expect(loadConfig({}).apiToken).toBeUndefined();
  });

  it("reads CORS origins (none by default) and refuses anything that is not an origin", () => {
    expect(loadConfig({}).apiCorsOrigins).toEqual([]);
    expect(
      loadConfig({ VELOX_API_CORS_ORIGINS: "http://localhost:3000, https://grafana.example.org" })
        .apiCorsOrigins,
    ).toEqual(["http://localhost:3000", "https://grafana.example.org"]);
    for (const bad of ["*", "localhost:3000", "http://x.example/path", "ftp://x.example"]) {
      expect(configError({ VELOX_API_CORS_ORIGINS: bad }).variable, bad).toBe("VELOX_API_CORS_ORIGINS");
    }
    expect(loadConfig({}).apiRateLimit).toBe(1200);
    expect(loadConfig({ VELOX_API_RATE_LIMIT: "0" }).apiRateLimit).toBe(0);
    expect(configError({ VELOX_API_RATE_LIMIT: "-1" }).variable).toBe("VELOX_API_RATE_LIMIT");
  });
});
