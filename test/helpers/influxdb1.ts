/**
 * A real InfluxDB storage engine for the tests: Debian's `influxdb` package (1.6.7, executable
 * `/usr/bin/influxd`), on random ports with its own data directory, stopped by PID. Unlike
 * VictoriaMetrics it is strict: a malformed line or a field whose type differs from the one
 * already stored is answered 400 with InfluxDB's own error text, `SHOW FIELD KEYS` reports the
 * stored types, and InfluxQL counts what landed.
 *
 * It has no InfluxDB 2 API: {@link V2WriteAdapter} takes the client library's
 * `POST /api/v2/write?bucket=&precision=` (gzip or not), forwards the body untouched to
 * `/write?db=<bucket>&precision=<precision>` and passes InfluxDB's status and body back, so the
 * server does all the parsing and storing; `/health` is answered from `/ping`. Nothing else is
 * translated (no Flux: queries go to InfluxQL's `/query`).
 */
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { ManagedProcess } from "./process.js";
import { freePort } from "./redis-server.js";

export const INFLUXD = "influxd";

/** One series of an InfluxQL answer. */
export interface InfluxQLSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

export class InfluxDB1 extends ManagedProcess {
  private constructor(
    port: number,
    private readonly rpcPort: number,
  ) {
    super(port, "velox-influxd-");
  }

  static async start(): Promise<InfluxDB1> {
    const server = new InfluxDB1(await freePort(), await freePort());
    await server.launch();
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private async launch(): Promise<void> {
    const config = join(this.dir, "influxdb.conf");
    writeFileSync(
      config,
      [
        "reporting-disabled = true",
        `bind-address = "127.0.0.1:${this.rpcPort}"`,
        "[meta]",
        `  dir = "${join(this.dir, "meta")}"`,
        "[data]",
        `  dir = "${join(this.dir, "data")}"`,
        `  wal-dir = "${join(this.dir, "wal")}"`,
        "  query-log-enabled = false",
        "[monitor]",
        "  store-enabled = false",
        "[continuous_queries]",
        "  enabled = false",
        "[http]",
        `  bind-address = "127.0.0.1:${this.port}"`,
        "  log-enabled = false",
        // Unlimited rows: a test counts every point of a run.
        "  max-row-limit = 0",
        "",
      ].join("\n"),
    );
    await this.spawnLogged(INFLUXD, ["-config", config], join(this.dir, "influxd.log"), async () => {
      const res = await fetch(`${this.url}/ping`);
      return res.status === 204;
    });
  }

  /** Runs InfluxQL; throws with InfluxDB's error text when a statement fails. */
  async query(q: string, db?: string): Promise<InfluxQLSeries[]> {
    const body = new URLSearchParams({ q, epoch: "ms", ...(db ? { db } : {}) });
    const res = await fetch(`${this.url}/query`, { method: "POST", body });
    const json = (await res.json()) as {
      results?: { series?: InfluxQLSeries[]; error?: string }[];
      error?: string;
    };
    const error = json.error ?? json.results?.find((r) => r.error)?.error;
    if (!res.ok || error) throw new Error(`InfluxQL failed (${res.status}): ${error} in ${q}`);
    return json.results?.flatMap((r) => r.series ?? []) ?? [];
  }

  async createDatabase(db: string): Promise<void> {
    await this.query(`CREATE DATABASE "${db}"`);
  }

  /** Field name → stored type (`float`, `integer`, `string`, `boolean`) of each measurement. */
  async fieldTypes(db: string): Promise<Record<string, Record<string, string>>> {
    const types: Record<string, Record<string, string>> = {};
    for (const series of await this.query("SHOW FIELD KEYS", db)) {
      types[series.name] = Object.fromEntries(
        series.values.map(([field, type]) => [String(field), String(type)]),
      );
    }
    return types;
  }

  /** Points stored in `measurement`: one row per series and timestamp, whatever fields it has. */
  async countPoints(db: string, measurement: string): Promise<number> {
    const series = await this.query(`SELECT * FROM "${measurement}" GROUP BY *`, db);
    return series.reduce((n, s) => n + s.values.length, 0);
  }
}

/** InfluxDB 1.x names microseconds `u`; every other precision is spelled the same. */
const PRECISIONS: Record<string, string> = { ns: "ns", us: "u", ms: "ms", s: "s" };

/** `/api/v2/write` in front of an InfluxDB 1.x `/write` (see the file comment). */
export class V2WriteAdapter {
  /** Requests forwarded, and how InfluxDB answered each. */
  readonly forwarded: { status: number; bytes: number; gzip: boolean }[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(target: string): Promise<V2WriteAdapter> {
    let adapter: V2WriteAdapter | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", async () => {
        try {
          const url = new URL(req.url ?? "/", "http://adapter");
          if (req.method === "GET" && url.pathname === "/health") {
            const ping = await fetch(`${target}/ping`);
            res.writeHead(ping.status === 204 ? 200 : 503, { "content-type": "application/json" });
            res.end(JSON.stringify({ status: ping.status === 204 ? "pass" : "fail" }));
            return;
          }
          if (req.method !== "POST" || url.pathname !== "/api/v2/write") {
            res.writeHead(404, { "content-type": "application/json" });
            res.end(
              JSON.stringify({
                code: "not found",
                message: `the adapter has no ${req.method} ${url.pathname}`,
              }),
            );
            return;
          }
          const precision = PRECISIONS[url.searchParams.get("precision") ?? "ns"];
          const db = url.searchParams.get("bucket");
          if (!precision || !db) {
            res.writeHead(400, { "content-type": "application/json" });
            res.end(
              JSON.stringify({ code: "invalid", message: "bucket and a known precision are required" }),
            );
            return;
          }
          const body = Buffer.concat(chunks);
          const gzip = req.headers["content-encoding"] === "gzip";
          const headers: Record<string, string> = { "content-type": "text/plain; charset=utf-8" };
          if (gzip) headers["content-encoding"] = "gzip";
          const answer = await fetch(`${target}/write?${new URLSearchParams({ db, precision })}`, {
            method: "POST",
            headers,
            body,
          });
          const text = await answer.text();
          adapter?.forwarded.push({ status: answer.status, bytes: body.length, gzip });
          res.writeHead(answer.status, {
            "content-type": answer.headers.get("content-type") ?? "application/json",
          });
          res.end(text);
        } catch (err) {
          res.writeHead(502, { "content-type": "application/json" });
          res.end(JSON.stringify({ code: "bad gateway", message: String(err) }));
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const { port } = server.address() as AddressInfo;
    adapter = new V2WriteAdapter(server, `http://127.0.0.1:${port}`);
    return adapter;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
