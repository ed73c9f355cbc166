// The factory floor: every robot as a tile, grouped by area and line, coloured by state, with
// its health zone and newest reading; beside it the active alarms, the next work and recent events.

import {
  ACTIVE_ORDER_STATUSES,
  METRICS,
  METRIC_NAMES,
  STATES,
  ZONES,
  el,
  metricValue,
  setText,
  shortTime,
  simTime,
} from "./format.js";
import { features } from "./api.js";
import { onRender } from "./frame.js";
import { kpiPanel } from "./kpis.js";
import { activeAlarms, factory, robotZone } from "./state.js";

const SIDE_ALARMS = 6;
const SIDE_ORDERS = 6;
const SIDE_EVENTS = 8;

const tiles = new Map();
let grid;
let alarmList;
let orderList;
let eventList;

function legend() {
  return el(
    "div",
    { class: "legend", "aria-label": "Legend" },
    el("span", { class: "legend-title" }, "State:"),
    Object.entries(STATES).map(([name, meaning]) =>
      el("span", { class: `swatch state-${name}`, title: meaning }, name),
    ),
    el(
      "span",
      { class: "legend-title", title: "ISO 10816-1 zones for vibration; the same levels for the other signals" },
      "Health zone:",
    ),
    Object.entries(ZONES).map(([zone, meaning]) =>
      el("span", { class: `zone zone-${zone}`, title: meaning }, `${zone} ${meaning}`),
    ),
  );
}

export function mountFloor(section) {
  grid = el("div", { class: "floor-grid", "data-testid": "floor" });
  alarmList = el("ul", { class: "side-list", "data-testid": "floor-alarms" });
  orderList = el("ul", { class: "side-list", "data-testid": "floor-orders" });
  eventList = el("ul", { class: "side-list" });
  section.append(
    legend(),
    el(
      "div",
      { class: "floor" },
      grid,
      el(
        "aside",
        { class: "floor-side" },
        kpiPanel(),
        el("h2", {}, "Active alarms"),
        alarmList,
        el("h2", {}, "Next work orders"),
        orderList,
        el("h2", {}, "Recent events"),
        eventList,
      ),
    ),
  );
  onRender("floor-layout", layout);
  onRender("floor", () => {
    for (const [id, tile] of tiles) updateTile(id, tile);
    renderSide();
  });
  onRender("alarms", renderSide);
  onRender("work-orders", renderSide);
  onRender("events", renderEvents);
}

function makeTile(id) {
  const parts = {
    root: el("a", { class: "tile", href: `#/robot/${id}`, "data-robot": id }),
    state: el("span", { class: "tile-state" }),
    zone: el("span", { class: "zone" }),
    alarms: el("span", { class: "tile-alarms" }),
    seen: el("span", { class: "tile-seen" }),
    values: {},
  };
  const values = el("dl", { class: "tile-values" });
  for (const metric of METRIC_NAMES) {
    parts.values[metric] = el("dd", { "data-metric": metric });
    values.append(el("div", {}, el("dt", {}, METRICS[metric].short), parts.values[metric]));
  }
  parts.root.append(
    el("div", { class: "tile-head" }, el("span", { class: "tile-id" }, id), parts.zone),
    el("div", { class: "tile-sub" }, parts.state, parts.seen),
    values,
    parts.alarms,
  );
  return parts;
}

function updateTile(id, tile) {
  const known = factory.robots.get(id);
  const state = known.state ?? "UNKNOWN";
  const wanted = `tile state-${state}`;
  if (tile.root.className !== wanted) tile.root.className = wanted;
  setText(tile.state, state);
  tile.root.title = `${id}: ${state}${known.stateReason ? ` (${known.stateReason})` : ""}`;
  const zone = robotZone(id);
  tile.zone.className = zone ? `zone zone-${zone}` : "zone zone-unknown";
  setText(tile.zone, zone ? `zone ${zone}` : "zone –");
  tile.zone.title = zone ? ZONES[zone] : "health not known yet";
  const values = known.latest?.values ?? {};
  for (const metric of METRIC_NAMES) setText(tile.values[metric], metricValue(metric, values[metric]));
  const alarms = activeAlarms(id);
  setText(tile.alarms, alarms.length ? `⚠ ${alarms.length} alarm${alarms.length > 1 ? "s" : ""}` : "");
  setText(tile.seen, known.latest ? simTime(known.latest.ts).slice(15) : "no reading yet");
}

