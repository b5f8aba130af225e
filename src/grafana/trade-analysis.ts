import { DASHBOARD_UIDS } from "../schema/grafana.js";
import { TABLES } from "../schema/sqlite.js";
import {
  barchart,
  customVariable,
  type DashboardOptions,
  DEFAULT_DASHBOARD_OPTIONS,
  HIDDEN,
  linkTo,
  MONEY_UNIT,
  piechart,
  queryVariable,
  row,
  stat,
  table,
  timeseries,
  unitOf,
  variantUid,
  veloxDashboard,
} from "./common.js";
import { sqlSeries, sqlTable } from "./queries.js";

/**
 * Trade Analysis (seed 002 task 4.4.3), from the SQLite journal: the closed trades' statistics with
 * the formulas of src/storage/trade-stats.ts, their distribution, and the trade list that links
 * each trade to Trade Detail.
 *
 * Variables reach SQL only as `${var:sqlstring}` (each value quoted, `'` doubled: what SQLite
 * reads); custom values are off, so only values the journal itself returned can be chosen.
 */

const T = TABLES.trades;

/** The dashboard's filters: strategy, symbol and the time range (on entry time). */
const FILTERS = `strategy_id IN (\${strategy:sqlstring})
  AND symbol IN (\${symbol:sqlstring})
  AND entry_time >= $__from / 1000.0 AND entry_time <= $__to / 1000.0`;

/** `$status` is all, open or closed. */
const STATUS_FILTER = `(\${status:sqlstring} = 'all' OR status = \${status:sqlstring})`;

/**
 * The closed trades the statistics are computed over (every stat is defined on closed trades,
 * whatever `$status` says). `trade_rowid` orders equal exit times as the journal stored them.
 */
const CLOSED = `WITH closed AS (
  SELECT rowid AS trade_rowid, pnl, duration_seconds, exit_time, exit_reason FROM ${T}
  WHERE status = 'closed' AND ${FILTERS}
)`;

/** The SQL of each statistic, one number per query, named as StrategyStats names it. */
export const TRADE_STATS_SQL = {
  total_trades: `${CLOSED}
SELECT COUNT(*) AS total_trades FROM closed`,
  win_rate: `${CLOSED}
SELECT CASE WHEN COUNT(*) = 0 THEN 0.0 ELSE SUM(pnl > 0) * 1.0 / COUNT(*) END AS win_rate FROM closed`,
  profit_factor: `${CLOSED}
SELECT CASE WHEN COALESCE(SUM(pnl < 0), 0) = 0 THEN NULL
  ELSE SUM(CASE WHEN pnl > 0 THEN pnl ELSE 0 END) / ABS(SUM(CASE WHEN pnl < 0 THEN pnl ELSE 0 END))
END AS profit_factor FROM closed`,
  // freqtrade's expectancy: win_rate × avg_win − loss_rate × |avg_loss|.
  expectancy: `${CLOSED}
SELECT CASE WHEN COUNT(*) = 0 THEN 0.0 ELSE
  (SUM(pnl > 0) * 1.0 / COUNT(*)) * COALESCE(AVG(CASE WHEN pnl > 0 THEN pnl END), 0)
  - (SUM(pnl < 0) * 1.0 / COUNT(*)) * COALESCE(ABS(AVG(CASE WHEN pnl < 0 THEN pnl END)), 0)
END AS expectancy FROM closed`,
  total_pnl: `${CLOSED}
SELECT COALESCE(SUM(pnl), 0.0) AS total_pnl FROM closed`,
  avg_duration_seconds: `${CLOSED}
SELECT COALESCE(AVG(duration_seconds), 0.0) AS avg_duration_seconds FROM closed`,
  // Peak of the cumulative P&L starts at 0, as in computeStrategyStats.
  max_drawdown: `${CLOSED},
curve AS (
  SELECT exit_time, trade_rowid,
    SUM(pnl) OVER (ORDER BY exit_time, trade_rowid ROWS UNBOUNDED PRECEDING) AS cum
  FROM closed
)
SELECT COALESCE(MAX(peak - cum), 0.0) AS max_drawdown FROM (
  SELECT cum, MAX(0, MAX(cum) OVER (ORDER BY exit_time, trade_rowid ROWS UNBOUNDED PRECEDING)) AS peak
  FROM curve
)`,
} as const;

