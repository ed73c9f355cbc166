// The robot page (#/robot/ID): a chart per signal — history from the telemetry endpoint, then
// live readings appended — with ISO zones behind vibration, planned work and predicted failures
// drawn on; the health table and the robot's work orders and alarms (robot_health.js).

import { getJson } from "./api.js";
import { ISO_ZONES_MM_S, METRICS, METRIC_NAMES, ZONES, el, setText, simTime } from "./format.js";
import { invalidate, onRender } from "./frame.js";
import { timeChart, zoneRange } from "./charts.js";
import { SeriesBuffer, bucketFor } from "./series.js";
import { factory, robotZone } from "./state.js";
import {
  closeHealth,
  componentOverlay,
  mountHealth,
  openHealth,
  ordersOverlay,
  renderHealth,
} from "./robot_health.js";

const WINDOWS_S = { "12 h": 12 * 3600, "2 d": 2 * 86400, "7 d": 7 * 86400, "30 d": 30 * 86400 };
const DEFAULT_WINDOW = "2 d";
const TARGET_POINTS = 500;
const DEFAULT_SAMPLE_S = 300;
const FUTURE_FRACTION = 0.25; // room right of "now" for planned work and predicted failures
const MAX_FUTURE_FRACTION = 0.5;
const CHART_MIN_INTERVAL_MS = 250;

const dom = {};
let windowName = DEFAULT_WINDOW;
let view = null; // {id, buffer, charts, pending, note}
let lastDraw = 0;
let throttle = null;

export function mountRobot(section) {
  dom.title = el("h2", { class: "robot-title" });
  dom.state = el("span", { class: "swatch" });
  dom.zone = el("span", { class: "zone" });
  dom.meta = el("span", { class: "robot-meta" });
  dom.faultLink = el("a", { class: "button" }, "Inject a fault…");
  dom.orderLink = el("a", { class: "button" }, "Plan maintenance…");
  dom.windows = el(
    "div",
    { class: "segmented", role: "group", "aria-label": "Time window" },
    Object.keys(WINDOWS_S).map((name) =>
      el("button", { type: "button", "data-window": name, onclick: () => setWindow(name) }, name),
    ),
  );
  dom.note = el("p", { class: "note", role: "status" });
  dom.charts = el("div", { class: "charts", "data-testid": "robot-charts" });
  const health = el("div", { class: "robot-side" });
  section.append(
    el(
      "div",
      { class: "robot-head" },
      el("a", { href: "#/", class: "back" }, "← Floor"),
      dom.title,
      dom.state,
      dom.zone,
      dom.meta,
      dom.windows,
      dom.faultLink,
      dom.orderLink,
    ),
    dom.note,
    el("div", { class: "robot-body" }, dom.charts, health),
  );
  mountHealth(health);
  onRender("robot-header", renderHeader);
  onRender("floor", () => {
    renderHeader();
    // The charts were drawn before the robot's birth named its ISO class: draw them again.
    if (view && vibrationClass(view.id) !== view.isoClass) setWindow(windowName);
    if (view?.waiting && factory.robots.get(view.id)?.lastSeen) loadHistory(view);
  });
  onRender("robot-charts", renderCharts);
  onRender("health", () => {
    if (!view) return;
    renderHealth(view.id);
    for (const chart of Object.values(view.charts)) chart.redraw();
  });
  onRender("work-orders", () => view && renderHealth(view.id));
  onRender("alarms", () => view && renderHealth(view.id));
  factory.readingListeners.add(onReadings);
}

export function openRobot(robotId) {
  if (view?.id === robotId) return;
  closeRobot();
  view = { id: robotId, buffer: null, charts: {}, pending: [] };
  dom.faultLink.href = `#/controls?robot=${encodeURIComponent(robotId)}`;
  dom.orderLink.href = `#/controls?robot=${encodeURIComponent(robotId)}&form=order`;
  renderHeader();
  buildCharts(view);
  openHealth(robotId, view.xRange, view.windowS);
  loadHistory(view);
}

export function closeRobot() {
  if (!view) return;
  closeHealth();
  for (const chart of Object.values(view.charts)) chart.destroy();
  dom.charts.replaceChildren();
  view = null;
}

function setWindow(name) {
  windowName = name;
  if (!view) return;
  const id = view.id;
  closeRobot();
  openRobot(id);
}

function futureMarks(robotId) {
  const failures = componentOverlay(robotId, null).map((f) => f.ts);
  const orders = ordersOverlay(robotId).map((o) => o.end);
  return [...failures, ...orders];
}

/** Failures that happened and the repairs that ended them, from the failure alarms (the engine
 * raises one when a component fails and clears it when the component is restored) and the
 * robot's live events; each at its simulated time. */
function breakdowns(robotId) {
  const marks = new Map();
  const add = (ts, kind, component) => {
    const label = `${component ?? "robot"} ${kind === "failure" ? "failed" : "repaired"}`;
    marks.set(`${kind}@${ts}@${component}`, { ts, kind, label });
  };
  for (const alarm of factory.alarms.values()) {
    if (alarm.robot !== robotId || alarm.limit !== "failure") continue;
    add(alarm.raised_ts, "failure", alarm.component);
    if (alarm.cleared_ts !== null) add(alarm.cleared_ts, "repair", alarm.component);
  }
  for (const event of factory.events.toArray()) {
    if (event.robot !== robotId) continue;
    if (event.kind === "failure") add(event.ts, "failure", event.component);
    if (event.kind === "repair_finished") add(event.ts, "repair", event.component);
  }
  return [...marks.values()];
}

function vibrationClass(robotId) {
  return factory.robots.get(robotId)?.vibration_class ?? factory.births.get(robotId)?.vibration_class ?? null;
}

