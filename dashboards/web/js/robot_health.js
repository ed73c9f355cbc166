// The robot page's maintenance side: health index per component with its zone, remaining useful
// life and predicted failure time (with the interval), the planned work, the robot's alarms and
// work orders, and a chart of the health indices since the page was opened.

import { features } from "./api.js";
import {
  ACTIVE_ORDER_STATUSES,
  METRICS,
  ZONES,
  el,
  hours,
  metricValue,
  percent,
  shortTime,
  simTime,
} from "./format.js";
import { invalidate, onRender } from "./frame.js";
import { timeChart } from "./charts.js";
import { SeriesBuffer } from "./series.js";
import { factory } from "./state.js";

const LIST_MAX = 8;
const dom = {};
let current = null; // {id, xRange, windowS, chart, buffer, names}

export function mountHealth(host) {
  dom.table = el("div", { class: "health", "data-testid": "health" });
  dom.hiChart = el("div", { class: "chart", "data-testid": "health-chart" });
  dom.orders = el("ul", { class: "side-list", "data-testid": "robot-orders" });
  dom.alarms = el("ul", { class: "side-list", "data-testid": "robot-alarms" });
  host.append(
    el("h3", {}, "Health and prognosis"),
    dom.table,
    dom.hiChart,
    el("h3", {}, "Work orders"),
    dom.orders,
    el("h3", {}, "Alarms"),
    dom.alarms,
  );
  onRender("health-chart", renderChart);
}

export function openHealth(robotId, xRange, windowS) {
  closeHealth();
  current = { id: robotId, xRange, windowS, chart: null, buffer: null, names: null, lastTs: null };
  renderHealth(robotId);
}

export function closeHealth() {
  current?.chart?.destroy();
  dom.hiChart.replaceChildren();
  current = null;
}

/** A health document arrived (from the poller): add it to the health-index chart. */
export function recordHealth(robotId, health) {
  if (!current || current.id !== robotId || health.ts === null || health.ts === current.lastTs) return;
  const names = health.components.map((c) => c.name);
  if (!current.buffer || names.join() !== current.names.join()) {
    current.chart?.destroy();
    dom.hiChart.replaceChildren();
    current.names = names;
    current.buffer = new SeriesBuffer(names, current.windowS, null, Infinity);
    const robotId_ = current.id;
    current.chart = timeChart(dom.hiChart, {
      title: "Health index (1 = as new), sampled since this page opened",
      series: names.map((name) => ({ label: name, unit: "", digits: 2 })),
      yRange: () => [0, 1.05],
      xRange: current.xRange,
      height: 150,
      overlay: () => ({
        now: factory.clock,
        orders: ordersOverlay(robotId_),
        failures: componentOverlay(robotId_, null),
      }),
    });
  }
  current.lastTs = health.ts;
  const values = Object.fromEntries(health.components.map((c) => [c.name, c.health_index]));
  current.buffer.add(health.ts, values, 1, false);
  invalidate("health-chart");
}

function renderChart() {
  if (!current?.chart) return;
  if (factory.clock !== null) current.buffer.trim(factory.clock);
  current.chart.setData(current.buffer.toChartData());
}

function robotOrders(robotId) {
  return [...factory.workOrders.values()].filter((o) => o.robot === robotId);
}

/** Planned work of a robot as chart spans. */
export function ordersOverlay(robotId) {
  return robotOrders(robotId)
    .filter((o) => ACTIVE_ORDER_STATUSES.has(o.status) || o.status === "done")
    .map((o) => ({
      start: o.start_ts,
      end: o.start_ts + o.duration_s,
      label: `${o.component}: ${o.status.replace("_", " ")}`,
    }));
}

/** Predicted failures of the components whose indicator is `metric` (all when null). */
export function componentOverlay(robotId, metric) {
  const components = factory.health.get(robotId)?.components ?? [];
  return components
    .filter((c) => c.predicted_failure_ts !== null && c.predicted_failure_ts !== undefined)
    .filter((c) => metric === null || c.indicator === metric)
    .map((c) => ({
      ts: c.predicted_failure_ts,
      low: c.predicted_failure_low_ts ?? null,
      high: c.predicted_failure_high_ts ?? null,
      label: `${c.name} failure predicted`,
    }));
}

