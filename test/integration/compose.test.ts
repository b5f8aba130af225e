import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../src/config.js";
import { COMPOSE_URLS, GRAFANA_PATHS } from "../../src/schema/grafana.js";
import { skipWithout } from "../helpers/backend.js";

/**
 * The compose stack, proven as far as a machine without a Docker engine allows: docker-compose
 * (1.29, Debian) validates and interpolates the file; the rest is read from the file itself.
 */

const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const THIS_FILE = "test/integration/compose.test.ts";
const COMPOSE_FILE = "docker-compose.yml";
const COMPOSE_TEXT = readFileSync(join(PROJECT_ROOT, COMPOSE_FILE), "utf8");
const DOCKERFILE_TEXT = readFileSync(join(PROJECT_ROOT, "Dockerfile"), "utf8");
const ENV_EXAMPLE = readFileSync(join(PROJECT_ROOT, ".env.example"), "utf8");
const TOKEN_SCRIPT_PATH = "influxdb/init/velox-tokens.sh";
const TOKEN_SCRIPT = readFileSync(join(PROJECT_ROOT, TOKEN_SCRIPT_PATH), "utf8");

interface PortObject {
  target: number;
  published?: number | string;
  host_ip?: string;
}
interface Service {
  image?: string;
  build?: unknown;
  profiles?: string[];
  ports?: (string | PortObject)[];
  volumes?: string[];
  environment?: Record<string, string | number>;
}
const COMPOSE = parse(COMPOSE_TEXT) as { services: Record<string, Service> };
const SERVICES = Object.entries(COMPOSE.services);

function service(name: string): Service {
  const found = COMPOSE.services[name];
  if (!found) throw new Error(`${COMPOSE_FILE} has no service ${name}`);
  return found;
}

/** The secrets the file requires (`${NAME:?…}`): no default, and `docker-compose` refuses without them. */
const REQUIRED_SECRETS = [
  "VELOX_REDIS_PASSWORD",
  "VELOX_INFLUX_ADMIN_PASSWORD",
  "VELOX_INFLUX_ADMIN_TOKEN",
  "VELOX_GRAFANA_ADMIN_PASSWORD",
];

