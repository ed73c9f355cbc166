// Names, units and formatting shared by every view. Times are simulated Unix seconds shown in UTC
// (the scenario's calendar is UTC), so a workshop in any time zone reads the same shift times.

export const METRICS = {
  vibration_rms_mm_s: { label: "Vibration RMS", short: "vib", unit: "mm/s", digits: 2 },
  temperature_c: { label: "Temperature", short: "temp", unit: "°C", digits: 1 },
  motor_current_a: { label: "Motor current", short: "current", unit: "A", digits: 2 },
  cycle_time_s: { label: "Cycle time", short: "cycle", unit: "s", digits: 1 },
};
export const METRIC_NAMES = Object.keys(METRICS);

export const STATES = {
  RUNNING: "producing parts",
  IDLE: "outside a shift or on a break",
  MAINTENANCE: "planned work in progress",
  BROKEN: "failed: waiting for or under repair",
  OFFLINE: "connection lost (last will) or stopped",
};

// ISO 10816-1 zone boundaries A/B, B/C, C/D in mm/s RMS per machine class (docs/maintenance.md).
export const ISO_ZONES_MM_S = {
  I: [0.71, 1.8, 4.5],
  II: [1.12, 2.8, 7.1],
  III: [1.8, 4.5, 11.2],
  IV: [2.8, 7.1, 18.0],
};
export const ZONES = {
  A: "as new",
  B: "fine for long-term running",
  C: "limited time: plan maintenance",
  D: "damage likely",
};
const ZONE_ORDER = ["A", "B", "C", "D"];

export const FAULT_KINDS = {
  accelerated_wear: "component wears m× faster",
  sensor_drift: "sensor drifts +m units per hour",
  spike: "5 % of samples spike",
  stuck: "sensor repeats one value",
  dropout: "sensor goes silent",
  overheat: "temperature +15 °C × m",
  network_drop: "robot drops off the network (last will)",
};

export const WORK_ORDER_COLUMNS = [
  ["planned", "Planned"],
  ["dispatched", "Dispatched"],
  ["acknowledged", "Acknowledged"],
  ["in_progress", "In progress"],
  ["done", "Done"],
  ["closed", "Cancelled / expired / rejected"],
];
export const ACTIVE_ORDER_STATUSES = new Set([
  "planned",
  "dispatched",
  "acknowledged",
  "in_progress",
]);

/** The worse of two zone letters (null counts as unknown, never worse). */
export function worseZone(a, b) {
  if (!a) return b ?? null;
  if (!b) return a;
  return ZONE_ORDER.indexOf(a) >= ZONE_ORDER.indexOf(b) ? a : b;
}

const pad = (n) => String(n).padStart(2, "0");
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/** "Mon 2026-01-05 14:05" (UTC) or "—". */
export function simTime(ts) {
  if (ts === null || ts === undefined) return "—";
  const d = new Date(ts * 1000);
  return (
    `${DAYS[d.getUTCDay()]} ${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-` +
    `${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
  );
}

/** "Mon 05 14:05" (UTC): a time within a few weeks of now, where the month is obvious. */
export function shortTime(ts) {
  if (ts === null || ts === undefined) return "—";
  const long = simTime(ts);
  return `${long.slice(0, 3)} ${long.slice(12, 14)} ${long.slice(15)}`;
}

/** "14:05:09.123" wall-clock time in UTC (like every time on the page), for receive times. */
export function wallTime(seconds) {
  const d = new Date(seconds * 1000);
  const ms = String(d.getUTCMilliseconds()).padStart(3, "0");
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${ms}`;
}

/** A value of a metric with its unit, e.g. "0.52 mm/s". */
export function metricValue(metric, value) {
  if (value === null || value === undefined) return "—";
  const info = METRICS[metric];
  return info ? `${value.toFixed(info.digits)} ${info.unit}` : String(value);
}

/** Hours as "5.2 h", or days as "3.1 d" past two days. */
export function hours(h) {
  if (h === null || h === undefined) return "—";
  return h >= 48 ? `${(h / 24).toFixed(1)} d` : `${h.toFixed(1)} h`;
}

export function percent(fraction) {
  return fraction === null || fraction === undefined ? "—" : `${Math.round(fraction * 100)} %`;
}

/** An element with a class, attributes and children (strings become text, never HTML). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Replace a node's children only when the text differs (keeps DOM writes cheap). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
