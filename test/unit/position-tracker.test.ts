import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NotFoundError, StateError } from "../../src/domain/errors.js";
import type { Signal } from "../../src/domain/signal.js";
import type { Tick } from "../../src/domain/tick.js";
import type { Trade } from "../../src/domain/trade.js";
import type { MeasurementName, SeriesPoint } from "../../src/schema/influx.js";
import { DataManager, type TimeSeriesWriter } from "../../src/storage/data-manager.js";
import { TradeJournal } from "../../src/storage/trade-journal.js";
import { PaperBroker } from "../../src/trading/paper-broker.js";
import { pipelineFromConfig } from "../../src/trading/pipeline.js";
import {
  PositionTracker,
  type StrategyTradeSettings,
  type TrackerEvent,
} from "../../src/trading/position-tracker.js";
import { parseStrategyConfig } from "../../src/trading/strategy-config.js";

const T0 = 1_746_780_000_000; // 2025-05-09T08:40:00Z in epoch ms; the journal stores T0 / 1000 s

/** Records what the DataManager sends to the time series (stands in for InfluxDB). */
class RecordingSeries implements TimeSeriesWriter {
  readonly points: SeriesPoint[] = [];
  write(point: SeriesPoint): void {
    this.points.push(point);
  }
  async close(): Promise<void> {}
  of<M extends MeasurementName>(measurement: M): SeriesPoint<M>[] {
    return this.points.filter((p): p is SeriesPoint<M> => p.measurement === measurement);
  }
}

const open: DataManager[] = [];
afterEach(async () => {
  for (const dm of open.splice(0)) await dm.close();
});

function journalPath(): string {
  return join(mkdtempSync(join(tmpdir(), "velox-tracker-")), "velox.db");
}

function dataManager(path = journalPath()) {
  const series = new RecordingSeries();
  const journal = TradeJournal.open(path);
  // Every write its own commit, as when a live feed's ticks arrive far apart: each stop move is
  // kept. (Within one commit group only a trade's last move is; see the journal's tests.)
  const dm = new DataManager({ journal, series, cacheFlushMs: 60_000, journalGroupRows: 1 });
  open.push(dm);
  return { dm, series, path, journal };
}

/** A journaled trade, and its last stop update, as a restarted run reads them. */
function fromJournal(journal: TradeJournal, tradeId: string) {
  const trade = journal.getTrade(tradeId);
  if (!trade) throw new Error(`no trade ${tradeId}`);
  return [trade, journal.getSlUpdates(tradeId).at(-1)] as const;
}

function tick(offsetMs: number, close: number, symbol = "RELIANCE"): Tick {
  return {
    symbol,
    timestamp: T0 + offsetMs,
    open: close,
    high: close,
    low: close,
    close,
    volume: 10,
    source: "simulator",
  };
}

function signal(overrides: Partial<Signal> = {}): Signal {
  return {
    strategy_id: "rsi_mr",
    symbol: "RELIANCE",
    kind: "entry",
    action: "BUY",
    price: 100,
    timestamp: T0,
    reason: "rsi_oversold",
    indicators: { rsi_14: 27.5, atr_14: 1.5 },
    confidence: 0.54,
    thresholds: { oversold: 30, exit_level: 55 },
    ...overrides,
  };
}

const FIXED_2PCT: StrategyTradeSettings = {
  sizing: { quantity: 10 },
  trailingStop: { type: "fixed_percent", percent: 2 },
};

function tracker(
  store: DataManager,
  settings: Record<string, StrategyTradeSettings> = {},
  snapshotIntervalMs = 1000,
) {
  return new PositionTracker({
    store,
    // 10 bps slippage, 5 bps fees + 1 per fill
    broker: new PaperBroker({ slippageBps: 10, feeBps: 5, fixedFee: 1 }),
    settings: { rsi_mr: FIXED_2PCT, other: FIXED_2PCT, ...settings },
    snapshotIntervalMs,
  });
}

function ofType<T extends TrackerEvent["type"]>(events: TrackerEvent[], type: T) {
  return events.filter((e): e is Extract<TrackerEvent, { type: T }> => e.type === type);
}