export type TradeStatName = keyof typeof TRADE_STATS_SQL;

export function tradeAnalysis(options: DashboardOptions = DEFAULT_DASHBOARD_OPTIONS) {
  const d = veloxDashboard(
    {
      title: "VELOX · Trade Analysis",
      uid: DASHBOARD_UIDS.tradeAnalysis,
      description: "Closed-trade statistics, P&L curves and the trade list, from the trade journal.",
      tags: ["trading", "trades"],
      from: "now-7d",
      refresh: "1m",
    },
    options,
  )
    .withVariable(
      queryVariable(
        "strategy",
        "Strategy",
        "sqlite",
        `SELECT DISTINCT strategy_id FROM ${T} ORDER BY strategy_id`,
        {
          multi: true,
          includeAll: true,
        },
      ),
    )
    .withVariable(
      queryVariable(
        "symbol",
        "Symbol",
        "sqlite",
        `SELECT DISTINCT symbol FROM ${T} WHERE strategy_id IN (\${strategy:sqlstring}) ORDER BY symbol`,
        { multi: true, includeAll: true },
      ),
    )
    .withVariable(customVariable("status", "Status", ["all", "open", "closed"]));

  const statPanel = (
    id: number,
    name: TradeStatName,
    title: string,
    description: string,
    unit: string,
    options: { colorBySign?: boolean; decimals?: number } = {},
  ) =>
    stat(
      {
        id,
        title,
        description,
        unit,
        decimals: options.decimals ?? 2,
        targets: [sqlTable(TRADE_STATS_SQL[name])],
        // Seven stats across the 24 columns: the money figures get the wider cells.
        w: unit === MONEY_UNIT ? 4 : 3,
        h: 4,
      },
      { colorBySign: options.colorBySign ?? false },
    );

  d.withRow(row(100, "Statistics (closed trades)"))
    .withPanel(
      statPanel(1, "total_trades", "Closed trades", "Closed trades in the selection.", "short", {
        decimals: 0,
      }),
    )
    .withPanel(
      statPanel(2, "win_rate", "Win rate", "Share of closed trades with P&L > 0.", "percentunit", {
        decimals: 1,
      }),
    )
    .withPanel(
      statPanel(
        3,
        "profit_factor",
        "Profit factor",
        "Gross profit ÷ |gross loss|; empty when no trade lost.",
        "none",
      ),
    )
    .withPanel(
      statPanel(
        4,
        "expectancy",
        "Expectancy",
        "Average P&L per trade: win rate × avg win − loss rate × |avg loss|.",
        MONEY_UNIT,
        {
          colorBySign: true,
        },
      ),
    )
    .withPanel(
      statPanel(5, "total_pnl", "Total P&L", "Sum of the closed trades' P&L after fees.", MONEY_UNIT, {
        colorBySign: true,
      }),
    )
    .withPanel(
      statPanel(6, "avg_duration_seconds", "Average duration", "Mean time from entry to exit.", "s", {
        decimals: 0,
      }),
    )
    .withPanel(
      statPanel(
        7,
        "max_drawdown",
        "Max drawdown",
        "Largest fall of cumulative P&L from its running peak (the peak starts at 0), by exit time.",
        MONEY_UNIT,
      ),
    );

  d.withRow(row(101, "Distribution"))
    .withPanel(
      piechart({
        id: 10,
        title: "Wins and losses",
        description: "Closed trades by result: P&L above, below or at zero.",
        unit: "short",
        targets: [
          sqlTable(`${CLOSED}
SELECT COALESCE(SUM(pnl > 0), 0) AS wins, COALESCE(SUM(pnl < 0), 0) AS losses, COALESCE(SUM(pnl = 0), 0) AS breakeven
FROM closed`),
        ],
        w: 6,
        h: 8,
      }),
    )
    .withPanel(
      barchart(
        {
          id: 11,
          title: "Exit reasons",
          description:
            "How closed trades ended (stop-loss, strategy exit, shutdown …): count and P&L (right axis).",
          unit: "short",
          targets: [
            sqlTable(`${CLOSED}
SELECT COALESCE(exit_reason, 'unknown') AS exit_reason, COUNT(*) AS trades, SUM(pnl) AS pnl
FROM closed GROUP BY 1 ORDER BY trades DESC`),
          ],
          overrides: { pnl: [...unitOf(MONEY_UNIT), { id: "custom.axisPlacement", value: "right" }] },
          w: 9,
          h: 8,
        },
        "exit_reason",
      ),
    )
    .withPanel(
      barchart(
        {
          id: 12,
          title: "P&L by hour of day (UTC)",
          description: "Closed trades' P&L summed by the UTC hour they closed in.",
          unit: MONEY_UNIT,
          targets: [
            sqlTable(`${CLOSED}
SELECT printf('%02d:00', CAST(strftime('%H', exit_time, 'unixepoch') AS INTEGER)) AS hour_utc, SUM(pnl) AS pnl
FROM closed GROUP BY 1 ORDER BY 1`),
          ],
          w: 9,
          h: 8,
        },
        "hour_utc",
      ),
    );

  d.withRow(row(102, "Over time"))
    .withPanel(
      timeseries(
        {
          id: 20,
          title: "Trade timeline",
          description: "Each closed trade's P&L at its exit time.",
          unit: MONEY_UNIT,
          targets: [
            sqlSeries(`${CLOSED}
SELECT exit_time AS time, pnl FROM closed ORDER BY exit_time, trade_rowid`),
          ],
          w: 8,
          h: 8,
        },
        { points: true },
      ),
    )
    .withPanel(
      timeseries({
        id: 21,
        title: "Cumulative P&L",
        description: "Running sum of closed trades' P&L, by exit time.",
        unit: MONEY_UNIT,
        targets: [
          sqlSeries(`${CLOSED}
SELECT exit_time AS time,
  SUM(pnl) OVER (ORDER BY exit_time, trade_rowid ROWS UNBOUNDED PRECEDING) AS cumulative_pnl
FROM closed ORDER BY exit_time, trade_rowid`),
        ],
        w: 8,
        h: 8,
      }),
    )
    .withPanel(
      timeseries(
        {
          id: 22,
          title: "Trades opened per hour",
          description: "Trades entered in each hour, of the selected status.",
          unit: "short",
          targets: [
            sqlSeries(`SELECT $__unixEpochGroupSeconds(entry_time, 3600) AS time, COUNT(*) AS opened
FROM ${T}
WHERE ${FILTERS} AND ${STATUS_FILTER}
GROUP BY 1 ORDER BY 1`),
          ],
          w: 8,
          h: 8,
        },
        { bars: true },
      ),
    );

  d.withRow(row(103, "Trades")).withPanel(
    table({
      id: 30,
      title: "Trade list",
      description:
        "The newest 500 trades of the selection; a trade id opens Trade Detail over the trade's own time range.",
      unit: "short",
      targets: [
        sqlTable(
          `SELECT trade_id, strategy_id, symbol, side, status, entry_time, exit_time, entry_price, exit_price,
  pnl, pnl_pct, exit_reason, duration_seconds,
  CAST(entry_time * 1000 AS INTEGER) - 60000 AS link_from,
  CAST(COALESCE(exit_time, CAST(strftime('%s', 'now') AS REAL)) * 1000 AS INTEGER) + 60000 AS link_to
FROM ${T}
WHERE ${FILTERS} AND ${STATUS_FILTER}
ORDER BY entry_time DESC
LIMIT 500`,
          ["entry_time", "exit_time"],
        ),
      ],
      overrides: {
        trade_id: linkTo(
          "Trade detail",
          `/d/${variantUid(DASHBOARD_UIDS.tradeDetail, options)}?var-trade_id=\${__data.fields.trade_id}&from=\${__data.fields.link_from}&to=\${__data.fields.link_to}`,
        ),
        link_from: HIDDEN,
        link_to: HIDDEN,
        entry_price: unitOf(MONEY_UNIT),
        exit_price: unitOf(MONEY_UNIT),
        pnl: unitOf(MONEY_UNIT),
        pnl_pct: unitOf("percent"),
        duration_seconds: unitOf("s"),
      },
      w: 24,
      h: 12,
    }),
  );

  return d.build();
}
