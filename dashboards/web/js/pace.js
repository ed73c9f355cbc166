// The pace in the top bar: pause or resume the whole factory and change its speed live
// (POST /api/clock, with the API key from the Controls view). The service publishes the pace
// retained on factory/{site}/pace and the robots follow it; while paused nothing new arrives,
// so the simulated clock beside these controls stands still too.

import { explainWriteError, getJson, postJson } from "./api.js";
import { el, setText } from "./format.js";

export const SPEEDS = [1, 10, 60, 600, 3600, 36000];
const POLL_MS = 5000;
const dom = {};
let current = null; // GET /api/clock, or null before the first answer

export function mountPace(container) {
  dom.toggle = el("button", { type: "button", "data-testid": "pace-toggle", "aria-label": "Pause the factory", onclick: toggle }, "Pause");
  dom.speed = el(
    "select",
    { "aria-label": "Speed", "data-testid": "pace-speed", onchange: () => send({ factor: Number(dom.speed.value) }) },
    el("option", { value: "" }, "speed?"),
    SPEEDS.map((f) => el("option", { value: String(f) }, `${f}×`)),
  );
  dom.status = el("span", { class: "pace-status", role: "status", "data-testid": "pace-status" });
  dom.box = el("div", { class: "pace", hidden: true }, dom.toggle, dom.speed, dom.status);
  container.append(dom.box);
  refresh();
  setInterval(() => document.hidden || refresh(), POLL_MS);
}

async function refresh() {
  try {
    show(await getJson("/api/clock"));
  } catch {
    // An older service without /api/clock, or one restarting: keep the controls as they are.
  }
}

function show(clock) {
  current = clock;
  dom.box.hidden = false;
  dom.toggle.textContent = clock.paused ? "Resume" : "Pause";
  // Named apart from the inspector's own Pause (which only freezes its list).
  dom.toggle.setAttribute("aria-label", clock.paused ? "Resume the factory" : "Pause the factory");
  if (clock.factor !== null) {
    const value = String(clock.factor);
    if (![...dom.speed.options].some((o) => o.value === value)) {
      dom.speed.append(el("option", { value }, `${clock.factor}×`));
    }
    dom.speed.value = value;
  }
  dom.status.className = "pace-status";
  dom.status.setAttribute("role", "status");
  dom.status.title = "";
  setText(dom.status, clock.paused ? "paused" : "");
}

function toggle() {
  const paused = !(current?.paused ?? false);
  if (current?.factor != null) return send({ paused });
  // Until the service has heard a pace it needs the factor too: the one selected.
  if (!dom.speed.value) return refused("Choose a speed first: the service does not know the pace yet.");
  send({ paused, factor: Number(dom.speed.value) });
}

async function send(body) {
  if (body.factor === 0) return; // the "speed?" placeholder
  const answer = await postJson("/api/clock", body);
  if (answer.ok) return show(answer.data);
  refused(explainWriteError(answer.status, answer.detail));
  dom.speed.value = current?.factor == null ? "" : String(current.factor);
}

function refused(text) {
  dom.status.className = "pace-status error";
  dom.status.setAttribute("role", "alert");
  dom.status.title = text; // the top bar has room for the start of it; hover for the rest
  setText(dom.status, text);
}
