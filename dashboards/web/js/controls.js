// Controls (#/controls): the API key (kept in this tab's sessionStorage), fault injection and
// manual work orders. Every answer is shown in words: 401/403 say which key to use.

import { apiKey, explainWriteError, features, getJson, postJson, setApiKey, setKeyWhere } from "./api.js";
import { FAULT_KINDS, METRICS, METRIC_NAMES, el, setText, simTime } from "./format.js";
import { onRender } from "./frame.js";
import { factory } from "./state.js";

const dom = {};
let poller = null;
let wantedRobot = null;

function field(labelText, input, hint = null) {
  return el("label", { class: "field" }, el("span", {}, labelText), input, hint ? el("small", {}, hint) : null);
}

function robotSelect(name) {
  return el("select", { name, required: true, onchange: () => onRobot(name) });
}

export function mountControls(section, healthPoller) {
  poller = healthPoller;
  dom.key = el("input", { type: "password", autocomplete: "off", "aria-label": "API key", value: apiKey() });
  dom.keyStatus = el("span", { class: "note", role: "status" });
  const keyForm = el(
    "form",
    { class: "card-form", "data-testid": "key-form", onsubmit: saveKey },
    el("h2", {}, "API key"),
    dom.keyWhere = el("p", { class: "note", "data-testid": "key-where" }, "Writes need the service's key (STATE_DIR/api-key), and so does the ground truth in the message inspector. It stays in this browser tab only."),
    field("Key", dom.key),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Use key"), el("button", { type: "button", onclick: forgetKey }, "Forget")),
    dom.keyStatus,
  );

  dom.faultRobot = robotSelect("robot");
  dom.faultKind = el("select", { name: "fault" }, Object.entries(FAULT_KINDS).map(([k, what]) => el("option", { value: k }, `${k} — ${what}`)));
  dom.faultComponent = el("select", { name: "component" }, el("option", { value: "" }, "(none)"));
  dom.faultSensor = el("select", { name: "sensor" }, el("option", { value: "" }, "(none)"), METRIC_NAMES.map((m) => el("option", { value: m }, `${m} (${METRICS[m].unit})`)));
  dom.magnitude = el("input", { name: "magnitude", type: "number", min: "0.1", max: "1000", step: "0.1", value: "1" });
  dom.faultHours = el("input", { name: "duration_h", type: "number", min: "0", step: "0.5", placeholder: "until repaired" });
  dom.faultResult = el("p", { class: "result", role: "status", "data-testid": "fault-result" });
  dom.faultForm = el(
    "form",
    { class: "card-form", "data-testid": "fault-form", onsubmit: sendFault },
    el("h2", {}, "Inject a fault"),
    dom.faultNote = el("p", { class: "note" }),
    field("Robot", dom.faultRobot),
    field("Fault", dom.faultKind),
    field("Component", dom.faultComponent, "accelerated_wear needs one"),
    field("Sensor", dom.faultSensor, "sensor faults need one"),
    field("Magnitude m", dom.magnitude),
    field("Duration (simulated hours)", dom.faultHours, "empty: until repaired/replaced"),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Inject fault")),
    dom.faultResult,
  );

  dom.orderRobot = robotSelect("robot");
  dom.orderComponent = el("select", { name: "component", required: true });
  dom.earliest = el("input", { type: "checkbox", name: "earliest", checked: true, onchange: () => (dom.start.disabled = dom.earliest.checked) });
  dom.start = el("input", { type: "datetime-local", name: "start", disabled: true, "aria-label": "Start (UTC)" });
  dom.orderHours = el("input", { name: "duration_h", type: "number", min: "0.25", step: "0.25", placeholder: "the kind's planned repair time" });
  dom.orderNoteText = el("input", { name: "note", type: "text", maxlength: "200" });
  dom.orderResult = el("p", { class: "result", role: "status", "data-testid": "order-result" });
  dom.orderForm = el(
    "form",
    { class: "card-form", "data-testid": "order-form", onsubmit: sendOrder },
    el("h2", {}, "Manual work order"),
    dom.orderNote = el("p", { class: "note" }),
    field("Robot", dom.orderRobot),
    field("Component", dom.orderComponent),
    el("label", { class: "field inline" }, dom.earliest, el("span", {}, "Earliest feasible slot")),
    field("…or start at (UTC)", dom.start),
    field("Duration (simulated hours)", dom.orderHours),
    field("Note", dom.orderNoteText),
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Create work order")),
    dom.orderResult,
  );
  section.append(el("div", { class: "controls" }, keyForm, dom.faultForm, dom.orderForm));
  showKeyStatus();
  showKeyWhere();
  onRender("floor-layout", fillRobots);
  onRender("health", () => fillComponents());
  onRender("features", availability);
}

/** Show the controls, choosing `robot` if given (from a robot page's link). */
export function openControls(params) {
  wantedRobot = params.get("robot");
  fillRobots();
  availability();
  onRobot();
  (params.get("form") === "order" ? dom.orderComponent : dom.faultKind).focus();
}

function availability() {
  for (const [form, note, feature, what] of [
    [dom.faultForm, dom.faultNote, "faults", "Fault injection"],
    [dom.orderForm, dom.orderNote, "manualOrders", "Manual work orders"],
  ]) {
    const there = features.has(feature);
    form.querySelector("button[type=submit]").disabled = !there;
    setText(note, there ? "" : `${what} is not available on this service yet.`);
  }
}

