import { DASHBOARD_UIDS } from "../schema/grafana.js";
import { TABLES } from "../schema/sqlite.js";
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
import { INFLUX_PANELS } from "./influx-panels.js";
import { influxQuery, sqlSeries, sqlTable } from "./queries.js";

/**
 * Trade Detail (seed 002 task 4.4.4): one trade, chosen by `trade_id` (Trade Analysis links here
 * with the trade's own time range). The summary, the stop-loss history and the entry and exit
 * conditions come from the journal, so the page works without InfluxDB; the price and indicator
 * charts come from InfluxDB.
 *
 * `trade_id` and the hidden `symbol` reach Flux strings unescaped (Grafana does not escape Flux):
 * both are VELOX's own pattern-checked ids ([A-Za-z0-9._-], symbols [A-Z0-9.-]) read from the
 * journal, with custom values off, so no quote or `${` can arrive through them.
 */

const TRADE = `trade_id = \${trade_id:sqlstring}`;

export function tradeDetail(options: DashboardOptions = DEFAULT_DASHBOARD_OPTIONS) {
  const d = veloxDashboard(
    {
      title: "VELOX · Trade Detail",
      uid: DASHBOARD_UIDS.tradeDetail,
      description:
        "One trade: summary, price with the trailing stop, indicators, stop-loss updates and the conditions.",
      tags: ["trading", "trades"],
      from: "now-24h",
    },
    options,
  )
    .withVariable(
      queryVariable(
        "trade_id",
        "Trade",
        "sqlite",
        `SELECT trade_id FROM ${TABLES.trades} ORDER BY entry_time DESC, trade_id DESC LIMIT 500`,
        { sort: false },
      ),
    )
    .withVariable(
      queryVariable("symbol", "Symbol", "sqlite", `SELECT symbol FROM ${TABLES.trades} WHERE ${TRADE}`, {
        hidden: true,
      }),
    );

  d.withRow(row(100, "Summary"))
    .withPanel(
      stat(
        {
          id: 1,
          title: "P&L",
          description: "Realized P&L after fees (empty while the trade is open).",
          unit: MONEY_UNIT,
          decimals: 2,
          targets: [sqlTable(`SELECT pnl FROM ${TABLES.trades} WHERE ${TRADE}`)],
          w: 4,
          h: 5,
        },
        { colorBySign: true },
      ),
    )
    .withPanel(
      stat(
        {
          id: 2,
          title: "Return",
          description: "P&L as a percentage of the entry notional (price × quantity).",
          unit: "percent",
          decimals: 2,
          targets: [sqlTable(`SELECT pnl_pct FROM ${TABLES.trades} WHERE ${TRADE}`)],
          w: 4,
          h: 5,
        },
        { colorBySign: true },
      ),
    )
    .withPanel(
      stat({
        id: 3,
        title: "Duration",
        description: "Time from entry to exit; for an open trade, time since entry.",
        unit: "s",
        decimals: 0,
        targets: [
          sqlTable(
            `SELECT COALESCE(duration_seconds, CAST(strftime('%s', 'now') AS REAL) - entry_time) AS duration_seconds
FROM ${TABLES.trades} WHERE ${TRADE}`,
          ),
        ],
        w: 4,
        h: 5,
      }),
    )
    .withPanel(
      table({
        id: 4,
        title: "Trade",
        description: "The journal's record of the trade.",
        unit: "short",
        targets: [
          sqlTable(
            `SELECT trade_id, strategy_id, symbol, side, status, entry_time, entry_price, exit_time, exit_price,
  quantity, fees, stop_loss_initial, exit_reason
FROM ${TABLES.trades} WHERE ${TRADE}`,
            ["entry_time", "exit_time"],
          ),
        ],
        overrides: {
          entry_price: unitOf(MONEY_UNIT),
          exit_price: unitOf(MONEY_UNIT),
          fees: unitOf(MONEY_UNIT),
          stop_loss_initial: unitOf(MONEY_UNIT),
        },
        w: 12,
        h: 5,
      }),
    );

  d.withRow(row(101, "Price and stop"))
    .withPanel(
      timeseries({
        id: 10,
        title: "Price and trailing stop",
        description:
          "The position's mark (InfluxDB positions) and its trailing stop (InfluxDB trailing_sl), with the entry and exit fills from the journal.",
        unit: MONEY_UNIT,
        targets: [
          influxQuery(INFLUX_PANELS.tradePrice, options.influx),
          influxQuery(INFLUX_PANELS.tradeStop, options.influx),
          sqlSeries(`SELECT time, fill FROM (
  SELECT entry_time AS time, entry_price AS fill FROM ${TABLES.trades} WHERE ${TRADE}
  UNION ALL
  SELECT exit_time AS time, exit_price AS fill FROM ${TABLES.trades} WHERE ${TRADE} AND exit_time IS NOT NULL
) ORDER BY time`),
        ],
        w: 16,
        h: 9,
      })
        .overrideByQuery("B", [{ id: "custom.lineStyle", value: { fill: "dash", dash: [10, 10] } }])
        .overrideByQuery("C", [
          { id: "custom.drawStyle", value: "points" },
          { id: "custom.pointSize", value: 10 },
        ]),
    )
    .withPanel(
      timeseries({
        id: 11,
        title: "Stop-loss (journal)",
        description:
          'The stop-loss as the journal recorded it (the latest stop at most once a second, and the final one), with the highest price it trailed; works without InfluxDB. Every move is in "Price and trailing stop" (InfluxDB).',
        unit: MONEY_UNIT,
        targets: [
          sqlSeries(
            `SELECT ts AS time, stop, highest_price FROM ${TABLES.slUpdates} WHERE ${TRADE} ORDER BY ts, id`,
          ),
        ],
        w: 8,
        h: 9,
      }),
    );

  d.withRow(row(102, "Indicators")).withPanel(
    timeseries({
      id: 20,
      title: "Indicators",
      description: "Indicator values of the trade's symbol (InfluxDB indicators), one series per indicator.",
      unit: "short",
      targets: [influxQuery(INFLUX_PANELS.indicators, options.influx)],
      w: 24,
      h: 8,
    }),
  );

  d.withRow(row(103, "Journal"))
    .withPanel(
      table({
        id: 30,
        title: "Stop-loss updates",
        description: "The stop-loss updates of the trade, oldest first.",
        unit: MONEY_UNIT,
        targets: [
          sqlTable(
            `SELECT ts AS time, stop, highest_price, sl_type FROM ${TABLES.slUpdates} WHERE ${TRADE} ORDER BY ts, id`,
            ["time"],
          ),
        ],
        w: 10,
        h: 9,
      }),
    )
    .withPanel(
      table({
        id: 31,
        title: "Entry and exit conditions",
        description: "The indicator values and reasons the strategy recorded when it entered and exited.",
        unit: "short",
        targets: [
          sqlTable(
            `SELECT timestamp AS time, signal_type, conditions_json FROM ${TABLES.signalConditions}
WHERE ${TRADE} ORDER BY timestamp, id`,
            ["time"],
          ),
        ],
        w: 14,
        h: 9,
      }),
    );

  return d.build();
}
