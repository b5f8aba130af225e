import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { loadConfig } from "../../src/config.js";
import {
  API_TOKEN_FILE,
  COMPOSE_URLS,
  GRAFANA_PATHS,
  INFLUX_TOKEN_FILES,
  POSTGRES_GRAFANA,
} from "../../src/schema/grafana.js";
import { skipWithout } from "../helpers/backend.js";

/**
 * The compose stack, proven as far as a machine without a Docker engine allows: docker-compose
 * (1.29, Debian) validates and interpolates the file; the shell the services start through runs
 * here with the secrets in a temporary directory; the rest is read from the file itself.
 */

const PROJECT_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const THIS_FILE = "test/integration/compose.test.ts";
const COMPOSE_FILE = "docker-compose.yml";
const COMPOSE_TEXT = readFileSync(join(PROJECT_ROOT, COMPOSE_FILE), "utf8");
const DOCKERFILE_TEXT = readFileSync(join(PROJECT_ROOT, "Dockerfile"), "utf8");
const ENV_EXAMPLE = readFileSync(join(PROJECT_ROOT, ".env.example"), "utf8");
const TOKEN_SCRIPT_PATH = "influxdb/init/velox-tokens.sh";
const TOKEN_SCRIPT = readFileSync(join(PROJECT_ROOT, TOKEN_SCRIPT_PATH), "utf8");
const SECRETS_SCRIPT = join(PROJECT_ROOT, "scripts/compose-secrets.sh");

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
  secrets?: (string | { source: string })[];
  entrypoint?: string[];
  command?: string[];
  healthcheck?: { test?: string[] };
}
interface Compose {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string }>;
  "x-secrets-check"?: string;
}
const COMPOSE = parse(COMPOSE_TEXT) as Compose;
const SERVICES = Object.entries(COMPOSE.services);

function service(name: string): Service {
  const found = COMPOSE.services[name];
  if (!found) throw new Error(`${COMPOSE_FILE} has no service ${name}`);
  return found;
}

/** The secrets, by the services that read them; every one a file `scripts/compose-secrets.sh` makes. */
const SECRETS_BY_SERVICE: Record<string, string[]> = {
  redis: ["redis_password"],
  "redis-exporter": ["redis_password"],
  influxdb: ["influx_admin_password", "influx_admin_token"],
  velox: ["redis_password", "api_token", "postgres_password"],
  grafana: ["grafana_admin_password", "api_token", "postgres_grafana_password"],
  timescaledb: ["postgres_password", "postgres_grafana_password"],
};
const SECRET_NAMES = [...new Set(Object.values(SECRETS_BY_SERVICE).flat())].sort();
const SECRETS_DIR = "/run/secrets";

