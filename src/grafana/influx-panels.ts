import type { InfluxPanelQuery } from "./queries.js";

/**
 * Every InfluxDB panel query of the dashboards, defined once against src/schema/influx.ts and
 * rendered by `renderFlux` (the default dashboards) or `renderInfluxQL` (the InfluxQL variant).
 */
export const INFLUX_PANELS = {
  /** System Overview: realized P&L per strategy over time. */
  pnlByStrategy: {
    measurement: "strategy_metrics",
    fields: ["pnl"],
    groupBy: ["strategy_id"],
    aggregate: "last",
  } satisfies InfluxPanelQuery<"strategy_metrics">,
  /** Trade Detail: the position's mark. */
  tradePrice: {
    measurement: "positions",
    fields: ["price"],
    where: { trade_id: "trade_id" },
    aggregate: "last",
  } satisfies InfluxPanelQuery<"positions">,
  /** Trade Detail: the trailing stop. */
  tradeStop: {
    measurement: "trailing_sl",
    fields: ["current_sl"],
    where: { trade_id: "trade_id" },
    aggregate: "last",
  } satisfies InfluxPanelQuery<"trailing_sl">,
  /** Trade Detail: the trade's symbol's indicators, one series per indicator. */
  indicators: {
    measurement: "indicators",
    fields: ["value"],
    where: { symbol: "symbol" },
    groupBy: ["indicator_type"],
    aggregate: "last",
  } satisfies InfluxPanelQuery<"indicators">,
} as const;

export type InfluxPanelName = keyof typeof INFLUX_PANELS;