describe("PositionTracker over a real journal", () => {
  it("entry → stop trails → exit at the stop, with P&L and fees exact and everything journaled", async () => {
    const { dm, series } = dataManager();
    const t = tracker(dm);

    // Entry at 100: BUY fills at 100 × (1 + 10/10 000) = 100.1.
    // Entry fees = 100.1 × 10 × 5/10 000 + 1 = 0.5005 + 1 = 1.5005.
    // Initial stop = 100.1 × (1 − 2 %) = 98.098.
    const opened = await t.onSignal(signal());
    expect(opened.type).toBe("opened");
    if (opened.type !== "opened") return;
    const tradeId = opened.trade.trade_id;
    expect(tradeId).toBe("rsi_mr-RELIANCE-1");
    expect(opened.fill).toEqual({
      trade_id: tradeId,
      strategy_id: "rsi_mr",
      symbol: "RELIANCE",
      action: "BUY",
      price: expect.closeTo(100.1, 12),
      quantity: 10,
      fees: expect.closeTo(1.5005, 12),
      timestamp: T0,
    });
    expect(opened.trade).toMatchObject({ side: "long", status: "open", entry_time: T0 / 1000 });
    expect(opened.trade.stop_loss_initial).toBeCloseTo(98.098, 12);

    // +1 s, 104: stop → 104 × 0.98 = 101.92 (moved); first snapshot.
    const e1 = await t.onTick(tick(1000, 104));
    expect(ofType(e1, "stop_moved").map((e) => e.stop)).toEqual([101.92]);
    // +1.5 s, 110: stop → 110 × 0.98 = 107.8 (moved); snapshot throttled (0.5 s < 1 s).
    const e2 = await t.onTick(tick(1500, 110));
    expect(ofType(e2, "stop_moved").map((e) => e.stop)).toEqual([107.8]);
    // +2 s, 108: below the high, the stop stays at 107.8; snapshot (1 s since the last).
    expect(await t.onTick(tick(2000, 108))).toEqual([]);
    expect(t.position("rsi_mr", "RELIANCE")).toMatchObject({
      stop: 107.8,
      highest: 110,
      last_price: 108,
      // (108 − 100.1) × 10 = 79
      unrealized_pnl: expect.closeTo(79, 9),
    });
    // What the pipeline hands a strategy: the same position, not a copy, and none for another
    // strategy or symbol.
    expect(t.heldPosition("rsi_mr", "RELIANCE")).toEqual(t.position("rsi_mr", "RELIANCE"));
    expect(t.heldPosition("rsi_mr", "RELIANCE")).toBe(t.heldPosition("rsi_mr", "RELIANCE"));
    expect(t.heldPosition("supertrend", "RELIANCE")).toBeUndefined();
    expect(t.heldPosition("rsi_mr", "TCS")).toBeUndefined();
    // Another symbol's tick leaves the position alone.
    expect(await t.onTick(tick(2100, 50, "TCS"))).toEqual([]);

    // +2.5 s, 107 ≤ 107.8: stop hit. SELL fills at 107 × (1 − 10/10 000) = 106.893.
    // Exit fees = 106.893 × 10 × 5/10 000 + 1 = 0.534465 + 1 = 1.534465.
    // Gross = (106.893 − 100.1) × 10 = 67.93; fees = 1.5005 + 1.534465 = 3.034965;
    // P&L = 67.93 − 3.034965 = 64.895035; P&L % = 64.895035 / (100.1 × 10) × 100 = 6.48302…
    const e4 = await t.onTick(tick(2500, 107));
    const [closed] = ofType(e4, "closed");
    expect(closed?.reason).toBe("stop_loss");
    expect(closed?.fill.action).toBe("SELL");
    expect(closed?.fill.price).toBeCloseTo(106.893, 12);
    expect(closed?.fill.fees).toBeCloseTo(1.534465, 12);
    expect(closed?.trade).toMatchObject({
      status: "closed",
      exit_reason: "stop_loss",
      exit_time: T0 / 1000 + 2.5,
    });
    expect(closed?.trade.pnl).toBeCloseTo(64.895035, 9);
    expect(closed?.trade.fees).toBeCloseTo(3.034965, 12);
    expect(closed?.trade.pnl_pct).toBeCloseTo((64.895035 / 1001) * 100, 9);
    expect(closed?.trade.max_price).toBe(110);
    expect(closed?.trade.duration_seconds).toBeCloseTo(2.5, 9);
    expect(t.realizedPnl().total).toBeCloseTo(64.895035, 9);
    expect(t.realizedPnl().byStrategy.rsi_mr).toBeCloseTo(64.895035, 9);
    expect(t.positions()).toEqual([]);
    expect(t.heldPosition("rsi_mr", "RELIANCE")).toBeUndefined();

    // Read back from the journal.
    const details = await dm.getTradeDetails(tradeId);
    expect(details?.entry_conditions.map((c) => c.conditions)).toEqual([
      {
        reason: "rsi_oversold",
        confidence: 0.54,
        price: 100,
        indicators: { rsi_14: 27.5, atr_14: 1.5 },
        thresholds: { oversold: 30, exit_level: 55 },
      },
    ]);
    expect(details?.exit_conditions.map((c) => c.conditions)).toEqual([
      {
        reason: "stop_loss",
        price: 107,
        stop: 107.8,
        highest_price: 110,
        sl_type: "fixed_percent",
        indicators: {},
      },
    ]);
    // Initial level, then the two moves, at tick time in unix seconds.
    expect(details?.sl_timeline.map((u) => [u.ts - T0 / 1000, u.stop, u.highest_price, u.sl_type])).toEqual([
      [0, expect.closeTo(98.098, 12), expect.closeTo(100.1, 12), "fixed_percent"],
      [1, 101.92, 104, "fixed_percent"],
      [1.5, 107.8, 110, "fixed_percent"],
    ]);

    // Fills and stop moves reach the time series once the journal has committed them.
    dm.commitJournal();
    // Snapshots: +1 s and +2 s only (throttled at +1.5 s; none after the close).
    const snapshots = series.of("positions");
    expect(snapshots.map((p) => [p.timestampNs, p.fields.price])).toEqual([
      [String((T0 + 1000) * 1_000_000), 104],
      [String((T0 + 2000) * 1_000_000), 108],
    ]);
    expect(series.of("trailing_sl")).toHaveLength(3);
    expect(series.of("trades").map((p) => p.tags.action)).toEqual(["BUY", "SELL"]);
  });

  it("holds one position per (strategy, symbol)", async () => {
    const { dm } = dataManager();
    const t = tracker(dm);
    expect((await t.onSignal(signal())).type).toBe("opened");
    const again = await t.onSignal(signal({ timestamp: T0 + 1000, price: 99 }));
    expect(again).toMatchObject({ type: "ignored", reason: "position_open" });
    expect((await t.onSignal(signal({ strategy_id: "other" }))).type).toBe("opened");
    expect((await t.onSignal(signal({ symbol: "TCS" }))).type).toBe("opened");
    expect(
      t
        .positions()
        .map((p) => p.trade_id)
        .sort(),
    ).toEqual(["other-RELIANCE-1", "rsi_mr-RELIANCE-1", "rsi_mr-TCS-1"]);
    expect((await dm.getOpenPositions()).length).toBe(3);
  });

  it("a tick through the stops of several positions on its symbol closes each of them once, in opening order", async () => {
    const { dm } = dataManager();
    const t = tracker(dm, { third: FIXED_2PCT });
    for (const strategy_id of ["rsi_mr", "other", "third"]) await t.onSignal(signal({ strategy_id }));
    await t.onSignal(signal({ symbol: "TCS" }));
    // 100 entry (100.1 filled), 2 % stop at 98: a close at 97 crosses all three.
    const events = t.onTick(tick(5000, 97));
    expect(ofType(events, "closed").map((e) => [e.trade.strategy_id, e.reason])).toEqual([
      ["rsi_mr", "stop_loss"],
      ["other", "stop_loss"],
      ["third", "stop_loss"],
    ]);
    expect(t.positions().map((p) => p.trade_id)).toEqual(["rsi_mr-TCS-1"]);
    expect(t.positionsOf("RELIANCE")).toEqual([]);
    // The symbol holds nothing now: a later tick finds nothing to mark, and a new entry opens.
    expect(t.onTick(tick(6000, 96))).toEqual([]);
    expect((await t.onSignal(signal({ timestamp: T0 + 7000, price: 96 }))).type).toBe("opened");
    expect(t.positionsOf("RELIANCE").map((p) => p.strategy_id)).toEqual(["rsi_mr"]);
  });

  it("names the symbols whose positions opened, were marked or closed since it was last asked", async () => {
    const { dm } = dataManager();
    const t = tracker(dm);
    expect(t.takeChangedSymbols()).toEqual([]);
    await t.onSignal(signal());
    await t.onSignal(signal({ symbol: "TCS" }));
    expect(t.takeChangedSymbols().sort()).toEqual(["RELIANCE", "TCS"]);
    expect(t.takeChangedSymbols()).toEqual([]);
    // A tick of a symbol held marks it; a tick of one not held changes nothing.
    t.onTick(tick(1_000, 101, "TCS"));
    t.onTick(tick(1_000, 50, "INFY"));
    expect(t.takeChangedSymbols()).toEqual(["TCS"]);
    expect(t.positionsOf("TCS")).toMatchObject([{ trade_id: "rsi_mr-TCS-1", last_price: 101 }]);
    expect(t.positionsOf("INFY")).toEqual([]);
    // Through the stop: closed, changed, and no longer held.
    t.onTick(tick(2_000, 90, "TCS"));
    expect(t.takeChangedSymbols()).toEqual(["TCS"]);
    expect(t.positionsOf("TCS")).toEqual([]);
  });

  it("writes at most one snapshot per interval of tick time per position", async () => {
    const { dm, series } = dataManager();
    const t = tracker(dm, {}, 1000);
    await t.onSignal(signal());
    await t.onSignal(signal({ symbol: "TCS" }));
    // Ticks every 250 ms for 3 s on both symbols, prices inside the stop.
    for (let ms = 250; ms <= 3000; ms += 250) {
      await t.onTick(tick(ms, 100));
      await t.onTick(tick(ms, 100, "TCS"));
    }
    const times = (tradeId: string) =>
      series
        .of("positions")
        .filter((p) => p.tags.trade_id === tradeId)
        .map((p) => (Number(BigInt(p.timestampNs) / 1_000_000n) - T0) / 1000);
    // First tick at 0.25 s, then whenever ≥ 1 s has passed since the last one written.
    expect(times("rsi_mr-RELIANCE-1")).toEqual([0.25, 1.25, 2.25]);
    expect(times("rsi_mr-TCS-1")).toEqual([0.25, 1.25, 2.25]);
  });

  it("closes on an exit signal with the signal's reason and conditions", async () => {
    const { dm } = dataManager();
    const t = tracker(dm);
    await t.onSignal(signal());
    // Entry 100.1, 1.5005 fees. Exit at 103: SELL 103 × 0.999 = 102.897; fees 102.897 × 10 × 0.0005 + 1 = 1.514485.
    // P&L = (102.897 − 100.1) × 10 − (1.5005 + 1.514485) = 27.97 − 3.014985 = 24.955015
    const exit = signal({
      kind: "exit",
      action: "SELL",
      price: 103,
      timestamp: T0 + 60_000,
      reason: "rsi_recovered",
      indicators: { rsi_14: 58 },
      confidence: 0.53,
    });
    const closed = await t.onSignal(exit);
    expect(closed.type).toBe("closed");
    if (closed.type !== "closed") return;
    expect(closed.trade.exit_reason).toBe("rsi_recovered");
    expect(closed.trade.exit_price).toBeCloseTo(102.897, 12);
    expect(closed.trade.pnl).toBeCloseTo(24.955015, 9);
    expect(closed.trade.duration_seconds).toBe(60);
    const details = await dm.getTradeDetails(closed.trade.trade_id);
    expect(details?.exit_conditions[0]?.conditions).toMatchObject({
      reason: "rsi_recovered",
      indicators: { rsi_14: 58 },
    });

    // Nothing left to close; an exit of the wrong side is not acted on either.
    expect(await t.onSignal(exit)).toMatchObject({ type: "ignored", reason: "no_position" });
    await t.onSignal(signal({ timestamp: T0 + 61_000 }));
    expect(await t.onSignal({ ...exit, action: "BUY", timestamp: T0 + 62_000 })).toMatchObject({
      type: "ignored",
      reason: "side_mismatch",
    });
  });

  it("handles a short symmetrically: the stop trails down and a rise through it closes the trade", async () => {
    const { dm } = dataManager();
    const t = tracker(dm, {
      short: { sizing: { notional: 1000 }, trailingStop: { type: "step", step_percent: 1 } },
    });
    // SELL at 100 fills at 99.9; quantity = 1000 / 100 = 10; fees 99.9 × 10 × 0.0005 + 1 = 1.4995.
    // Step = 1 % of 99.9 = 0.999; initial stop 99.9 × 1.01 = 100.899.
    const opened = await t.onSignal(signal({ strategy_id: "short", action: "SELL", price: 100 }));
    if (opened.type !== "opened") throw new Error(`not opened: ${opened.type}`);
    expect(opened.trade).toMatchObject({ side: "short", action: "SELL", quantity: 10 });
    expect(opened.trade.stop_loss_initial).toBeCloseTo(100.899, 12);

    // 97.5: 99.9 − 97.5 = 2.4 = 2 whole steps → stop 100.899 − 2 × 0.999 = 98.901
    const moved = ofType(await t.onTick(tick(1000, 97.5)), "stop_moved");
    expect(moved.map((e) => e.stop)).toEqual([expect.closeTo(98.901, 9)]);
    // 98.5: a rise never raises a short's stop.
    expect(await t.onTick(tick(2000, 98.5))).toEqual([]);
    // 99: ≥ 98.901 → stop hit. BUY 99 × 1.001 = 99.099; fees 99.099 × 10 × 0.0005 + 1 = 1.495495.
    // P&L = (99.9 − 99.099) × 10 − (1.4995 + 1.495495) = 8.01 − 2.994995 = 5.015005
    const [closed] = ofType(await t.onTick(tick(3000, 99)), "closed");
    expect(closed?.fill.action).toBe("BUY");
    expect(closed?.fill.price).toBeCloseTo(99.099, 12);
    expect(closed?.trade.exit_reason).toBe("stop_loss");
    expect(closed?.trade.pnl).toBeCloseTo(5.015005, 9);
    expect(closed?.trade.min_price).toBe(97.5);
  });

  it("needs the ATR for an ATR stop, and trails it with the tick's ATR", async () => {
    const { dm } = dataManager();
    const t = tracker(dm, {
      atr: { sizing: { quantity: 1 }, trailingStop: { type: "atr", atr_multiple: 2, atr_period: 14 } },
    });
    const noAtr = await t.onSignal(signal({ strategy_id: "atr", indicators: {} }));
    expect(noAtr).toMatchObject({ type: "ignored", reason: "stop_not_ready" });
    // Entry 100.1; stop 100.1 − 2 × 1.5 = 97.1
    const opened = await t.onSignal(signal({ strategy_id: "atr" }), { atr_14: 1.5 });
    if (opened.type !== "opened") throw new Error("not opened");
    expect(opened.trade.stop_loss_initial).toBeCloseTo(97.1, 12);
    // 105 with ATR 2: 105 − 4 = 101
    const [moved] = ofType(await t.onTick(tick(1000, 105), { atr_14: 2 }), "stop_moved");
    expect(moved?.stop).toBe(101);
  });

  it("closeAll closes every open position at its last price", async () => {
    const { dm } = dataManager();
    const t = tracker(dm);
    await t.onSignal(signal());
    await t.onSignal(signal({ symbol: "TCS", price: 50 }));
    await t.onTick(tick(5000, 101));
    const events = await t.closeAll("shutdown");
    expect(
      ofType(events, "closed")
        .map((e) => [e.trade.symbol, e.reason, e.trade.exit_time])
        .sort(),
    ).toEqual([
      ["RELIANCE", "shutdown", T0 / 1000 + 5],
      ["TCS", "shutdown", T0 / 1000],
    ]);
    // RELIANCE: SELL 101 × 0.999 = 100.899
    expect(ofType(events, "closed").find((e) => e.trade.symbol === "RELIANCE")?.fill.price).toBeCloseTo(
      100.899,
      12,
    );
    expect(t.positions()).toEqual([]);
    expect(await dm.getOpenPositions()).toEqual([]);
  });

  it("a journal refusal stops the fill and leaves no position behind", async () => {
    const { dm, path } = dataManager();
    await tracker(dm).onSignal(signal());
    // Committed, so the second writer of the file is not held behind the first one's write lock.
    dm.commitJournal();
    // A second tracker on the same journal produces the same trade id: the journal refuses it.
    const { dm: dm2 } = dataManager(path);
    const second = tracker(dm2);
    expect(() => second.onSignal(signal())).toThrow(StateError);
    expect(second.positions()).toEqual([]);
  });
});