function layout() {
  const byArea = new Map();
  const ids = [...factory.robots.keys()].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  for (const id of ids) {
    const known = factory.robots.get(id);
    const area = known.area || "unknown area";
    const line = known.line || "unknown line";
    if (!byArea.has(area)) byArea.set(area, new Map());
    const lines = byArea.get(area);
    if (!lines.has(line)) lines.set(line, []);
    lines.get(line).push(id);
    if (!tiles.has(id)) tiles.set(id, makeTile(id));
  }
  const areas = [...byArea.keys()].sort();
  const blocks = areas.map((area) =>
    el(
      "section",
      { class: "area", "aria-label": `Area ${area}` },
      el("h2", { class: "area-name" }, area),
      [...byArea.get(area).keys()].sort().map((line) =>
        el(
          "div",
          { class: "line", "data-line": line },
          el("h3", { class: "line-name" }, line),
          el("div", { class: "tiles" }, byArea.get(area).get(line).map((id) => tiles.get(id).root)),
        ),
      ),
    ),
  );
  if (!blocks.length) blocks.push(el("p", { class: "note" }, "No robot has published yet."));
  grid.replaceChildren(...blocks);
  for (const [id, tile] of tiles) updateTile(id, tile);
}

function renderSide() {
  const alarms = activeAlarms()
    .sort((a, b) => (a.severity === b.severity ? b.raised_ts - a.raised_ts : a.severity === "critical" ? -1 : 1))
    .slice(0, SIDE_ALARMS);
  alarmList.replaceChildren(
    ...(alarms.length
      ? alarms.map((a) =>
          el(
            "li",
            { class: `sev-${a.severity}`, title: a.message },
            el("span", { class: "sev" }, a.severity.toUpperCase()),
            " ",
            el("a", { href: `#/robot/${a.robot}` }, a.robot),
            // The engine's messages explain at length; the side panel keeps the first clause.
            ` ${a.message.split(" (")[0]}`,
          ),
        )
      : [el("li", { class: "note" }, noteFor("alarms", "none"))]),
  );
  const orders = [...factory.workOrders.values()]
    .filter((o) => ACTIVE_ORDER_STATUSES.has(o.status))
    .sort((a, b) => a.start_ts - b.start_ts)
    .slice(0, SIDE_ORDERS);
  orderList.replaceChildren(
    ...(orders.length
      ? orders.map((o) =>
          el(
            "li",
            {},
            el("span", { class: `status status-${o.status}` }, o.status.replace("_", " ")),
            " ",
            el("a", { href: `#/robot/${o.robot}` }, o.robot),
            ` ${o.component} · ${shortTime(o.start_ts)}`,
          ),
        )
      : [el("li", { class: "note" }, noteFor("workOrders", "none planned"))]),
  );
}

/** An empty list says why: nothing yet, or the service does not offer it (yet). */
function noteFor(feature, emptyText) {
  return features.has(feature) ? emptyText : "not available on this service yet";
}

function renderEvents() {
  const events = factory.events.toArray().slice(-SIDE_EVENTS).reverse();
  eventList.replaceChildren(
    ...(events.length
      ? events.map((e) =>
          el(
            "li",
            {},
            el("time", {}, shortTime(e.ts)),
            " ",
            el("a", { href: `#/robot/${e.robot}` }, e.robot),
            ` ${e.kind.replaceAll("_", " ")}${e.component ? ` ${e.component}` : ""}` +
              `${e.fault ? ` (${e.fault})` : ""}${e.status ? `: ${e.status}` : ""}` +
              `${e.status === "rejected" && e.reason ? ` (${e.reason})` : ""}`,
          ),
        )
      : [el("li", { class: "note" }, "none yet")]),
  );
}