function fillRobots() {
  const ids = [...factory.robots.keys()].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  for (const select of [dom.faultRobot, dom.orderRobot]) {
    if ([...select.options].map((o) => o.value).join() !== ids.join()) {
      const chosen = select.value;
      select.replaceChildren(...ids.map((id) => el("option", { value: id }, id)));
      if (ids.includes(chosen)) select.value = chosen;
    }
    // The robot a link asked for (#/controls?robot=ID), as soon as the robot list has it.
    if (wantedRobot && ids.includes(wantedRobot)) select.value = wantedRobot;
  }
  if (wantedRobot && ids.includes(wantedRobot)) {
    wantedRobot = null;
    onRobot();
  }
}

function onRobot() {
  for (const select of [dom.faultRobot, dom.orderRobot]) if (select.value) poller?.poke(select.value);
  fillComponents();
}

function componentsOf(robotId) {
  const fromHealth = factory.health.get(robotId)?.components?.map((c) => c.name);
  return fromHealth ?? factory.births.get(robotId)?.components?.map((c) => c.name) ?? [];
}

// Component is a choice among the chosen robot's own components (from its health, else its
// birth); the fault form may also leave it empty.
function fillComponents() {
  for (const [robot, select, blank] of [[dom.faultRobot, dom.faultComponent, true], [dom.orderRobot, dom.orderComponent, false]]) {
    const names = [...(blank ? [""] : []), ...componentsOf(robot.value)];
    if ([...select.options].map((o) => o.value).join() !== names.join()) {
      const chosen = select.value;
      select.replaceChildren(...names.map((n) => el("option", { value: n }, n || "(none)")));
      if (names.includes(chosen)) select.value = chosen;
    }
  }
}

async function showKeyWhere() {
  try {
    const { api_key_hint: where } = await getJson("/dashboard/config.json");
    setKeyWhere(where);
    setText(dom.keyWhere, `Writes need the service's key: ${where}. It stays in this browser tab only.`);
  } catch {
    // An older service: the generic text stays.
  }
}

// Command ids sent from this page, waiting for the robot's ack on its event topic (the
// command/response pattern: the answer comes back on another channel, matched by id).
// The robot may answer before the POST's response is read: recent acks are kept for a moment.
const awaiting = new Map();
const recentAcks = new Map();
const MAX_KEPT = 50;

function trim(map) {
  for (const id of map.keys()) if (map.size > MAX_KEPT) map.delete(id);
}

factory.eventListeners.add((robotId, payload) => {
  if (payload.kind !== "ack") return;
  const done = awaiting.get(payload.command_id);
  if (done) {
    awaiting.delete(payload.command_id);
    done(payload.status, payload.reason);
  } else {
    recentAcks.set(payload.command_id, payload);
    trim(recentAcks);
  }
});

function awaitAck(commandId, done) {
  const early = recentAcks.get(commandId);
  if (early) done(early.status, early.reason);
  else {
    awaiting.set(commandId, done);
    trim(awaiting);
  }
}

function saveKey(event) {
  event.preventDefault();
  setApiKey(dom.key.value.trim());
  showKeyStatus();
}

function forgetKey() {
  dom.key.value = "";
  setApiKey("");
  showKeyStatus();
}

function showKeyStatus() {
  setText(dom.keyStatus, apiKey() ? "A key is set for this tab." : "No key set: writes will be refused (401).");
}

function show(target, ok, text) {
  target.className = ok ? "result ok" : "result error";
  target.setAttribute("role", ok ? "status" : "alert");
  setText(target, text);
}

const optional = (text) => (text.trim() === "" ? null : text.trim());
const hoursToS = (text) => (text.trim() === "" ? null : Number(text) * 3600);

async function sendFault(event) {
  event.preventDefault();
  const robot = dom.faultRobot.value;
  const body = {
    fault: dom.faultKind.value,
    component: optional(dom.faultComponent.value),
    sensor: optional(dom.faultSensor.value),
    magnitude: Number(dom.magnitude.value || "1"),
    duration_s: hoursToS(dom.faultHours.value),
  };
  show(dom.faultResult, true, "Sending…");
  const answer = await postJson(`/api/robots/${encodeURIComponent(robot)}/faults`, body);
  if (answer.ok) {
    const { fault, robot: target, command_id: commandId } = answer.data;
    const sent = `Sent ${fault} to ${target} as command ${commandId}`;
    show(dom.faultResult, true, `${sent}; waiting for the robot's answer…`);
    awaitAck(commandId, (status, reason) => {
      if (status === "rejected") show(dom.faultResult, false, `${sent}; the robot rejected it: ${reason ?? "no reason given"}.`);
      else show(dom.faultResult, true, `${sent}; the robot ${status === "done" ? "applied" : "accepted"} it — watch its page.`);
    });
  } else {
    show(dom.faultResult, false, explainWriteError(answer.status, answer.detail));
  }
}

async function sendOrder(event) {
  event.preventDefault();
  let startTs = null;
  if (!dom.earliest.checked) {
    if (!dom.start.value) return show(dom.orderResult, false, "Choose a start time, or tick “earliest feasible slot”.");
    startTs = Date.parse(`${dom.start.value}Z`) / 1000;
  }
  const body = {
    robot: dom.orderRobot.value,
    component: dom.orderComponent.value,
    start_ts: startTs,
    duration_s: hoursToS(dom.orderHours.value),
    note: optional(dom.orderNoteText.value),
  };
  show(dom.orderResult, true, "Sending…");
  const answer = await postJson("/api/work-orders", body);
  if (answer.ok) {
    const order = answer.data;
    show(dom.orderResult, true, `Work order ${order.id} ${order.status}: ${order.robot} ${order.component} at ${simTime(order.start_ts)}.`);
  } else {
    show(dom.orderResult, false, explainWriteError(answer.status, answer.detail));
  }
}