describe("PositionTracker resuming the journal's open trades", () => {
  /** A first run opens rsi_mr on RELIANCE at 100 (fill 100.1), trails the stop to 107.8 and stops without closing. */
  async function leftOpen() {
    const first = dataManager();
    const t1 = tracker(first.dm);
    const opened = await t1.onSignal(signal());
    if (opened.type !== "opened") throw new Error(`not opened: ${opened.type}`);
    await t1.onTick(tick(1000, 104));
    await t1.onTick(tick(1500, 110));
    await t1.onTick(tick(2000, 108));
    expect(t1.position("rsi_mr", "RELIANCE")?.stop).toBe(107.8);
    await first.dm.close(); // the run ends; the position is not closed
    return { path: first.path, tradeId: opened.trade.trade_id };
  }

  it("a second tracker takes the position over: same trade id and stop, closed by the stop with exact P&L", async () => {
    const { path, tradeId } = await leftOpen();
    const { dm, journal, series } = dataManager(path);
    expect((await dm.getOpenPositions()).map((p) => p.trade_id)).toEqual([tradeId]);

    const t2 = tracker(dm);
    const resumed = t2.resume(...fromJournal(journal, tradeId));
    expect(resumed).toEqual({
      trade_id: "rsi_mr-RELIANCE-1",
      strategy_id: "rsi_mr",
      symbol: "RELIANCE",
      side: "long",
      entry_price: expect.closeTo(100.1, 12),
      quantity: 10,
      entry_time: T0,
      entry_fees: expect.closeTo(1.5005, 12),
      last_price: expect.closeTo(100.1, 12),
      last_timestamp: T0,
      unrealized_pnl: 0,
      stop: 107.8,
      highest: 110,
      max_price: 110,
      min_price: expect.closeTo(100.1, 12),
      sl_type: "fixed_percent",
    });
    expect(t2.positions()).toEqual([resumed]);
    // Resuming writes nothing.
    expect(journal.getSlUpdates(tradeId)).toHaveLength(3);
    expect(series.points).toEqual([]);

    // Still one position per (strategy, symbol): a new entry is ignored while it is open.
    const again = await t2.onSignal(signal({ timestamp: T0 + 2_500, price: 108 }));
    expect(again).toMatchObject({ type: "ignored", reason: "position_open" });
    expect(() => t2.resume(...fromJournal(journal, tradeId))).toThrow(StateError);

    // 108.5: under the saved best (110), the stop stays at 107.8; the mark moves.
    expect(await t2.onTick(tick(3000, 108.5))).toEqual([]);
    // (108.5 − 100.1) × 10 = 84
    expect(t2.position("rsi_mr", "RELIANCE")?.unrealized_pnl).toBeCloseTo(84, 9);

    // 107 ≤ 107.8: the restored stop is hit. SELL 107 × 0.999 = 106.893; exit fees 1.534465.
    // P&L = (106.893 − 100.1) × 10 − (1.5005 + 1.534465) = 67.93 − 3.034965 = 64.895035
    const [closed] = ofType(await t2.onTick(tick(3500, 107)), "closed");
    expect(closed?.trade).toMatchObject({
      trade_id: tradeId,
      status: "closed",
      exit_reason: "stop_loss",
      exit_time: T0 / 1000 + 3.5,
      max_price: 110,
    });
    expect(closed?.fill.price).toBeCloseTo(106.893, 12);
    expect(closed?.trade.pnl).toBeCloseTo(64.895035, 9);
    expect(closed?.trade.fees).toBeCloseTo(3.034965, 12);
    expect(closed?.trade.duration_seconds).toBeCloseTo(3.5, 9);
    expect(t2.realizedPnl().total).toBeCloseTo(64.895035, 9);
    expect(t2.positions()).toEqual([]);
    expect(await dm.getOpenPositions()).toEqual([]);
    const details = await dm.getTradeDetails(tradeId);
    expect(details?.exit_conditions[0]?.conditions).toMatchObject({
      reason: "stop_loss",
      stop: 107.8,
      highest_price: 110,
    });

    // The next entry gets a new id, not the resumed trade's.
    const next = await t2.onSignal(signal({ timestamp: T0 + 4_000 }));
    expect(next.type === "opened" && next.trade.trade_id).toBe("rsi_mr-RELIANCE-2");
  });

  it("trails the resumed stop on from the saved best price", async () => {
    const { path, tradeId } = await leftOpen();
    const { dm, journal } = dataManager(path);
    const t2 = tracker(dm);
    t2.resume(...fromJournal(journal, tradeId));
    // 112: a new best → 112 × 0.98 = 109.76, journaled after the first run's three updates.
    const [moved] = ofType(await t2.onTick(tick(3000, 112)), "stop_moved");
    expect(moved).toMatchObject({ trade_id: tradeId, stop: expect.closeTo(109.76, 9), highest: 112 });
    expect(journal.getSlUpdates(tradeId).map((u) => u.stop)).toEqual([
      expect.closeTo(98.098, 12),
      101.92,
      107.8,
      expect.closeTo(109.76, 9),
    ]);
  });

  it("leaves an unmarked resumed position open on closeAll: it has no price of this run", async () => {
    const { path, tradeId } = await leftOpen();
    const { dm, journal } = dataManager(path);
    const t2 = tracker(dm);
    t2.resume(...fromJournal(journal, tradeId));
    expect(await t2.closeAll("shutdown")).toEqual([]);
    expect(journal.getTrade(tradeId)?.status).toBe("open");
    await t2.onTick(tick(3000, 109));
    const [closed] = ofType(await t2.closeAll("shutdown"), "closed");
    expect(closed?.trade).toMatchObject({
      trade_id: tradeId,
      exit_reason: "shutdown",
      exit_time: T0 / 1000 + 3,
    });
  });

  it("refuses a trade of a strategy it has no settings for, and a closed trade", async () => {
    const { dm, journal } = dataManager();
    const retired: Trade = journal.insertTrade({
      trade_id: "retired-RELIANCE-1",
      strategy_id: "retired",
      symbol: "RELIANCE",
      action: "BUY",
      side: "long",
      entry_time: T0 / 1000,
      entry_price: 100,
      quantity: 1,
      stop_loss_initial: 95,
    });
    const t = tracker(dm);
    expect(() => t.resume(retired, undefined)).toThrow(NotFoundError);
    expect(t.positions()).toEqual([]);
    const closed = journal.closeTrade(retired.trade_id, {
      exit_time: T0 / 1000 + 1,
      exit_price: 101,
      exit_reason: "manual",
    });
    expect(() => t.resume(closed, undefined)).toThrow(StateError);
  });
});

