// The live page: open positions from the API's WebSocket (/ws), as they open, move and close.
// No framework and no build step; values are set with textContent only.

const TOKEN_KEY = "velox.token";
const PROTOCOL_PREFIX = "velox.bearer.";
const positions = new Map(); // "strategy|symbol" -> position
const $ = (id) => document.getElementById(id);
let ticks = null;

const keyOf = (p) => `${p.strategy_id}|${p.symbol}`;
const money = (n) =>
  n === null || n === undefined
    ? "–"
    : n.toLocaleString(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const price = (n) =>
  n === null || n === undefined ? "–" : n.toLocaleString(undefined, { maximumFractionDigits: 4 });

function setState(state, text) {
  const el = $("connection");
  el.className = `state ${state}`;
  el.textContent = text;
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function render() {
  const body = document.querySelector("#positions tbody");
  const rows = [...positions.values()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  const fresh = new Set([...body.querySelectorAll("tr.fresh")].map((tr) => tr.dataset.key));
  body.replaceChildren();
  let total = 0;
  for (const p of rows) {
    const tr = document.createElement("tr");
    tr.dataset.key = keyOf(p);
    tr.dataset.tradeId = p.trade_id ?? "";
    if (p.fresh || fresh.has(tr.dataset.key)) tr.className = "fresh";
    p.fresh = false;
    cell(tr, p.strategy_id);
    cell(tr, p.symbol);
    cell(tr, p.side ?? "");
    cell(tr, price(p.quantity), "num");
    cell(tr, price(p.entry_price), "num");
    cell(tr, price(p.current_price), "num").dataset.field = "price";
    const pnl = p.unrealized_pnl ?? null;
    if (pnl !== null) total += pnl;
    const pnlCell = cell(tr, money(pnl), `num ${pnl > 0 ? "up" : pnl < 0 ? "down" : ""}`);
    pnlCell.dataset.field = "unrealized_pnl";
    cell(tr, price(p.stop_loss), "num");
    cell(tr, p.trade_id ?? "");
    body.append(tr);
  }
  $("no-positions").hidden = rows.length > 0;
  $("open-count").textContent = String(rows.length);
  const unrealized = $("unrealized");
  unrealized.textContent = money(total);
  unrealized.className = `value ${total > 0 ? "up" : total < 0 ? "down" : ""}`;
  $("ticks").textContent = ticks === null ? "–" : ticks.toLocaleString();
  $("updated-at").textContent = new Date().toLocaleTimeString();
}

function closed(change) {
  const p = positions.get(keyOf(change));
  positions.delete(keyOf(change));
  const li = document.createElement("li");
  li.dataset.key = keyOf(change);
  li.textContent = `${new Date().toLocaleTimeString()} · ${change.strategy_id} ${change.symbol}${p?.trade_id ? ` (${p.trade_id})` : ""} closed`;
  const list = $("closed");
  list.prepend(li);
  while (list.children.length > 20) list.lastElementChild.remove();
}

function onMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  if (message.type === "positions") {
    positions.clear();
    for (const p of message.data) positions.set(keyOf(p), p);
  } else if (message.type === "position_change") {
    const change = message.data;
    if (change.type === "closed") closed(change);
    else
      positions.set(keyOf(change), {
        ...positions.get(keyOf(change)),
        ...change,
        fresh: change.type === "opened",
      });
  } else if (message.type === "status") {
    const engine = message.data.engine ?? {};
    ticks =
      typeof engine.ticks === "number"
        ? engine.ticks
        : typeof engine.ticks_processed === "number"
          ? engine.ticks_processed
          : ticks;
  } else {
    return;
  }
  render();
}

function connect(retryMs = 1000) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
  // The server answers with "velox"; the token-bearing protocol is never echoed back.
  const socket = token ? new WebSocket(url, ["velox", `${PROTOCOL_PREFIX}${token}`]) : new WebSocket(url);
  let opened = false;
  socket.addEventListener("open", () => {
    opened = true;
    setState("open", "live");
  });
  socket.addEventListener("message", onMessage);
  socket.addEventListener("close", (event) => {
    if (!opened && event.code === 1006 && !token) {
      // Refused before opening: most likely a token is required.
      setState("refused", "token required");
      $("token-form").hidden = false;
      return;
    }
    setState("closed", `disconnected; retrying in ${Math.round(retryMs / 1000)} s`);
    setTimeout(() => connect(Math.min(retryMs * 2, 30_000)), retryMs);
  });
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token-form").hidden = true;
  setState("connecting", "connecting…");
  connect();
});

render();
connect();
