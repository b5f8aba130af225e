import { DASHBOARD_UIDS } from "../schema/grafana.js";
import { ARCHIVED_METRIC, PG_TABLES } from "../schema/postgres.js";
import {
  type DashboardOptions,
  DEFAULT_DASHBOARD_OPTIONS,
  MONEY_UNIT,
  queryVariable,
  row,
  stat,
  table,
  timeseries,
  unitOf,
  veloxDashboard,
} from "./common.js";
import { pgSeries, pgTable } from "./queries.js";

/**
 * History (seed 003): what the PostgreSQL / TimescaleDB history store keeps — prices as 1-minute
 * OHLCV (the continuous aggregate, or the materialized view without TimescaleDB), every fill, and
 * the figures the archiver copies from Redis. Written with Grafana's PostgreSQL macros, so each
 * query reads only the dashboard's time range.
 *
 * `symbol` and `strategy` reach SQL only as `${var:sqlstring}` (each value quoted, quotes doubled)
 * inside `IN (…)`, and are filled from the store's own columns with custom values off.
 */

const { priceData, tradeData, metricsData, price1m } = PG_TABLES;
const SYMBOLS = `symbol IN (\${symbol:sqlstring})`;
const STRATEGIES = `strategy_id IN (\${strategy:sqlstring})`;