/** Every `${NAME…}` the compose file interpolates (`$$NAME` is the container's own, not compose's). */
const COMPOSE_VARIABLES = [
  ...new Set([...COMPOSE_TEXT.matchAll(/(?<!\$)\$\{([A-Z0-9_]+)/g)].map((m) => m[1] as string)),
];

/** The names of the secrets a service mounts (short or long syntax). */
function secretsOf(name: string): string[] {
  return (service(name).secrets ?? []).map((entry) => (typeof entry === "string" ? entry : entry.source));
}

/** A string as the container runs it: Compose turns `$$` into `$` (nothing else here is interpolated). */
const asRun = (text: string) => text.replaceAll("$$", "$");

/** The check every service that reads a secret starts through (`x-secrets-check`), as its shell runs it. */
const SECRETS_CHECK = asRun(COMPOSE["x-secrets-check"] ?? "");

/** Runs `sh -c script arg0 args…` with /run/secrets/ moved to `secretsDir`. */
function runShell(script: string, secretsDir: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return spawnSync("/bin/sh", ["-c", script.replaceAll(`${SECRETS_DIR}/`, `${secretsDir}/`), ...args], {
    env: { PATH: process.env.PATH, ...env },
    encoding: "utf8",
    timeout: 10_000,
  });
}

/** Runs scripts/compose-secrets.sh with `args`. */
function generateSecrets(args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH }) {
  return spawnSync("/bin/sh", [SECRETS_SCRIPT, ...args], { env, encoding: "utf8", timeout: 20_000 });
}

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

  it("hands the InfluxDB tokens from the init script to VELOX and Grafana where src/schema/grafana.ts says", () => {
    const { dir, velox, grafana } = INFLUX_TOKEN_FILES;
    expect(posix.dirname(velox)).toBe(dir);
    expect(posix.dirname(grafana)).toBe(dir);
    expect(service("velox").environment?.VELOX_INFLUX_TOKEN_FILE).toBe(velox);
    expect(mounts("influxdb").get(dir)).toEqual({ source: "influx-tokens", readOnly: false });
    expect(mounts("velox").get(dir)).toEqual({ source: "influx-tokens", readOnly: true });
    expect(mounts("grafana").get(dir)).toEqual({ source: "influx-tokens", readOnly: true });
    expect(mounts("influxdb").get("/docker-entrypoint-initdb.d")).toEqual({
      source: "./influxdb/init",
      readOnly: true,
    });
    expect(TOKEN_SCRIPT).toContain(`dir=${dir}\n`);
    const created = (file: string) => new RegExp(`create_token ${posix.basename(file).replace(".", "\\.")} `);
    expect(TOKEN_SCRIPT).toMatch(created(velox));
    expect(TOKEN_SCRIPT).toMatch(created(grafana));
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
    // URLs, or host:port (Grafana's PostgreSQL datasource takes no scheme).
    const hostOf = (url: string) => (url.includes("://") ? new URL(url).hostname : (url.split(":")[0] ?? ""));
    const hosts = [...Object.values(COMPOSE_URLS).map(hostOf), ...targets];
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
    expect([...new Set(files)].sort()).toEqual(
      [API_TOKEN_FILE, INFLUX_TOKEN_FILES.grafana, POSTGRES_GRAFANA.passwordFile].sort(),
    );
    // The API token is one of Grafana's own secrets, the one VELOX requires.
    expect(secretsOf("grafana")).toContain("api_token");
    expect(service("velox").environment?.VELOX_API_TOKEN_FILE).toBe(API_TOKEN_FILE);
    expect(mounts("grafana").get(INFLUX_TOKEN_FILES.dir)).toEqual({
      source: "influx-tokens",
      readOnly: true,
    });
  });

  it("takes every secret from a file in secrets/, mounted only into the services that read it", () => {
    expect(Object.keys(COMPOSE.secrets ?? {}).sort()).toEqual(SECRET_NAMES);
    for (const [name, secret] of Object.entries(COMPOSE.secrets ?? {})) {
      expect(secret, name).toEqual({ file: `./secrets/${name}` });
    }
    for (const [name] of SERVICES) {
      expect(secretsOf(name).sort(), name).toEqual([...(SECRETS_BY_SERVICE[name] ?? [])].sort());
      // Whatever a service reads from /run/secrets/ is one of its own secrets.
      const read = [...JSON.stringify(service(name)).matchAll(/\/run\/secrets\/([a-z_]+)/g)].map((m) => m[1]);
      for (const secret of read) expect(secretsOf(name), `${name} reads ${secret}`).toContain(secret);
    }
  });

  it("puts no secret in an environment: secret-named variables hold file paths, URLs no password", () => {
    const secretPaths = SECRET_NAMES.map((name) => `${SECRETS_DIR}/${name}`);
    const tokenPaths = [INFLUX_TOKEN_FILES.velox, INFLUX_TOKEN_FILES.grafana];
    for (const [name, svc] of SERVICES) {
      for (const [key, value] of Object.entries(svc.environment ?? {})) {
        const text = String(value);
        if (/password|passwd|token|secret|(^|_)auth$/i.test(key)) {
          expect(key, `${name}: ${key}`).toMatch(/_FILE$/);
          expect([...secretPaths, ...tokenPaths], `${name}: ${key}`).toContain(text);
        }
        if (/^[a-z]+:\/\//.test(text)) expect(new URL(text).password, `${name}: ${key}`).toBe("");
      }
    }
    expect(service("velox").environment?.VELOX_REDIS_PASSWORD_FILE).toBe(`${SECRETS_DIR}/redis_password`);
    expect(service("velox").environment?.VELOX_REDIS_URL).toBe("redis://redis:6379/0");
    // The admin secrets reach the image's own *_FILE support, Grafana's with its __FILE suffix.
    expect(service("influxdb").environment).toMatchObject({
      DOCKER_INFLUXDB_INIT_PASSWORD_FILE: `${SECRETS_DIR}/influx_admin_password`,
      DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE: `${SECRETS_DIR}/influx_admin_token`,
    });
    expect(service("grafana").environment?.GF_SECURITY_ADMIN_PASSWORD__FILE).toBe(
      `${SECRETS_DIR}/grafana_admin_password`,
    );
  });

  it("interpolates only non-secret settings, each with a default; .env.example lists them, no secret", () => {
    expect(COMPOSE_VARIABLES.length).toBeGreaterThan(0);
    for (const name of COMPOSE_VARIABLES) {
      expect(name).not.toMatch(/password|token|secret/i);
      expect(ENV_EXAMPLE, `.env.example lacks ${name}`).toMatch(new RegExp(`^#? ?${name}=`, "m"));
    }
    const references = [...COMPOSE_TEXT.matchAll(/(?<!\$)\$\{[A-Z0-9_]+(.?.?)/g)].map((m) => m[0]);
    for (const reference of references) expect(reference, "a default (:-)").toMatch(/:-$/);
    // A setting, not a secret: .env.example assigns no password or token (VELOX_*_FILE names a file).
    const assigned = [...ENV_EXAMPLE.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1] as string);
    expect(assigned.filter((name) => /password|token|secret/i.test(name) && !name.endsWith("_FILE"))).toEqual(
      [],
    );
    expect(ENV_EXAMPLE).toContain("npm run compose:secrets");
  });

  it("starts each service that reads a secret through the one check, then its own command", () => {
    expect(SECRETS_CHECK).toContain(SECRETS_DIR);
    for (const name of Object.keys(SECRETS_BY_SERVICE).filter((n) => n !== "velox")) {
      const svc = service(name);
      expect(svc.entrypoint?.map(asRun), name).toEqual(["sh", "-c", SECRETS_CHECK, "secrets-check"]);
      expect(
        svc.command?.length,
        `${name} needs a command: an entrypoint clears the image's`,
      ).toBeGreaterThan(0);
    }
    // The images' own entrypoints, which the check execs.
    expect(service("influxdb").command).toEqual(["/entrypoint.sh", "influxd"]);
    expect(service("grafana").command).toEqual(["/run.sh"]);
  });

  describe("what the services' shells run, run here by sh", () => {
    const complete = () => {
      const dir = mkdtempSync(join(tmpdir(), "velox-run-secrets-"));
      for (const name of SECRET_NAMES) writeFileSync(join(dir, name), `${randomBytes(32).toString("hex")}\n`);
      return dir;
    };

    it("execs the command when every secret is a non-empty file", () => {
      const result = runShell(SECRETS_CHECK, complete(), ["secrets-check", "echo", "started", "as", "asked"]);
      expect(result.stderr).toBe("");
      expect(result.status).toBe(0);
      expect(result.stdout).toBe("started as asked\n");
    });

    it.each([
      // What Compose v1 bind-mounts where the secret file was never generated.
      ["an empty directory", (path: string) => mkdirSync(path)],
      ["an empty file", (path: string) => writeFileSync(path, "")],
    ])("stops with exit 2 and one line naming a secret that is %s", (_what, make) => {
      const dir = complete();
      execFileSync("rm", [join(dir, "influx_admin_token")]);
      make(join(dir, "influx_admin_token"));
      const result = runShell(SECRETS_CHECK, dir, ["secrets-check", "echo", "started"]);
      expect(result.status).toBe(2);
      expect(result.stdout).toBe("");
      expect(result.stderr).toBe("secret influx_admin_token missing or empty: run npm run compose:secrets\n");
    });

    it("hands Redis, its healthcheck and the exporter the password from the file", () => {
      const dir = complete();
      const password = readFileSync(join(dir, "redis_password"), "utf8").trim();
      // Stand-ins for the images' programs, printing what they were given.
      const bin = mkdtempSync(join(tmpdir(), "velox-run-bin-"));
      writeFileSync(join(bin, "docker-entrypoint.sh"), '#!/bin/sh\nprintf "%s\\n" "$@"\n', { mode: 0o755 });
      writeFileSync(join(bin, "redis-cli"), '#!/bin/sh\necho "$REDISCLI_AUTH" PONG\n', {
        mode: 0o755,
      });
      const path = { PATH: `${bin}:${process.env.PATH}` };

      const [sh, flag, script = ""] = service("redis").command ?? [];
      expect([sh, flag]).toEqual(["sh", "-c"]);
      const server = runShell(asRun(script), dir, [], path);
      expect(server.status, server.stderr).toBe(0);
      const args = server.stdout.trim().split("\n");
      expect(args[0]).toBe("redis-server");
      expect(args[args.indexOf("--requirepass") + 1]).toBe(password);

      const [kind, check = ""] = service("redis").healthcheck?.test ?? [];
      expect(kind).toBe("CMD-SHELL");
      const health = runShell(asRun(check).replace("grep -q PONG", "cat"), dir, [], path);
      expect(health.stdout).toBe(`${password} PONG\n`);

      const exporter = (service("redis-exporter").command ?? []).map(asRun);
      expect(exporter.slice(0, 2)).toEqual(["sh", "-c"]);
      expect(exporter[2]).toMatch(/exec \/redis_exporter$/);
      const env = runShell((exporter[2] ?? "").replace(/\/redis_exporter$/, "env"), dir);
      expect(env.stdout.split("\n")).toContain(`REDIS_PASSWORD=${password}`);
    });
  });
});

