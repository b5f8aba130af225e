import { describe, expect, it } from "vitest";
import { tradeRow } from "../../src/domain/trade.js";
import { toTradeMessage } from "../../src/schema/events.js";

const T0 = 1_746_780_000; // unix seconds, the journal's unit

const entry = {
  trade_id: "run-rsi_mr-AAA-1",
  strategy_id: "rsi_mr",
  symbol: "AAA",
  action: "BUY" as const,
  side: "long" as const,
  entry_time: T0,
  entry_price: 100,
  quantity: 10,
  fees: 0.3,
  stop_loss_initial: 98,
};
const exit = {
  exit_time: T0 + 90,
  exit_price: 104,
  pnl: 39.4,
  pnl_pct: 3.94,
  fees: 0.6,
  max_price: 105,
  min_price: 99,
  exit_reason: "rsi_exit",
  duration_seconds: 90,
};

describe("journal rows and their trade messages", () => {
  it("builds an open and a closed row with every column, in the table's order", () => {
    const open = tradeRow(entry, undefined, T0, T0);
    expect(Object.keys(open)).toEqual([
      "trade_id",
      "strategy_id",
      "symbol",
      "action",
      "side",
      "entry_time",
      "entry_price",
      "quantity",
      "exit_time",
      "exit_price",
      "pnl",
      "pnl_pct",
      "fees",
      "stop_loss_initial",
      "max_price",
      "min_price",
      "exit_reason",
      "duration_seconds",
      "status",
      "created_at",
      "updated_at",
    ]);
    expect(open).toMatchObject({
      status: "open",
      fees: 0.3,
      exit_time: null,
      pnl: null,
      stop_loss_initial: 98,
    });
    const closed = tradeRow(open, exit, open.created_at, T0 + 91);
    expect(closed).toEqual({ ...open, ...exit, status: "closed", updated_at: T0 + 91 });
    // No fees and no stop given: 0 and null, as the table's defaults.
    const { fees: _fees, stop_loss_initial: _stop, ...bare } = entry;
    expect(tradeRow(bare, undefined, T0, T0)).toMatchObject({ fees: 0, stop_loss_initial: null });
  });

  it("turns an open row into its entry order and a closed one into its exit order", () => {
    const open = tradeRow(entry, undefined, T0, T0);
    const closed = tradeRow(entry, exit, T0, T0 + 91);
    const common = {
      type: "trade",
      symbol: "AAA",
      quantity: 10,
      strategy_id: "rsi_mr",
      trade_id: entry.trade_id,
    };
    expect(Object.entries(toTradeMessage(open))).toEqual(
      Object.entries({
        ...common,
        fees: 0.3,
        action: "BUY",
        price: 100,
        timestamp: new Date(T0 * 1000).toISOString(),
      }),
    );
    expect(Object.entries(toTradeMessage(closed))).toEqual(
      Object.entries({
        ...common,
        fees: 0.6,
        action: "SELL",
        price: 104,
        timestamp: new Date((T0 + 90) * 1000).toISOString(),
        pnl: 39.4,
      }),
    );
    // A short is closed by a BUY; a given pnl wins over the row's.
    const short = tradeRow({ ...entry, side: "short", action: "SELL" }, exit, T0, T0);
    expect(toTradeMessage(short, { pnl: -1 })).toMatchObject({ action: "BUY", pnl: -1 });
  });
});
