import type { Logger } from "pino";
import { errorMessage } from "../domain/errors.js";
import { utcDay } from "../domain/time.js";
import type { Trade } from "../domain/trade.js";
import { ARCHIVED_METRIC, PG_TABLES } from "../schema/postgres.js";
import { entryFill, exitFill, type FillRecord, type MetricRecord } from "./history-rows.js";
import type { StrategyCounters } from "./redis-cache-schemas.js";
import type { TradeChangeCursor } from "./trade-journal.js";

/** What the archiver needs of the history store. */
export interface ArchiveTarget {
  readonly ready: boolean;
  /** The last attempt to reach PostgreSQL failed. */
  readonly unreachable: boolean;
  writeFill(fill: FillRecord): void;
  writeMetrics(rows: readonly MetricRecord[]): void;
  /** Resolves once every row given so far is in PostgreSQL or its spool. */
  flush(): Promise<void>;
  withClient<T>(
    work: (client: {
      query: (sql: string, values?: unknown[]) => Promise<{ rows: unknown[] }>;
    }) => Promise<T>,
  ): Promise<T>;
}

/** What the archiver reads of the journal. */
export interface ArchiveJournal {
  readonly inGroup: boolean;
  tradesChangedAfter(after: TradeChangeCursor | undefined, limit: number): Trade[];
}

export interface ArchiverStats {
  passes: number;
  failedPasses: number;
  tradesArchived: number;
  metricsArchived: number;
  /** Epoch ms of the last pass that completed; undefined before the first. */
  lastSuccessMs: number | undefined;
}

export interface HistoryArchiverOptions {
  target: ArchiveTarget;
  journal: ArchiveJournal;
  /** The figures worth keeping (Redis state: strategy counters, daily stats, performance). */
  figures?: () => Promise<MetricRecord[]>;
  /** Default 60 s. */
  intervalMs?: number;
  logger?: Logger;
}

const JOURNAL_CURSOR = "journal";
const PAGE = 1_000;

/**
 * Seed 003's data lifecycle: on a timer, what matters of the hot stores goes to the history
 * store. The journal's trades (each entry and exit fill, as the live path writes them) from the
 * last archived change on, and the figures Redis holds. Resumable: the cursor (the last archived
 * trade's updated_at and id) is saved in PostgreSQL only after the rows it covers are durable
 * (in PostgreSQL or the spool), so a crash repeats a pass at worst, and a repeat adds nothing.
 */
export class HistoryArchiver {
  private readonly log: Logger | undefined;
  private readonly timer: NodeJS.Timeout;
  private readonly first: NodeJS.Timeout;
  private cursor: TradeChangeCursor | undefined;
  private cursorLoaded = false;
  private running: Promise<void> | undefined;
  private readonly counts: ArchiverStats = {
    passes: 0,
    failedPasses: 0,
    tradesArchived: 0,
    metricsArchived: 0,
    lastSuccessMs: undefined,
  };

  constructor(private readonly options: HistoryArchiverOptions) {
    this.log = options.logger;
    this.timer = setInterval(() => void this.runOnce(), options.intervalMs ?? 60_000);
    this.timer.unref();
    // The first pass soon after start: what earlier runs left unarchived goes first.
    this.first = setTimeout(() => void this.runOnce(), Math.min(1_000, options.intervalMs ?? 60_000));
    this.first.unref();
  }

  stats(): ArchiverStats {
    return { ...this.counts };
  }