describe("scripts/compose-secrets.sh", () => {
  const target = () => join(mkdtempSync(join(tmpdir(), "velox-secrets-")), "secrets");
  const mode = (path: string) => statSync(path).mode & 0o777;

  it("creates every secret the compose file names: 32 random bytes as hex, 0644, in a 0700 directory", () => {
    const dir = target();
    const result = generateSecrets([dir]);
    expect(result.status, result.stderr).toBe(0);
    // One line per file created, and nothing else.
    expect(result.stdout.endsWith("\n")).toBe(true);
    expect(result.stdout.split("\n").slice(0, -1).sort()).toEqual(
      SECRET_NAMES.map((name) => `created ${join(dir, name)}`),
    );
    expect(readdirSync(dir).sort()).toEqual(SECRET_NAMES);
    expect(mode(dir)).toBe(0o700);
    const values = SECRET_NAMES.map((name) => readFileSync(join(dir, name), "utf8"));
    for (const [i, name] of SECRET_NAMES.entries()) {
      expect(mode(join(dir, name)), name).toBe(0o644);
      expect(values[i], name).toMatch(/^[0-9a-f]{64}\n$/);
      expect(result.stdout + result.stderr).not.toContain((values[i] ?? "").trim());
    }
    expect(new Set(values).size).toBe(values.length);
  });

  it("never overwrites a file, prints nothing when all exist, and replaces Compose v1's empty directories", () => {
    const dir = target();
    mkdirSync(dir);
    writeFileSync(join(dir, "grafana_admin_password"), "chosen-by-hand\n", { mode: 0o600 });
    mkdirSync(join(dir, "redis_password"));
    const first = generateSecrets([dir]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).not.toContain("grafana_admin_password");
    expect(first.stdout).toContain(`created ${join(dir, "redis_password")}\n`);
    expect(statSync(join(dir, "redis_password")).isFile()).toBe(true);
    const before = SECRET_NAMES.map((name) => readFileSync(join(dir, name), "utf8"));
    expect(before[SECRET_NAMES.indexOf("grafana_admin_password")]).toBe("chosen-by-hand\n");

    const second = generateSecrets([dir]);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout + second.stderr).toBe("");
    expect(SECRET_NAMES.map((name) => readFileSync(join(dir, name), "utf8"))).toEqual(before);
    expect(mode(join(dir, "grafana_admin_password"))).toBe(0o600);
  });

  it("falls back to node when openssl is not installed", () => {
    // A PATH with only what the script needs besides openssl.
    const bin = mkdtempSync(join(tmpdir(), "velox-secrets-bin-"));
    for (const tool of ["mkdir", "chmod", "rmdir"]) {
      symlinkSync(
        execFileSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).trim(),
        join(bin, tool),
      );
    }
    symlinkSync(process.execPath, join(bin, "node"));
    const dir = target();
    const result = generateSecrets([dir], { PATH: bin });
    expect(result.status, result.stderr).toBe(0);
    for (const name of SECRET_NAMES)
      expect(readFileSync(join(dir, name), "utf8")).toMatch(/^[0-9a-f]{64}\n$/);
  });

  it("defaults to secrets/ next to docker-compose.yml, which git and the image build leave out", () => {
    // From a copy of the layout (scripts/ beside the compose file), started from elsewhere.
    const project = mkdtempSync(join(tmpdir(), "velox-project-"));
    mkdirSync(join(project, "scripts"));
    copyFileSync(SECRETS_SCRIPT, join(project, "scripts/compose-secrets.sh"));
    const result = spawnSync("/bin/sh", [join(project, "scripts/compose-secrets.sh")], {
      cwd: tmpdir(),
      encoding: "utf8",
    });
    expect(result.status, result.stderr).toBe(0);
    expect(readdirSync(join(project, "secrets")).sort()).toEqual(SECRET_NAMES);
    for (const secret of Object.values(COMPOSE.secrets ?? {}))
      expect(dirname(secret.file ?? "")).toBe("./secrets");
    const ignored = spawnSync(
      "git",
      ["check-ignore", "--no-index", ...SECRET_NAMES.map((n) => `secrets/${n}`), "secrets/README.md"],
      { cwd: PROJECT_ROOT, encoding: "utf8" },
    );
    expect(ignored.stdout.split("\n").filter(Boolean).sort()).toEqual(
      SECRET_NAMES.map((n) => `secrets/${n}`),
    );
    expect(existsSync(join(PROJECT_ROOT, "secrets/README.md"))).toBe(true);
    const dockerignore = readFileSync(join(PROJECT_ROOT, ".dockerignore"), "utf8").split("\n");
    expect(dockerignore).toContain("secrets");
    const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts["compose:secrets"]).toBe("sh scripts/compose-secrets.sh");
  });
});