/** Every `${NAME…}` the compose file interpolates (`$$NAME` is the container's own, not compose's). */
const COMPOSE_VARIABLES = [
  ...new Set([...COMPOSE_TEXT.matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((m) => m[1] as string)),
];

/** A short-syntax volume `source:target[:mode]`, by target. */
function mounts(name: string): Map<string, { source: string; readOnly: boolean }> {
  const byTarget = new Map<string, { source: string; readOnly: boolean }>();
  for (const entry of service(name).volumes ?? []) {
    const [source = "", target = "", mode = "rw"] = entry.split(":");
    byTarget.set(target, { source, readOnly: mode.split(",").includes("ro") });
  }
  return byTarget;
}

/** Host address and port of a published port, in either syntax; undefined when it has no host address. */
function published(port: string | PortObject): { hostIp: string | undefined; hostPort: string | undefined } {
  if (typeof port !== "string") {
    return {
      hostIp: port.host_ip,
      hostPort: port.published === undefined ? undefined : String(port.published),
    };
  }
  const m = /^(?:(?<ip>[^:]+):)?(?<host>[^:]+):(?<container>[^:/]+)(?:\/(?:tcp|udp))?$/.exec(port);
  return { hostIp: m?.groups?.ip, hostPort: m?.groups?.host };
}

/** An image reference is pinned when its tag names a full version: not `latest`, not `7-alpine`. */
function pinned(image: string): boolean {
  const name = image.slice(image.lastIndexOf("/") + 1);
  const colon = name.lastIndexOf(":");
  if (colon < 0) return false;
  const tag = name.slice(colon + 1);
  return tag !== "latest" && /(^|[^0-9.])v?\d+\.\d+\.\d+([^0-9.]|$)/.test(tag);
}

describe("docker-compose.yml, as written", () => {
  it("publishes every port of every service (profiles too) on 127.0.0.1 only", () => {
    const byService: Record<string, string[]> = {};
    for (const [name, svc] of SERVICES) {
      for (const port of svc.ports ?? []) {
        const { hostIp, hostPort } = published(port);
        expect(hostIp, `${name}: ${JSON.stringify(port)}`).toBe("127.0.0.1");
        byService[name] = [...(byService[name] ?? []), hostPort ?? ""];
      }
    }
    expect(byService).toMatchObject({
      grafana: ["3000"],
      prometheus: ["9090"],
      influxdb: ["8086"],
      redis: ["6379"],
      velox: ["5000", "9464"],
      kafka: ["9092"],
    });
    expect(service("kafka").profiles).toEqual(["kafka"]);
  });

  it("pins every image, the Dockerfile's too", () => {
    for (const [name, svc] of SERVICES) {
      expect(svc.image, `${name} has no image`).toBeTypeOf("string");
      expect(pinned(svc.image ?? ""), `${name}: ${svc.image}`).toBe(true);
    }
    const stages = new Set<string>();
    const froms = [...DOCKERFILE_TEXT.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)];
    expect(froms.length).toBeGreaterThan(0);
    for (const [, image = "", stage] of froms) {
      if (!stages.has(image)) expect(pinned(image), `Dockerfile FROM ${image}`).toBe(true);
      if (stage) stages.add(stage);
    }
  });

  it("mounts what Grafana reads where src/schema/grafana.ts says", () => {
    const grafana = mounts("grafana");
    expect(grafana.get(GRAFANA_PATHS.provisioning)).toEqual({
      source: "./grafana/provisioning",
      readOnly: true,
    });
    expect(grafana.get(GRAFANA_PATHS.dashboards)).toEqual({ source: "./dashboards", readOnly: true });
    // The journal's directory is writable: a WAL reader creates and writes the -shm file.
    expect(grafana.get(GRAFANA_PATHS.journalDir)).toEqual({ source: "velox-data", readOnly: false });
    expect(posix.dirname(GRAFANA_PATHS.journal)).toBe(GRAFANA_PATHS.journalDir);

    // VELOX writes the journal into the same volume, at the path Grafana opens.
    expect(mounts("velox").get(GRAFANA_PATHS.journalDir)).toEqual({ source: "velox-data", readOnly: false });
    const dataDir = /^\s*VELOX_DATA_DIR=(\S+)/m.exec(DOCKERFILE_TEXT)?.[1];
    expect(loadConfig({ VELOX_DATA_DIR: dataDir }).sqlitePath).toBe(GRAFANA_PATHS.journal);
  });

  it("hands the InfluxDB tokens from the init script to VELOX and Grafana through one volume", () => {
    const tokenFile = String(service("velox").environment?.VELOX_INFLUX_TOKEN_FILE);
    const tokenDir = posix.dirname(tokenFile);
    expect(mounts("influxdb").get(tokenDir)).toEqual({ source: "influx-tokens", readOnly: false });
    expect(mounts("velox").get(tokenDir)).toEqual({ source: "influx-tokens", readOnly: true });
    expect(mounts("grafana").get(tokenDir)).toEqual({ source: "influx-tokens", readOnly: true });
    expect(mounts("influxdb").get("/docker-entrypoint-initdb.d")).toEqual({
      source: "./influxdb/init",
      readOnly: true,
    });
    expect(TOKEN_SCRIPT).toContain(`dir=${tokenDir}\n`);
    expect(TOKEN_SCRIPT).toMatch(
      new RegExp(`create_token ${posix.basename(tokenFile).replace(".", "\\.")} `),
    );
    expect(TOKEN_SCRIPT).toMatch(/create_token grafana-read\.token .*\n\s+--read-bucket "\$bucket"$/m);
    // The image's entrypoint runs only executable scripts (run-parts), so git must keep the bit.
    expect(statSync(join(PROJECT_ROOT, TOKEN_SCRIPT_PATH)).mode & 0o111).not.toBe(0);
    const staged = execFileSync("git", ["ls-files", "-s", TOKEN_SCRIPT_PATH], {
      cwd: PROJECT_ROOT,
      encoding: "utf8",
    });
    if (staged !== "") expect(staged.slice(0, 6)).toBe("100755");
  });

  it("names as services the hosts Grafana's datasources and Prometheus' scrapes point at", () => {
    const prometheusConfig = readFileSync(join(PROJECT_ROOT, "prometheus/prometheus.yml"), "utf8");
    const targets = [...prometheusConfig.matchAll(/"([a-z][a-z0-9-]*):\d+"/g)].map((m) => m[1] as string);
    const hosts = [...Object.values(COMPOSE_URLS).map((url) => new URL(url).hostname), ...targets];
    expect(targets).toEqual(expect.arrayContaining(["velox", "redis-exporter", "influxdb"]));
    for (const host of hosts) expect(Object.keys(COMPOSE.services)).toContain(host);
  });

  it("gives Grafana every variable and file its provisioning references", () => {
    const dir = join(PROJECT_ROOT, "grafana/provisioning");
    const texts = readdirSync(dir, { recursive: true, encoding: "utf8" })
      .filter((f) => /\.ya?ml$/.test(f))
      .map((f) => readFileSync(join(dir, f), "utf8"));
    expect(texts.length).toBeGreaterThan(0);
    const text = texts.join("\n");
    const variables = [...text.matchAll(/\$\{?([A-Za-z][A-Za-z0-9_]*)/g)].map((m) => m[1] as string);
    const files = [...text.matchAll(/\$__file\{([^}]+)\}/g)].map((m) => m[1] as string);
    expect(variables.length).toBeGreaterThan(0);
    for (const name of variables) {
      expect(Object.keys(service("grafana").environment ?? {}), `$${name}`).toContain(name);
    }
    const grafana = mounts("grafana");
    for (const file of files) {
      expect(grafana.get(posix.dirname(file)), `$__file{${file}}`).toEqual({
        source: "influx-tokens",
        readOnly: true,
      });
      expect(TOKEN_SCRIPT).toMatch(new RegExp(`create_token ${posix.basename(file).replace(".", "\\.")} `));
    }
  });

  it("requires the secrets, and .env.example lists every variable it reads with secrets left empty", () => {
    const required = COMPOSE_VARIABLES.filter((name) => new RegExp(`\\$\\{${name}:\\?`).test(COMPOSE_TEXT));
    expect(required.sort()).toEqual([...REQUIRED_SECRETS].sort());
    for (const name of COMPOSE_VARIABLES) {
      expect(ENV_EXAMPLE, `.env.example lacks ${name}`).toMatch(new RegExp(`^#? ?${name}=`, "m"));
    }
    for (const name of REQUIRED_SECRETS) {
      expect(ENV_EXAMPLE, `.env.example must leave ${name} empty`).toMatch(new RegExp(`^${name}=$`, "m"));
    }
  });
});

