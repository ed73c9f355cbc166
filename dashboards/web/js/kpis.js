// The plant KPIs panel on the floor: availability, OEE, MTBF and MTTR per line and for the plant
// since the first stored message, from GET /api/kpis (the same code as the offline experiment's
// KPIs), refreshed every few seconds while the page is visible.

import { features, getJson } from "./api.js";
import { el, hours, setText } from "./format.js";

const REFRESH_MS = 5000;
const COLUMNS = ["", "Avail.", "OEE", "MTBF", "MTTR"];

let table = null;
let note = null;
let timer = null;

function share(fraction) {
  return fraction === null || fraction === undefined ? "—" : `${(fraction * 100).toFixed(1)} %`;
}

/** The panel's element (empty until the first answer). */
export function kpiPanel() {
  table = el(
    "table",
    { class: "kpi-table", "data-testid": "kpis" },
    el("thead", {}, el("tr", {}, ...COLUMNS.map((name) => el("th", { scope: "col" }, name)))),
    el("tbody"),
  );
  note = el("p", { class: "kpi-note" });
  return el("div", { class: "kpi-panel" }, el("h2", {}, "KPIs since start"), table, note);
}

function row(name, k) {
  return el(
    "tr",
    { "data-kpi": name },
    el("th", { scope: "row" }, name),
    el("td", { "data-field": "availability" }, share(k.availability)),
    el("td", { "data-field": "oee" }, share(k.oee)),
    el("td", { "data-field": "mtbf" }, hours(k.mtbf_h)),
    el("td", { "data-field": "mttr" }, hours(k.mttr_h)),
  );
}

/** Fetch the KPIs and redraw the panel (quietly keeps the last answer on an error). */
export async function refreshKpis() {
  if (!table || !features.has("kpis")) return;
  let report;
  try {
    report = await getJson("/api/kpis");
  } catch {
    return;
  }
  const rows = report.lines.map((line) => row(line.line, line));
  table.tBodies[0].replaceChildren(...rows, row("plant", report.plant));
  const span = (report.until - report.since) / 3600;
  setText(note, `${hours(span)} of simulated time; ${report.plant.failures} failure(s)`);
}

/** Start the periodic refresh (once). */
export function startKpis() {
  if (timer !== null) return;
  refreshKpis();
  timer = setInterval(() => document.hidden || refreshKpis(), REFRESH_MS);
}