const skipCompose = skipWithout("docker-compose", "validating docker-compose.yml");

describe.skipIf(skipCompose)("docker-compose config", () => {
  /** A checkout with only the compose file in it (no .env), and what `docker-compose` needs: PATH, HOME. */
  const checkout = () => {
    const dir = mkdtempSync(join(tmpdir(), "velox-compose-"));
    copyFileSync(join(PROJECT_ROOT, COMPOSE_FILE), join(dir, COMPOSE_FILE));
    return dir;
  };
  const config = (cwd: string, ...args: string[]) =>
    spawnSync("docker-compose", ["-f", COMPOSE_FILE, "config", ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      encoding: "utf8",
      timeout: 20_000,
    });

  it("accepts the file on a clean checkout: no .env, no secrets, an empty environment", () => {
    const result = config(checkout(), "-q");
    expect(result.status, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(/variable is not set/);
  });

  it("resolves every secret to its file in secrets/ and copies no value into the configuration", () => {
    const dir = checkout();
    expect(generateSecrets([join(dir, "secrets")]).status).toBe(0);
    const result = config(dir);
    expect(result.status, result.stderr).toBe(0);
    const resolved = parse(result.stdout) as Compose;
    expect(resolved.secrets).toEqual(
      Object.fromEntries(SECRET_NAMES.map((name) => [name, { file: join(dir, "secrets", name) }])),
    );
    for (const name of SECRET_NAMES) {
      const value = readFileSync(join(dir, "secrets", name), "utf8").trim();
      expect(result.stdout, name).not.toContain(value);
    }
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
