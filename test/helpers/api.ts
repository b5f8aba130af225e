import type { ApiServer } from "../../src/api/server.js";
import type { NewTrade } from "../../src/domain/trade.js";
import type { DataManager } from "../../src/storage/data-manager.js";
import { TradeJournal } from "../../src/storage/trade-journal.js";
import { makeTrade, tempJournalPath } from "./trades.js";

/** An hour ago, so the default 30-day strategy window includes the seeded trades. */
export const API_T0 = Math.floor(Date.now() / 1000) - 3600;

export const API_STRATEGIES = [{ id: "rsi_agg", type: "rsi_mean_reversion", symbols: ["RELIANCE", "TCS"] }];

/** A trade entered at API_T0, with a fee of 1 and an initial stop at 95. */
export function apiTrade(id: string, overrides: Partial<NewTrade> = {}): NewTrade {
  return makeTrade(id, API_T0, { fees: 1, stop_loss_initial: 95, ...overrides });
}

/** A new journal in a temp dir. */
export function apiJournal(): TradeJournal {
  return TradeJournal.open(tempJournalPath("velox-api-"));
}

/**
 * A closed trade T1 (RELIANCE, +98 after fees, with conditions and two stop moves) and an open
 * trade T2 (TCS, 5 at 200, entered at API_T0 + 20), both of rsi_agg.
 */
export async function seedApiTrades(dm: DataManager): Promise<void> {
  await dm.openPosition({ trade: apiTrade("T1"), entryConditions: { rsi: 28.5, threshold: 30 } });
  await dm.updateTrailingStop({
    trade_id: "T1",
    ts: API_T0 + 5,
    stop: 98,
    highest_price: 103,
    sl_type: "trailing",
  });
  // The two moves in separate commit windows (4 s apart in a live run), so both are journaled.
  dm.commitJournal();
  await dm.updateTrailingStop({
    trade_id: "T1",
    ts: API_T0 + 9,
    stop: 101,
    highest_price: 106,
    sl_type: "trailing",
  });
  await dm.closePosition("T1", {
    exit: { exit_time: API_T0 + 10, exit_price: 110, exit_fees: 1, exit_reason: "target" },
    exitConditions: { rsi: 71 },
  });
  await dm.openPosition({
    trade: apiTrade("T2", { symbol: "TCS", entry_price: 200, quantity: 5, entry_time: API_T0 + 20 }),
  });
}

// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field by the assertions
export type Body = any;

/** Fetches `path` from the API; the body is parsed when it is JSON, else returned as text. */
export async function getJson(api: ApiServer, path: string, init?: RequestInit) {
  const res = await fetch(`${api.url}${path}`, init);
  const type = res.headers.get("content-type") ?? "";
  const body: Body = type.includes("json") ? await res.json() : await res.text();
  return { res, status: res.status, body };
}

/** POSTs `body` as JSON (a string is sent as is, for malformed bodies), as Grafana does. */
export function postJson(api: ApiServer, path: string, body: unknown, contentType = "application/json") {
  return getJson(api, path, {
    method: "POST",
    headers: { "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}