export function history(options: DashboardOptions = DEFAULT_DASHBOARD_OPTIONS) {
  const d = veloxDashboard(
    {
      title: "VELOX · History",
      uid: DASHBOARD_UIDS.history,
      description:
        "The PostgreSQL history store: 1-minute OHLCV, every fill, and the strategy counters archived from Redis.",
      tags: ["history", "postgres"],
      from: "now-7d",
    },
    options,
  )
    .withVariable(
      queryVariable("symbol", "Symbol", "postgres", `SELECT DISTINCT symbol FROM ${price1m} ORDER BY 1`, {
        multi: true,
        includeAll: true,
      }),
    )
    .withVariable(
      queryVariable(
        "strategy",
        "Strategy",
        "postgres",
        `SELECT DISTINCT strategy_id FROM ${tradeData} ORDER BY 1`,
        { multi: true, includeAll: true },
      ),
    );

  d.withRow(row(100, "Prices"))
    .withPanel(
      timeseries({
        id: 1,
        title: "Close, 1-minute bars",
        description: `Each symbol's close per minute, from the 1-minute OHLCV (${price1m}).`,
        unit: MONEY_UNIT,
        targets: [
          pgSeries(
            `SELECT bucket AS "time", symbol AS metric, close
FROM ${price1m}
WHERE $__timeFilter(bucket) AND ${SYMBOLS}
ORDER BY 1`,
          ),
        ],
        w: 16,
        h: 9,
      }),
    )
    .withPanel(
      timeseries(
        {
          id: 2,
          title: "Ticks stored",
          description: `Rows of ${priceData} per interval: one per tick the engine processed.`,
          unit: "short",
          targets: [
            pgSeries(
              `SELECT $__timeGroupAlias(timestamp, $__interval), count(*) AS ticks
FROM ${priceData}
WHERE $__timeFilter(timestamp) AND ${SYMBOLS}
GROUP BY 1
ORDER BY 1`,
            ),
          ],
          w: 8,
          h: 9,
        },
        { bars: true },
      ),
    )
    .withPanel(
      table({
        id: 3,
        title: "Latest 1-minute bars",
        description: "The newest 200 bars of the selected symbols in the time range, newest first.",
        unit: "short",
        targets: [
          pgTable(
            `SELECT bucket AS "time", symbol, open, high, low, close, volume, ticks
FROM ${price1m}
WHERE $__timeFilter(bucket) AND ${SYMBOLS}
ORDER BY bucket DESC, symbol
LIMIT 200`,
          ),
        ],
        overrides: {
          open: unitOf(MONEY_UNIT),
          high: unitOf(MONEY_UNIT),
          low: unitOf(MONEY_UNIT),
          close: unitOf(MONEY_UNIT),
        },
        w: 24,
        h: 8,
      }),
    );

  d.withRow(row(101, "Trades"))
    .withPanel(
      stat({
        id: 10,
        title: "Fills",
        description: "Entries and exits of the selected strategies in the time range.",
        unit: "short",
        targets: [
          pgTable(
            `SELECT count(*) AS fills FROM ${tradeData} WHERE $__timeFilter(timestamp) AND ${STRATEGIES}`,
          ),
        ],
        w: 4,
        h: 8,
      }),
    )
    .withPanel(
      stat(
        {
          id: 11,
          title: "Realized P&L",
          description: "Sum of the P&L of the exits in the time range (after fees).",
          unit: MONEY_UNIT,
          decimals: 2,
          targets: [
            pgTable(
              `SELECT COALESCE(sum(pnl), 0) AS pnl FROM ${tradeData}
WHERE $__timeFilter(timestamp) AND ${STRATEGIES} AND pnl IS NOT NULL`,
            ),
          ],
          w: 4,
          h: 8,
        },
        { colorBySign: true },
      ),
    )
    .withPanel(
      timeseries(
        {
          id: 12,
          title: "Realized P&L per interval",
          description: "P&L of the exits per interval and strategy.",
          unit: MONEY_UNIT,
          targets: [
            pgSeries(
              `SELECT $__timeGroupAlias(timestamp, $__interval), strategy_id AS metric, sum(pnl) AS pnl
FROM ${tradeData}
WHERE $__timeFilter(timestamp) AND ${STRATEGIES} AND pnl IS NOT NULL
GROUP BY 1, 2
ORDER BY 1`,
            ),
          ],
          w: 16,
          h: 8,
        },
        { bars: true },
      ),
    )
    .withPanel(
      table({
        id: 13,
        title: "Fills",
        description:
          "Every fill of the time range, newest first (at most 500): entry and exit of each trade.",
        unit: "short",
        targets: [
          pgTable(
            `SELECT timestamp AS "time", order_id, trade_id, strategy_id, symbol, side, price, quantity, fees, pnl
FROM ${tradeData}
WHERE $__timeFilter(timestamp) AND ${STRATEGIES}
ORDER BY timestamp DESC, order_id
LIMIT 500`,
          ),
        ],
        overrides: { price: unitOf(MONEY_UNIT), fees: unitOf(MONEY_UNIT), pnl: unitOf(MONEY_UNIT) },
        w: 24,
        h: 9,
      }),
    );

  d.withRow(row(102, "Archived figures"))
    .withPanel(
      archivedCounter(
        20,
        "Strategy P&L (archived from Redis)",
        "Each strategy's cumulative P&L counter, as the archiver copied it from Redis.",
        MONEY_UNIT,
        ARCHIVED_METRIC.strategy("pnl"),
      ),
    )
    .withPanel(
      archivedCounter(
        21,
        "Strategy trades (archived from Redis)",
        "Each strategy's closed-trade counter over time; the slope is trades per interval.",
        "short",
        ARCHIVED_METRIC.strategy("trades"),
      ),
    );
  return d.build();
}

/** One of the per-strategy counters the archiver keeps in metrics_data, over time, a series per strategy. */
function archivedCounter(id: number, title: string, description: string, unit: string, metricName: string) {
  return timeseries({
    id,
    title,
    description,
    unit,
    targets: [
      pgSeries(
        `SELECT timestamp AS "time", labels->>'strategy_id' AS metric, value
FROM ${metricsData}
WHERE metric_name = '${metricName}' AND $__timeFilter(timestamp) AND labels->>'strategy_id' IN (\${strategy:sqlstring})
ORDER BY 1`,
      ),
    ],
    w: 12,
    h: 8,
  });
}