const skipCompose = skipWithout("docker-compose", "validating docker-compose.yml");

describe.skipIf(skipCompose)("docker-compose config", () => {
  // A clean environment: no VELOX_* or COMPOSE_* from the caller, and an empty env file so that a
  // developer's .env cannot supply (or break) anything.
  const emptyEnvFile = join(mkdtempSync(join(tmpdir(), "velox-compose-")), "empty.env");
  writeFileSync(emptyEnvFile, "");
  const baseEnv = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(VELOX_|COMPOSE_)/.test(name)),
  );
  const secrets = Object.fromEntries(REQUIRED_SECRETS.map((name) => [name, randomBytes(32).toString("hex")]));

  const config = (env: Record<string, string | undefined>, ...args: string[]) =>
    spawnSync("docker-compose", ["--env-file", emptyEnvFile, "-f", COMPOSE_FILE, "config", ...args], {
      cwd: PROJECT_ROOT,
      env,
      encoding: "utf8",
      timeout: 20_000,
    });

  it("accepts the file with the secrets supplied", () => {
    const result = config({ ...baseEnv, ...secrets }, "-q");
    expect(result.status, result.stderr).toBe(0);
  });

  it("interpolates the secrets where they belong, and only there", () => {
    const result = config({ ...baseEnv, ...secrets });
    expect(result.status, result.stderr).toBe(0);
    const resolved = parse(result.stdout) as { services: Record<string, Service> };
    const env = (name: string) => resolved.services[name]?.environment ?? {};
    expect(env("velox").VELOX_REDIS_URL).toBe(`redis://:${secrets.VELOX_REDIS_PASSWORD}@redis:6379/0`);
    expect(env("redis").REDISCLI_AUTH).toBe(secrets.VELOX_REDIS_PASSWORD);
    expect(env("redis-exporter").REDIS_PASSWORD).toBe(secrets.VELOX_REDIS_PASSWORD);
    expect(env("influxdb").DOCKER_INFLUXDB_INIT_PASSWORD).toBe(secrets.VELOX_INFLUX_ADMIN_PASSWORD);
    expect(env("influxdb").DOCKER_INFLUXDB_INIT_ADMIN_TOKEN).toBe(secrets.VELOX_INFLUX_ADMIN_TOKEN);
    expect(env("grafana").GF_SECURITY_ADMIN_PASSWORD).toBe(secrets.VELOX_GRAFANA_ADMIN_PASSWORD);
    // VELOX never sees the admin token: it reads its own, bucket-scoped one from a file.
    expect(JSON.stringify(resolved.services.velox)).not.toContain(secrets.VELOX_INFLUX_ADMIN_TOKEN);
    expect(env("velox").VELOX_INFLUX_TOKEN).toBeUndefined();
  });

  it.each(REQUIRED_SECRETS)("refuses to go on without %s, naming it", (missing) => {
    const { [missing]: _dropped, ...rest } = secrets;
    const result = config({ ...baseEnv, ...rest }, "-q");
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(`set ${missing} in .env`);
  });
});

