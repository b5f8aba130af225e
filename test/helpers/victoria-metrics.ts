/**
 * A real VictoriaMetrics (Debian package `victoria-metrics`, executable `/usr/bin/victoria-metrics`,
 * 1.79.5 on bookworm) standing in for InfluxDB 2 on the write path: it accepts InfluxDB line
 * protocol on `POST /api/v2/write` (and `/write`, `/influx/write`), plain or `Content-Encoding: gzip`,
 * and answers 204 like InfluxDB.
 *
 * What it does with a line (observed with 1.79.5 and the flags below):
 * - every field becomes its own series named `{measurement}_{field}` (`ticks price=1,size=2i` →
 *   `ticks_price`, `ticks_size`), also when the line has a single field;
 * - tags become labels, unescaped (`host=a\ b` → `host="a b"`);
 * - floats are kept; integers (`2i`) and unsigned integers (`7u`) become plain numbers; booleans
 *   become 1 / 0;
 * - string fields are NOT dropped by this version: `side="buy"` is stored as `ticks_side` with the
 *   value 0 (newer releases skip them);
 * - timestamps are cut (truncated, not rounded) to milliseconds: `…0999999999` ns → `…0999` ms;
 *   `precision=s|ms|us|ns` is honoured; a line without a timestamp gets the arrival time;
 * - `/api/v2/write` ignores `org` and `bucket`: no label comes from them. A `db` query argument, on
 *   any write path, becomes the label `db="…"` (`/write?db=mydb` → `db="mydb"`);
 * - a malformed line is skipped and logged, but the request still answers 204: VictoriaMetrics
 *   cannot prove that the writer produced valid line protocol (see {@link VictoriaMetrics.logs});
 * - two points with the same series and timestamp are both kept (no deduplication by default);
 * - points outside the retention (`-retentionPeriod`, default 1 month) or more than 2 days in the
 *   future are dropped with a warning in the log, still with 204.
 *
 * Points become searchable about 1-2 s after the write; {@link VictoriaMetrics.flush}
 * (`/internal/force_flush`) makes them searchable at once, and {@link VictoriaMetrics.exportSeries}
 * calls it first. Searchable is not durable: after a SIGKILL, points written in the last ~10 s
 * are gone (a clean SIGINT shutdown keeps them). {@link VictoriaMetrics.persist} puts everything
 * received on disk, so a test can then SIGKILL without waiting.
 */
import { join } from "node:path";
import { ManagedProcess, readLog } from "./process.js";
import { freePort } from "./redis-server.js";

export const VICTORIA_METRICS = "victoria-metrics";

/** One line of `/api/v1/export`: a series' labels (with `__name__`), values and ms timestamps. */
export interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

export interface ExportOptions {
  /** Unix seconds (or RFC 3339). Default: all time. */
  start?: number | string;
  /** Unix seconds (or RFC 3339). Default: 2 days ahead, the furthest VictoriaMetrics accepts. */
  end?: number | string;
}

/** A real VictoriaMetrics owned by one test file: its own port and temp dir, stopped by PID. */
export class VictoriaMetrics extends ManagedProcess {
  private constructor(
    port: number,
    private readonly extraArgs: string[],
  ) {
    super(port, "velox-vm-");
  }

  static async start(extraArgs: string[] = []): Promise<VictoriaMetrics> {
    const server = new VictoriaMetrics(await freePort(), extraArgs);
    await server.launch();
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get dataDir(): string {
    return join(this.dir, "data");
  }

  get logFile(): string {
    return join(this.dir, "victoria-metrics.log");
  }

  /** (Re)starts the server on the same port and data dir and waits until `/health` answers OK. */
  async launch(): Promise<void> {
    await this.spawnLogged(
      VICTORIA_METRICS,
      [
        `-storageDataPath=${this.dataDir}`,
        `-httpListenAddr=127.0.0.1:${this.port}`,
        // Instant queries at "now" see points up to 1 s old instead of 30 s.
        "-search.latencyOffset=1s",
        // No response cache: a query right after a write sees the write.
        "-search.disableCache",
        // Keep test points with fixed timestamps from any year (the default keeps one month).
        "-retentionPeriod=100y",
        "-loggerLevel=WARN",
        ...this.extraArgs,
      ],
      this.logFile,
      async () => {
        const response = await fetch(`${this.url}/health`);
        return response.ok && (await response.text()) === "OK";
      },
    );
  }

  /** Makes every point received so far searchable now (not durable: see above). */
  async flush(): Promise<void> {
    const response = await fetch(`${this.url}/internal/force_flush`);
    if (!response.ok) throw new Error(`force_flush: HTTP ${response.status}`);
  }

  /**
   * Puts every point received so far on disk, so that it survives a SIGKILL: a forced flush turns
   * the ingestion buffer into parts, creating a snapshot writes the in-memory parts (the snapshot
   * itself is deleted again).
   */
  async persist(): Promise<void> {
    // Rows still in the ingestion buffer are not in any part yet, so a snapshot alone misses
    // them (seen: a drill lost its first 2 s of points to a SIGKILL right after a snapshot).
    await this.flush();
    const created = await fetch(`${this.url}/snapshot/create`);
    const body = (await created.json()) as { status?: string; snapshot?: string; msg?: string };
    if (!created.ok || body.status !== "ok" || !body.snapshot) {
      throw new Error(`snapshot/create: HTTP ${created.status}: ${JSON.stringify(body)}`);
    }
    const deleted = await fetch(`${this.url}/snapshot/delete?snapshot=${encodeURIComponent(body.snapshot)}`);
    if (!deleted.ok) throw new Error(`snapshot/delete: HTTP ${deleted.status}`);
  }

  /**
   * Every stored point of the series matching `match` (a series selector such as `ticks_price` or
   * `{__name__=~"ticks_.*",symbol="AAPL"}`), read back through `/api/v1/export`, sorted by name and
   * labels. Flushes first.
   */
  async exportSeries(match: string, options: ExportOptions = {}): Promise<ExportedSeries[]> {
    await this.flush();
    const params = new URLSearchParams({ "match[]": match });
    params.set("start", String(options.start ?? 0));
    params.set("end", String(options.end ?? Math.floor(Date.now() / 1000) + 2 * 86_400));
    const response = await fetch(`${this.url}/api/v1/export`, { method: "POST", body: params });
    const text = await response.text();
    if (!response.ok) throw new Error(`export ${match}: HTTP ${response.status}: ${text}`);
    const series = text
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => JSON.parse(line) as ExportedSeries);
    return series.sort((a, b) => {
      const [ka, kb] = [seriesKey(a), seriesKey(b)];
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
  }

  /** The server's log (warnings and errors only), e.g. lines it could not parse. */
  logs(): string {
    return readLog(this.logFile);
  }
}

function seriesKey(series: ExportedSeries): string {
  const { __name__: name = "", ...labels } = series.metric;
  const rest = Object.keys(labels)
    .sort()
    .map((key) => `${key}=${labels[key]}`);
  return [name, ...rest].join(",");
}
