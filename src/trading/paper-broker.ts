import { ValidationError } from "../domain/errors.js";
import { assertId, assertSymbol, ID_PATTERN } from "../domain/identifiers.js";
import type { Fill } from "../domain/signal.js";
import type { TradeAction } from "../domain/trade.js";

/**
 * A paper broker: fills every order at once, at the tick price moved against the trader by the
 * slippage (buys higher, sells lower), and charges fees.
 *
 *   execution price = price × (10 000 + bps) / 10 000 for a BUY, price × (10 000 − bps) / 10 000 for a SELL
 *   fees            = execution price × quantity × fee_bps / 10 000 + fixed_fee
 *
 * Trade ids are `[run-]strategy-symbol-seq`, seq counting from 1 per (strategy, symbol): the same
 * sequence of entries gives the same ids on every run. A journal that outlives one run needs a
 * distinct `runId` per run, or the second run's ids collide with the first's.
 */

export interface PaperBrokerOptions {
  /** Slippage in basis points of the price, against the trader. Default 0. */
  slippageBps?: number;
  /** Fees in basis points of the executed notional. Default 0. */
  feeBps?: number;
  /** Fixed fee per fill, in the quote currency. Default 0. */
  fixedFee?: number;
  /** Prefix that keeps ids of different runs apart in one journal (e.g. `s42` for seed 42). */
  runId?: string;
}

export interface OrderRequest {
  trade_id: string;
  strategy_id: string;
  symbol: string;
  action: TradeAction;
  /** The price the order is filled against (the tick's close), before slippage. */
  price: number;
  quantity: number;
  /** Epoch milliseconds. */
  timestamp: number;
}

const BPS = 10_000;

function nonNegative(value: number | undefined, field: string): number {
  const v = value ?? 0;
  if (!Number.isFinite(v) || v < 0) throw new ValidationError(field, "must be a number >= 0");
  return v;
}

export class PaperBroker {
  readonly slippageBps: number;
  readonly feeBps: number;
  readonly fixedFee: number;
  readonly runId: string | undefined;
  private readonly sequences = new Map<string, number>();

  constructor(options: PaperBrokerOptions = {}) {
    this.slippageBps = nonNegative(options.slippageBps, "broker.slippage_bps");
    if (this.slippageBps >= BPS) throw new ValidationError("broker.slippage_bps", "must be below 10000");
    this.feeBps = nonNegative(options.feeBps, "broker.fee_bps");
    this.fixedFee = nonNegative(options.fixedFee, "broker.fixed_fee");
    this.runId = options.runId === undefined ? undefined : assertId(options.runId, "broker.run_id");
  }

  /** The next trade id for (strategy, symbol). */
  nextTradeId(strategyId: string, symbol: string): string {
    const key = `${strategyId}\u0000${symbol}`;
    const seq = (this.sequences.get(key) ?? 0) + 1;
    this.sequences.set(key, seq);
    const id = [this.runId, strategyId, symbol, String(seq)].filter((p) => p !== undefined).join("-");
    if (!ID_PATTERN.test(id)) {
      throw new ValidationError(
        "trade_id",
        `"${id}" must match [A-Za-z0-9._-]{1,64}; shorten the strategy id`,
      );
    }
    return id;
  }

  /**
   * Makes the next ids of (strategy, symbol) follow `tradeId` when it is an id this broker would
   * give (same run id): a resumed trade's id is then never handed out again. Other ids are ignored.
   */
  follow(tradeId: string, strategyId: string, symbol: string): void {
    const prefix = `${[this.runId, strategyId, symbol].filter((p) => p !== undefined).join("-")}-`;
    if (!tradeId.startsWith(prefix)) return;
    const rest = tradeId.slice(prefix.length);
    if (!/^[1-9][0-9]{0,14}$/.test(rest)) return;
    const key = `${strategyId}\u0000${symbol}`;
    const seq = Number(rest);
    if (seq > (this.sequences.get(key) ?? 0)) this.sequences.set(key, seq);
  }

  /** The price an order at `price` executes at after slippage. */
  executionPrice(action: TradeAction, price: number): number {
    const factor = action === "BUY" ? BPS + this.slippageBps : BPS - this.slippageBps;
    return (price * factor) / BPS;
  }

  /** Fees for a fill of `quantity` at `executionPrice`. */
  fees(executionPrice: number, quantity: number): number {
    return (executionPrice * quantity * this.feeBps) / BPS + this.fixedFee;
  }

  fill(order: OrderRequest): Fill {
    if (!(order.price > 0) || !Number.isFinite(order.price)) {
      throw new ValidationError("order.price", "must be a positive number");
    }
    if (!(order.quantity > 0) || !Number.isFinite(order.quantity)) {
      throw new ValidationError("order.quantity", "must be a positive number");
    }
    const price = this.executionPrice(order.action, order.price);
    return {
      trade_id: assertId(order.trade_id, "order.trade_id"),
      strategy_id: assertId(order.strategy_id, "order.strategy_id"),
      symbol: assertSymbol(order.symbol, "order.symbol"),
      action: order.action,
      price,
      quantity: order.quantity,
      fees: this.fees(price, order.quantity),
      timestamp: order.timestamp,
    };
  }
}
