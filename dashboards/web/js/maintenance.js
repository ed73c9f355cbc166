// Work orders as a board (one column per lifecycle status) and the alarm list (#/maintenance).

import { explainWriteError, features, postJson } from "./api.js";
import { ACTIVE_ORDER_STATUSES, WORK_ORDER_COLUMNS, el, hours, shortTime, simTime } from "./format.js";
import { invalidate, onRender } from "./frame.js";
import { applyEvent, factory } from "./state.js";

const CARDS_PER_COLUMN = 25;
const ALARM_ROWS = 100;
const CLOSED = new Set(["cancelled", "expired", "rejected", "interrupted"]);
// The lifecycle lets these be cancelled; work in progress finishes.
const CANCELLABLE = new Set(["planned", "dispatched", "acknowledged"]);
// Why a cancel was refused, per order: the board redraws often, the answer must stay.
const refusals = new Map();

const dom = {};

export function mountMaintenance(section) {
  dom.robotFilter = el("input", {
    type: "search",
    placeholder: "robot id, e.g. weld-01",
    "aria-label": "Only this robot",
    oninput: render,
  });
  dom.activeOnly = el("input", { type: "checkbox", checked: true, onchange: renderAlarms });
  dom.board = el("div", { class: "board", "data-testid": "board" });
  dom.boardNote = el("p", { class: "note" });
  dom.alarms = el("tbody", { "data-testid": "alarm-rows" });
  dom.alarmNote = el("p", { class: "note" });
  section.append(
    el(
      "div",
      { class: "toolbar" },
      el("h2", {}, "Work orders"),
      el("label", {}, "Robot ", dom.robotFilter),
    ),
    dom.boardNote,
    dom.board,
    el(
      "div",
      { class: "toolbar" },
      el("h2", {}, "Alarms"),
      el("label", {}, dom.activeOnly, " active only"),
    ),
    dom.alarmNote,
    el(
      "table",
      { class: "alarms" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ["Severity", "Robot", "Component", "Message", "Raised", "Cleared"].map((h) =>
            el("th", { scope: "col" }, h),
          ),
        ),
      ),
      dom.alarms,
    ),
  );
  onRender("work-orders", renderBoard);
  onRender("alarms", renderAlarms);
  onRender("features", render);
}

function render() {
  renderBoard();
  renderAlarms();
}

function wanted(robotId) {
  const text = dom.robotFilter.value.trim();
  return !text || robotId.includes(text);
}

const REASON_PREVIEW = 90;

/** A long engine reason folds: its first clause shows, the rest opens on click. */
function folded(text, className) {
  if (!text) return null;
  const first = text.split(/[;:]\s/)[0];
  const preview = first.length > REASON_PREVIEW ? `${first.slice(0, REASON_PREVIEW)}…` : first;
  if (preview === text) return el("div", { class: className }, text);
  return el("details", { class: className }, el("summary", {}, preview), text);
}

function step(last, reason) {
  const text = `${last.status} ${shortTime(last.ts)}: ${reason}`;
  return el("small", { class: "card-step", title: text }, text);
}

function card(order) {
  const last = order.history?.[order.history.length - 1];
  const finished = !ACTIVE_ORDER_STATUSES.has(order.status);
  return el(
    "li",
    { class: `card source-${order.source}`, "data-order": order.id, "data-status": order.status },
    el(
      "div",
      { class: "card-head" },
      el("a", { href: `#/robot/${order.robot}` }, order.robot),
      ` ${order.component}`,
      el("span", { class: "source" }, order.source),
    ),
    el(
      "div",
      {},
      `start ${shortTime(order.start_ts)} · ${hours(order.duration_s / 3600)}`,
      order.placement ? el("span", { class: "placement" }, ` · ${order.placement}`) : null,
    ),
    CLOSED.has(order.status) ? el("div", { class: "card-closed" }, order.status) : null,
    finished ? null : folded(order.reason, "card-reason"),
    last ? step(last, order.status_reason ?? last.reason) : null,
    el("small", { class: "card-id" }, order.id),
    CANCELLABLE.has(order.status) && features.has("cancelOrders")
      ? el("button", { type: "button", class: "card-cancel", onclick: () => cancel(order) }, "Cancel")
      : null,
    refusals.has(order.id) ? el("p", { class: "result error", role: "alert" }, refusals.get(order.id)) : null,
  );
}

async function cancel(order) {
  refusals.delete(order.id);
  const answer = await postJson(`/api/work-orders/${encodeURIComponent(order.id)}/cancel`, {
    reason: "from the dashboard",
  });
  if (answer.ok) applyEvent("work_order", answer.data);
  else refusals.set(order.id, explainWriteError(answer.status, answer.detail));
  invalidate("work-orders");
}

function renderBoard() {
  dom.boardNote.textContent = features.has("workOrders")
    ? ""
    : "Work orders are not available on this service yet.";
  const columns = new Map(WORK_ORDER_COLUMNS.map(([status]) => [status, []]));
  for (const order of factory.workOrders.values()) {
    if (!wanted(order.robot)) continue;
    const column = CLOSED.has(order.status) ? "closed" : order.status;
    columns.get(column)?.push(order);
  }
  dom.board.replaceChildren(
    ...WORK_ORDER_COLUMNS.map(([status, title]) => {
      const orders = columns.get(status);
      // Open work in start order (what happens next on top); finished work newest first.
      if (status === "done" || status === "closed") orders.sort((a, b) => b.updated_ts - a.updated_ts);
      else orders.sort((a, b) => a.start_ts - b.start_ts);
      const more = orders.length - CARDS_PER_COLUMN;
      return el(
        "section",
        { class: `column column-${status}`, "data-column": status, "aria-label": title },
        el("h3", {}, `${title} (${orders.length})`),
        el("ul", {}, orders.slice(0, CARDS_PER_COLUMN).map(card)),
        more > 0 ? el("p", { class: "note" }, `+${more} more`) : null,
      );
    }),
  );
}

function renderAlarms() {
  dom.alarmNote.textContent = features.has("alarms")
    ? ""
    : "Alarms are not available on this service yet.";
  const alarms = [...factory.alarms.values()]
    .filter((a) => wanted(a.robot) && (!dom.activeOnly.checked || a.cleared_ts === null))
    .sort((a, b) => b.raised_ts - a.raised_ts)
    .slice(0, ALARM_ROWS);
  dom.alarms.replaceChildren(
    ...(alarms.length
      ? alarms.map((a) =>
          el(
            "tr",
            { class: `sev-${a.severity}`, "data-alarm": a.id },
            el("td", {}, el("span", { class: "sev" }, a.severity.toUpperCase())),
            el("td", {}, el("a", { href: `#/robot/${a.robot}` }, a.robot)),
            el("td", {}, a.component ?? "—"),
            el("td", {}, a.message),
            el("td", {}, simTime(a.raised_ts)),
            el("td", {}, a.cleared_ts === null ? "active" : simTime(a.cleared_ts)),
          ),
        )
      : [el("tr", {}, el("td", { colspan: "6", class: "note" }, "No alarms."))]),
  );
}