describe("TradingPipeline", () => {
  const config = parseStrategyConfig({
    paper_broker: { slippage_bps: 2, fee_bps: 3 },
    position_snapshot_interval_ms: 1000,
    strategies: [
      {
        id: "rsi_mr",
        type: "rsi_mean_reversion",
        symbols: "*",
        position_size: { notional: 10000 },
        trailing_stop: { type: "fixed_percent", percent: 2 },
      },
      {
        id: "supertrend",
        type: "supertrend",
        symbols: ["RELIANCE"],
        position_size: { notional: 10000 },
        params: { atr_period: 10, multiplier: 3 },
        trailing_stop: { type: "atr", atr_multiple: 3, atr_period: 14 },
      },
    ],
  });
  // 20 bars of calm, a 15-bar slide, a 15-bar rally.
  const closes = [
    ...Array.from({ length: 20 }, (_, i) => 100 + (i % 2)),
    ...Array.from({ length: 15 }, (_, i) => 99 - 1.2 * i),
    ...Array.from({ length: 15 }, (_, i) => 82 + 1.5 * i),
  ];

  async function run(runId: string) {
    const { dm, series, path } = dataManager();
    const pipeline = pipelineFromConfig(config, dm, { runId });
    const events: TrackerEvent[] = [];
    for (const [i, close] of closes.entries()) {
      const outcome = await pipeline.onTick({
        ...tick(i * 1000, close),
        high: close + 0.4,
        low: close - 0.4,
      });
      events.push(...(outcome?.events ?? []));
    }
    return { dm, series, path, pipeline, events };
  }

  it("runs ticks through indicators, strategies and the tracker, and counts what happened", async () => {
    const { dm, series, pipeline, events } = await run("s1");
    // A tick that fails validation is counted and skipped.
    expect(await pipeline.onTick({ ...tick(999_000, 10), high: 9 })).toBeUndefined();

    // The slide takes RSI under 30 (entry) and then through the 2 % stop; the rally flips the Supertrend up.
    expect(pipeline.counters()).toMatchObject({
      ticks: closes.length,
      ticksRejected: 1,
      signals: { rsi_mr: { BUY: 1 }, supertrend: { BUY: 1 } },
      signalsIgnored: 0,
      fills: 3,
      stopHits: 1,
      tradesClosed: 1,
      openPositions: 1,
    });
    expect(ofType(events, "opened").map((e) => e.trade.trade_id)).toEqual([
      "s1-rsi_mr-RELIANCE-1",
      "s1-supertrend-RELIANCE-1",
    ]);
    expect(series.of("ticks")).toHaveLength(closes.length);
    expect(
      series.of("indicators").some((p) => p.tags.indicator_type === "rsi_14" && p.fields.period === 14),
    ).toBe(true);

    await pipeline.closeAll("shutdown");
    const after = pipeline.counters();
    expect(after).toMatchObject({ openPositions: 0, tradesClosed: 2, fills: 4 });
    expect(await dm.getOpenPositions()).toEqual([]);
    // Realized P&L equals the journal's, per strategy and in total.
    const journalPnl = async (id: string) => (await dm.getStrategyPerformance(id, 100_000)).stats.total_pnl;
    expect(after.realizedPnlByStrategy.rsi_mr).toBeCloseTo(await journalPnl("rsi_mr"), 9);
    expect(after.realizedPnlByStrategy.supertrend).toBeCloseTo(await journalPnl("supertrend"), 9);
    expect(after.realizedPnl).toBeCloseTo((await journalPnl("rsi_mr")) + (await journalPnl("supertrend")), 9);
  });

  it("is deterministic: the same ticks give the same trade ids, fills and P&L", async () => {
    const a = await run("s7");
    const b = await run("s7");
    const summary = (events: TrackerEvent[]) =>
      events.flatMap((e) =>
        e.type === "opened" || e.type === "closed" ? [[e.type, e.fill, e.trade.pnl]] : [],
      );
    expect(summary(b.events)).toEqual(summary(a.events));
    expect(b.pipeline.counters()).toEqual(a.pipeline.counters());
  });

  it("a restarted pipeline resumes the open position: counted, and its ATR stop holds before ATR is ready", async () => {
    const first = await run("s1");
    const [left] = first.pipeline.tracker.positions();
    expect(left).toMatchObject({ trade_id: "s1-supertrend-RELIANCE-1", sl_type: "atr" });
    if (!left) return;
    const savedStop = left.stop;
    await first.dm.close();

    const { dm, journal } = dataManager(first.path);
    const pipeline = pipelineFromConfig(config, dm, { runId: "s2" });
    const report = pipeline.resumeOpenTrades(journal);
    expect(report.resumed.map((p) => [p.trade_id, p.stop, p.highest])).toEqual([
      [left.trade_id, savedStop, left.highest],
    ]);
    expect([report.unmanaged, report.duplicates, report.failed]).toEqual([[], [], []]);
    expect(pipeline.counters()).toMatchObject({ openPositions: 1, realizedPnl: 0, tradesClosed: 0 });

    // A new best price with no ATR yet (the indicator book starts empty): the saved stop holds.
    const high = left.highest + 5;
    const outcome = await pipeline.onTick(tick(100_000, high));
    expect(outcome?.indicators.atr_14).toBeUndefined();
    expect(outcome?.events).toEqual([]);
    const marked = pipeline.tracker.position("supertrend", "RELIANCE");
    expect(marked).toMatchObject({ stop: savedStop, highest: high, last_price: high });
    // Unrealized P&L counts the resumed position.
    expect(marked?.unrealized_pnl).toBeCloseTo((high - left.entry_price) * left.quantity, 9);

    // Below the saved stop: closed as a stop loss. SELL at × (1 − 2/10 000); fees 3 bps of the notional.
    const price = savedStop - 0.5;
    const closedOutcome = await pipeline.onTick(tick(101_000, price));
    const [closed] = ofType(closedOutcome?.events ?? [], "closed");
    const exitPrice = (price * 9_998) / 10_000;
    const exitFees = (exitPrice * left.quantity * 3) / 10_000;
    const pnl = (exitPrice - left.entry_price) * left.quantity - left.entry_fees - exitFees;
    expect(closed?.trade).toMatchObject({ trade_id: left.trade_id, exit_reason: "stop_loss" });
    expect(closed?.trade.pnl).toBeCloseTo(pnl, 9);
    expect(pipeline.counters()).toMatchObject({ openPositions: 0, stopHits: 1, tradesClosed: 1 });
    expect(pipeline.counters().realizedPnl).toBeCloseTo(pnl, 9);
    expect(journal.openTrades()).toEqual([]);
  });

  it("leaves open trades of unconfigured strategies and symbols alone, and resumes only the newest of a pair", async () => {
    const narrow = parseStrategyConfig({
      strategies: [
        {
          id: "rsi_mr",
          type: "rsi_mean_reversion",
          symbols: ["RELIANCE"],
          position_size: { quantity: 1 },
          trailing_stop: { type: "fixed_percent", percent: 2 },
        },
      ],
    });
    const { dm, journal } = dataManager();
    const insert = (trade_id: string, strategy_id: string, symbol: string, entryOffset: number) =>
      journal.insertTrade({
        trade_id,
        strategy_id,
        symbol,
        action: "BUY",
        side: "long",
        entry_time: T0 / 1000 + entryOffset,
        entry_price: 100,
        quantity: 1,
        stop_loss_initial: 98,
      });
    insert("old-retired-RELIANCE-1", "retired", "RELIANCE", 0);
    insert("old-rsi_mr-TCS-1", "rsi_mr", "TCS", 0);
    insert("old-rsi_mr-RELIANCE-1", "rsi_mr", "RELIANCE", 1);
    insert("old-rsi_mr-RELIANCE-2", "rsi_mr", "RELIANCE", 2);

    const pipeline = pipelineFromConfig(narrow, dm, { runId: "r2" });
    const report = pipeline.resumeOpenTrades(journal);
    expect(report.resumed.map((p) => p.trade_id)).toEqual(["old-rsi_mr-RELIANCE-2"]);
    expect(report.duplicates.map((t) => t.trade_id)).toEqual(["old-rsi_mr-RELIANCE-1"]);
    expect(report.unmanaged.map((t) => t.trade_id).sort()).toEqual([
      "old-retired-RELIANCE-1",
      "old-rsi_mr-TCS-1",
    ]);
    expect(pipeline.counters().openPositions).toBe(1);

    // Prices through every stop: only the resumed trade closes; the others stay open, untouched.
    await pipeline.onTick(tick(10_000, 90));
    await pipeline.onTick(tick(10_000, 90, "TCS"));
    expect(journal.getTrade("old-rsi_mr-RELIANCE-2")?.exit_reason).toBe("stop_loss");
    expect(
      journal
        .openTrades()
        .map((t) => t.trade_id)
        .sort(),
    ).toEqual(["old-retired-RELIANCE-1", "old-rsi_mr-RELIANCE-1", "old-rsi_mr-TCS-1"]);
    for (const id of ["old-retired-RELIANCE-1", "old-rsi_mr-RELIANCE-1", "old-rsi_mr-TCS-1"]) {
      expect(journal.getSlUpdates(id)).toEqual([]);
    }
  });
});