describe("the repository holds no secret", () => {
  /**
   * The project hook's pattern (../shared/hooks/before-stop): a secret-ish name given a quoted
   * literal; here also `SECRET_KEY` and `API_KEY` names.
   */
  const QUOTED = /(password|passwd|secret(_?key)?|token|api[_-]?key)["' ]*[:=] *["'][^"'$ {]{8,}/i;
  /** Stricter in files that assign without quotes (env, YAML, shell, Docker, docs): any literal. */
  const UNQUOTED = /(password|passwd|secret(_?key)?|token|api[_-]?key)["' ]*[:=] *[^"'$ {\s#][^"'\s]{7,}/i;
  const UNQUOTED_FILES = /(\.ya?ml|\.sh|\.env[^/]*|\.ini|\.toml|\.conf|\.properties|\.md|(^|\/)Dockerfile)$/;
  /**
   * Throwaway values the existing tests write as literals on purpose (a redaction test needs a
   * known string to look for; a server that ignores the token still needs one). Each is matched
   * exactly: any other literal fails.
   */
  const FIXTURE_VALUES = new Set([
    "unused-by-victoria-metrics",
    "s3cret-token",
    "not-what-it-wants",
    "s3cret-pw",
    "secret-token",
  ]);
  const literalOf = (line: string, pattern: RegExp) => {
    const m = new RegExp(`${pattern.source}[^"'\\s]*`, "i").exec(line)?.[0] ?? "";
    return m.replace(/^.*?[:=] *["']?/, "");
  };
  const flagged = (file: string, line: string) =>
    [QUOTED, ...(UNQUOTED_FILES.test(file) ? [UNQUOTED] : [])].some(
      (pattern) =>
        pattern.test(line) && !(file.startsWith("test/") && FIXTURE_VALUES.has(literalOf(line, pattern))),
    );
  /** The inline secrets of the seed's compose file (002, Task 4.4). */
  const SEED_LITERALS = ["velox-super-secret-token", "veloxinflux123", "velox123"];

  const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
  })
    .split("\0")
    .filter((f) => f !== "" && f !== "package-lock.json" && existsSync(join(PROJECT_ROOT, f)));

  const texts = files.flatMap((file) => {
    const bytes = readFileSync(join(PROJECT_ROOT, file));
    return bytes.subarray(0, 8000).includes(0) ? [] : [{ file, text: bytes.toString("utf8") }];
  });

  it("reads the files git knows of", () => {
    expect(texts.map((t) => t.file)).toEqual(
      expect.arrayContaining([COMPOSE_FILE, ".env.example", "Dockerfile"]),
    );
  });

  it("has no password, secret or token assigned a literal", () => {
    const hits: string[] = [];
    for (const { file, text } of texts) {
      text.split("\n").forEach((line, i) => {
        if (flagged(file, line)) {
          hits.push(`${file}:${i + 1}: ${line.trim()}`);
        }
      });
    }
    expect(hits).toEqual([]);
  });

  it("has none of the seed's inline secrets", () => {
    const hits = texts
      .filter(({ file }) => file !== THIS_FILE)
      .flatMap(({ file, text }) =>
        SEED_LITERALS.filter((literal) => text.toLowerCase().includes(literal)).map((l) => `${file}: ${l}`),
      );
    expect(hits).toEqual([]);
  });

  it("catches a secret written inline (the scan itself)", () => {
    const sample = `  GF_SECURITY_ADMIN_PASSWORD: ${randomBytes(8).toString("hex")}`;
    expect(UNQUOTED.test(sample)).toBe(true);
    expect(QUOTED.test(`password = "${randomBytes(8).toString("hex")}"`)).toBe(true);
    const reference = ["  GF_SECURITY_ADMIN_PASSWORD: $", "{VELOX_GRAFANA_ADMIN_PASSWORD:?set it}"].join("");
    expect(UNQUOTED.test(reference)).toBe(false);
  });
});