function zoneCell(c) {
  if (c.failed) return el("span", { class: "zone zone-D" }, "FAILED");
  if (!c.zone) return "—";
  // Vibration uses ISO zones A–D; other signals the same four levels, named normal…danger.
  const name = c.zone_name && c.zone_name !== c.zone ? ` ${c.zone_name}` : "";
  return el("span", { class: `zone zone-${c.zone}`, title: ZONES[c.zone] }, `${c.zone}${name}`);
}

function rulText(c) {
  if (c.rul_h === null || c.rul_h === undefined) return "no trend yet";
  const interval =
    c.rul_low_h !== null && c.rul_high_h !== null && c.rul_low_h !== undefined
      ? ` (${hours(c.rul_low_h)} – ${hours(c.rul_high_h)})`
      : "";
  return `${hours(c.rul_h)}${interval}`;
}

function failureText(c) {
  if (c.predicted_failure_ts === null || c.predicted_failure_ts === undefined) return "—";
  const low = c.predicted_failure_low_ts;
  const high = c.predicted_failure_high_ts;
  const interval = low && high ? ` (${shortTime(low)} – ${shortTime(high)})` : "";
  return `${shortTime(c.predicted_failure_ts)}${interval}`;
}

function plannedFor(robotId, component) {
  const next = robotOrders(robotId)
    .filter((o) => o.component === component && ACTIVE_ORDER_STATUSES.has(o.status))
    .sort((a, b) => a.start_ts - b.start_ts)[0];
  return next ? `${next.status.replace("_", " ")} ${shortTime(next.start_ts)}` : "—";
}

function healthTable(robotId) {
  const health = factory.health.get(robotId);
  if (!features.has("health")) return el("p", { class: "note" }, "Health and prognosis are not available on this service yet.");
  if (!health) return el("p", { class: "note" }, "Loading health…");
  const head = ["Component", "Indicator", "Health", "Zone", "RUL, operating time (interval)", "Predicted failure", "Planned work"];
  const rows = health.components.map((c) =>
    el(
      "tr",
      { "data-component": c.name },
      el("th", { scope: "row" }, c.name, el("small", {}, ` ${c.kind}`)),
      el("td", {}, `${METRICS[c.indicator]?.short ?? c.indicator} ${metricValue(c.indicator, c.value)}`),
      el(
        "td",
        {},
        el("meter", { min: "0", max: "1", low: "0.3", high: "0.6", optimum: "1", value: String(c.health_index ?? 0) }),
        ` ${percent(c.health_index)}`,
      ),
      el("td", {}, zoneCell(c)),
      el("td", {}, rulText(c)),
      el("td", {}, failureText(c)),
      el("td", {}, plannedFor(robotId, c.name)),
    ),
  );
  return el(
    "table",
    {},
    el("caption", {}, `Policy: ${health.policy ?? "?"} · as of ${simTime(health.ts)}`),
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows),
  );
}

const activeFirst = (alarm) => (alarm.cleared_ts === null ? 0 : 1);

export function renderHealth(robotId) {
  dom.table.replaceChildren(healthTable(robotId));
  const orders = robotOrders(robotId)
    .sort((a, b) => b.updated_ts - a.updated_ts)
    .slice(0, LIST_MAX);
  dom.orders.replaceChildren(
    ...(orders.length
      ? orders.map((o) =>
          el(
            "li",
            { "data-order": o.id },
            el("span", { class: `status status-${o.status}` }, o.status.replace("_", " ")),
            ` ${o.component} · ${o.source} · start ${shortTime(o.start_ts)} · ${o.reason}`,
          ),
        )
      : [el("li", { class: "note" }, features.has("workOrders") ? "none" : "not available on this service yet")]),
  );
  const alarms = [...factory.alarms.values()]
    .filter((a) => a.robot === robotId)
    .sort((a, b) => activeFirst(a) - activeFirst(b) || b.raised_ts - a.raised_ts)
    .slice(0, LIST_MAX);
  dom.alarms.replaceChildren(
    ...(alarms.length
      ? alarms.map((a) =>
          el(
            "li",
            { class: `sev-${a.severity}${a.cleared_ts === null ? "" : " cleared"}`, "data-alarm": a.id },
            el("span", { class: "sev" }, a.cleared_ts === null ? a.severity.toUpperCase() : "cleared"),
            ` ${a.component ?? ""} ${a.message} · ${shortTime(a.raised_ts)}`,
          ),
        )
      : [el("li", { class: "note" }, features.has("alarms") ? "none" : "not available on this service yet")]),
  );
}