function buildCharts(current) {
  const windowS = WINDOWS_S[windowName];
  for (const button of dom.windows.children) {
    button.setAttribute("aria-pressed", String(button.dataset.window === windowName));
  }
  const sampleS = factory.births.get(current.id)?.sample_interval_s ?? DEFAULT_SAMPLE_S;
  current.every = bucketFor(windowS, sampleS, TARGET_POINTS);
  const gapS = Math.max(3 * (current.every ?? sampleS), 1800);
  current.buffer = new SeriesBuffer(METRIC_NAMES, windowS, current.every, gapS);
  const xRange = () => {
    const now = factory.clock;
    if (now === null) return [0, 1];
    // Room on the right for what is coming: the nearest predicted failure or planned job end,
    // within half a window; a later one is named at the chart's edge instead.
    const ahead = futureMarks(current.id).filter((ts) => ts > now).map((ts) => (ts - now) * 1.08);
    const future = Math.min(Math.max(windowS * FUTURE_FRACTION, ...ahead.filter((s) => s <= windowS * MAX_FUTURE_FRACTION)), windowS * MAX_FUTURE_FRACTION);
    return [now - windowS, now + future];
  };
  for (const metric of METRIC_NAMES) {
    const info = METRICS[metric];
    const host = el("div", { class: "chart", "data-metric": metric });
    dom.charts.append(host);
    const vibration = metric === "vibration_rms_mm_s";
    const isoClass = vibration ? vibrationClass(current.id) : null;
    const zones = isoClass ? ISO_ZONES_MM_S[isoClass] : null;
    const classText = isoClass
      ? ` — ISO 10816 class ${isoClass} zones (from its birth)`
      : " — zones once the robot's birth names its ISO class";
    current.charts[metric] = timeChart(host, {
      title: `${info.label} (${info.unit})${vibration ? classText : ""}`,
      series: [{ label: info.label, unit: info.unit, digits: info.digits }],
      yRange: zones ? zoneRange(zones) : undefined,
      xRange,
      overlay: () => ({
        now: factory.clock,
        zones,
        orders: ordersOverlay(current.id),
        failures: componentOverlay(current.id, metric),
        happened: breakdowns(current.id),
      }),
    });
  }
  current.xRange = xRange;
  current.isoClass = vibrationClass(current.id);
  current.windowS = windowS;
}

async function loadHistory(current) {
  const known = factory.robots.get(current.id);
  const until = known?.lastSeen ?? factory.clock;
  if (until === null || until === undefined) {
    // Opened before the robot list arrived (a bookmarked #/robot/ID): retried on the next
    // floor update; live readings wait in `pending` meanwhile.
    setText(dom.note, "No reading from this robot yet: the charts fill as readings arrive.");
    current.waiting = true;
    return;
  }
  current.waiting = false;
  setText(dom.note, "Loading history…");
  const since = Math.max(0, until - current.windowS);
  try {
    const series = await getJson(`/api/robots/${encodeURIComponent(current.id)}/telemetry`, {
      since,
      until,
      every: current.every,
    });
    if (view !== current) return; // navigated away meanwhile
    current.buffer.load(series.points);
    const bucket = current.every ? ` (averaged per ${current.every / 60} min)` : "";
    setText(dom.note, series.points.length ? `History: ${series.points.length} points${bucket}, then live.` : "No readings in this window yet (robots only measure while RUNNING).");
  } catch (error) {
    if (view !== current) return;
    setText(dom.note, `History not available: ${error.message}. Showing live readings only.`);
  }
  flushPending(current, until);
}

function flushPending(current, untilTs) {
  for (const reading of current.pending) if (reading.ts > untilTs) current.buffer.addReading(reading);
  current.pending = null;
  invalidate("robot-charts");
}

function onReadings(robotId, readings) {
  if (!view || robotId !== view.id || !view.buffer) return;
  if (view.pending) {
    view.pending.push(...readings);
    if (view.pending.length > 5000) view.pending.splice(0, view.pending.length - 5000);
    return;
  }
  for (const reading of readings) view.buffer.addReading(reading);
  invalidate("robot-charts");
}

function renderCharts() {
  if (!view || view.pending) return;
  const wait = CHART_MIN_INTERVAL_MS - (performance.now() - lastDraw);
  if (wait > 0) {
    // Readings come many times a second: redraw at most four times a second.
    throttle ??= setTimeout(() => {
      throttle = null;
      invalidate("robot-charts");
    }, wait);
    return;
  }
  lastDraw = performance.now();
  if (factory.clock !== null) view.buffer.trim(factory.clock);
  METRIC_NAMES.forEach((metric, i) => view.charts[metric].setData(view.buffer.toChartData(i)));
  dom.charts.dataset.points = String(view.buffer.length);
}

function renderHeader() {
  if (!view) return;
  const known = factory.robots.get(view.id);
  setText(dom.title, view.id);
  const state = known?.state ?? "UNKNOWN";
  dom.state.className = `swatch state-${state}`;
  setText(dom.state, state);
  const zone = robotZone(view.id);
  dom.zone.className = zone ? `zone zone-${zone}` : "zone zone-unknown";
  setText(dom.zone, zone ? `zone ${zone}: ${ZONES[zone]}` : "zone not known yet");
  dom.zone.title = zone ? ZONES[zone] : "";
  setText(dom.meta, [known?.kind, known?.line].filter(Boolean).join(" · "));
  const seen = known?.latest ? `newest reading ${simTime(known.latest.ts)}` : "no reading yet";
  dom.meta.title = `${known?.model ?? ""} · ${known?.area ?? ""} · ${seen}`;
}