  /** One pass (or the one already running). Never rejects: a failed pass is counted and logged. */
  runOnce(): Promise<void> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /**
   * Stops the timer after one last pass, so the run's final state reaches the history store; with
   * PostgreSQL away there is no last pass (the next run's first one covers it).
   */
  async close(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.first);
    await this.running;
    if (!this.options.target.unreachable) await this.runOnce();
  }

  private async pass(): Promise<void> {
    const { target, journal } = this.options;
    try {
      // The store migrates on its first flush; until PostgreSQL answers there is no cursor to read.
      if (!target.ready) await target.flush();
      if (!target.ready) throw new Error("PostgreSQL is not reachable");
      if (!this.cursorLoaded) {
        this.cursor = await this.loadCursor();
        this.cursorLoaded = true;
      }
      // Between journal groups only, so no uncommitted trade is archived.
      while (journal.inGroup) await new Promise((resolve) => setTimeout(resolve, 5));
      let cursor = this.cursor;
      let trades = 0;
      for (
        let page = journal.tradesChangedAfter(cursor, PAGE);
        page.length > 0;
        page = journal.tradesChangedAfter(cursor, PAGE)
      ) {
        for (const trade of page) {
          target.writeFill(entryFill(trade));
          const exit = exitFill(trade);
          if (exit) target.writeFill(exit);
        }
        const last = page[page.length - 1] as Trade;
        cursor = { updatedAt: last.updated_at, tradeId: last.trade_id };
        trades += page.length;
        // A long journal's first pass must not hold the event loop: the ticks go on meanwhile.
        await new Promise((resolve) => setImmediate(resolve));
        while (journal.inGroup) await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const figures = this.options.figures ? await this.options.figures() : [];
      target.writeMetrics(figures);
      await target.flush();
      if (cursor !== this.cursor && cursor) await this.saveCursor(cursor);
      this.cursor = cursor;
      this.counts.passes++;
      this.counts.tradesArchived += trades;
      this.counts.metricsArchived += figures.length;
      this.counts.lastSuccessMs = Date.now();
      if (trades > 0) this.log?.debug({ trades, figures: figures.length }, "archived to PostgreSQL");
    } catch (err) {
      this.counts.failedPasses++;
      this.log?.warn({ err: errorMessage(err) }, "archival pass failed; the next one retries");
    }
  }

  private async loadCursor(): Promise<TradeChangeCursor | undefined> {
    return this.options.target.withClient(async (client) => {
      const { rows } = await client.query(`SELECT position FROM ${PG_TABLES.archiveState} WHERE name = $1`, [
        JOURNAL_CURSOR,
      ]);
      const position = (rows[0] as { position?: TradeChangeCursor } | undefined)?.position;
      return position && typeof position.updatedAt === "number" && typeof position.tradeId === "string"
        ? position
        : undefined;
    });
  }

  private async saveCursor(cursor: TradeChangeCursor): Promise<void> {
    await this.options.target.withClient((client) =>
      client.query(
        `INSERT INTO ${PG_TABLES.archiveState} (name, position, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()`,
        [JOURNAL_CURSOR, JSON.stringify(cursor)],
      ),
    );
  }
}

/** What the archiver reads of Redis. */
export interface FigureSource {
  getStrategyCounters(strategyId: string): Promise<StrategyCounters>;
  getDailyStats(date?: Date): Promise<Record<string, number>>;
  getPerformance(): Promise<Record<string, string | number | boolean | null>>;
}

/**
 * The Redis state worth keeping, as `metrics_data` rows at `now`: each strategy's counters
 * (`strategy.trades`, `strategy.signals` per action, …), today's daily figures (`daily.<name>`)
 * and the numeric performance figures (`performance.<name>`).
 */
export async function redisFigures(
  cache: FigureSource,
  strategyIds: readonly string[],
  now = Date.now(),
): Promise<MetricRecord[]> {
  const rows: MetricRecord[] = [];
  const add = (metric_name: string, value: unknown, labels: Record<string, string> = {}) => {
    if (typeof value === "number" && Number.isFinite(value))
      rows.push({ metric_name, timestamp: now, value, labels });
  };
  for (const strategy_id of strategyIds) {
    const c = await cache.getStrategyCounters(strategy_id);
    for (const name of ["trades", "wins", "losses", "pnl"] as const)
      add(ARCHIVED_METRIC.strategy(name), c[name], { strategy_id });
    for (const [action, count] of Object.entries(c.signals))
      add(ARCHIVED_METRIC.strategy("signals"), count, { strategy_id, action });
  }
  const day = new Date(now);
  for (const [name, value] of Object.entries(await cache.getDailyStats(day))) {
    add(ARCHIVED_METRIC.daily(name), value, { day: utcDay(day) });
  }
  for (const [name, value] of Object.entries(await cache.getPerformance()))
    add(ARCHIVED_METRIC.performance(name), value);
  return rows;
}
