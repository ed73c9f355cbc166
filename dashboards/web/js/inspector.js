// The message inspector (#/inspector): raw MQTT traffic as the service received it — topic, QoS,
// retained flag, payload and, for a refused message, why. For teaching: filter with MQTT
// wildcards, pause to talk about one message, clear. It opens its own stream (?channel=raw, heavy)
// only while it is on screen, and keeps only the newest messages. Ground truth (truth topics) is
// private: the service sends it only to a stream opened with the API key (entered under Controls).

import { KEY_CHANGED, apiKey, features, streamUrl } from "./api.js";
import { el, setText, wallTime } from "./format.js";
import { Ring, invalidate, onRender } from "./frame.js";
import { LiveStream } from "./stream.js";
import { filterProblem, topicMatches } from "./topics.js";

const KEEP = 500;
const SHOW = 150;
const PAYLOAD_PREVIEW = 140;
const RENDER_MIN_INTERVAL_MS = 250;

const buffer = new Ring(KEEP);
const dom = {};
let stream = null;
let paused = false;
let missed = 0;
let received = 0;
let filter = "";
let lastDraw = 0;
let throttle = null;

export function mountInspector(section) {
  dom.filter = el("input", {
    type: "text",
    value: "",
    placeholder: "factory/+/+/+/weld-01/#",
    "aria-label": "Topic filter (MQTT wildcards + and #)",
    spellcheck: "false",
    oninput: onFilter,
  });
  dom.filterProblem = el("span", { class: "error", role: "alert" });
  dom.pause = el("button", { type: "button", "aria-pressed": "false", onclick: togglePause }, "Pause");
  dom.clear = el("button", { type: "button", onclick: clear }, "Clear");
  dom.counts = el("span", { class: "counts", role: "status" });
  dom.note = el("p", { class: "note" });
  dom.rows = el("tbody", { "data-testid": "raw-rows" });
  section.append(
    el(
      "div",
      { class: "toolbar" },
      el("h2", {}, "Message inspector"),
      el("label", {}, "Topic filter ", dom.filter),
      dom.pause,
      dom.clear,
      dom.counts,
    ),
    dom.filterProblem,
    dom.note,
    el(
      "table",
      { class: "raw" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ["Received", "Topic", "QoS", "Retained", "Payload", "Refused because"].map((h) =>
            el("th", { scope: "col" }, h),
          ),
        ),
      ),
      dom.rows,
    ),
  );
  onRender("inspector", render);
}

/** Show the inspector: open the raw stream if the service has it. */
export function openInspector() {
  if (!features.has("raw")) {
    setText(dom.note, "Raw MQTT traffic is not available on this service yet (the stream has no raw channel).");
    return;
  }
  showKeyNote();
  if (!stream) {
    window.addEventListener(KEY_CHANGED, () => {
      showKeyNote();
      stream?.restart();
    });
  }
  // EventSource cannot send headers: the key goes as ?api_key= (kept out of the service's
  // access log), on this stream only, so a mistyped key cannot stop the other live views.
  const url = () => streamUrl({ channel: "raw", api_key: apiKey() || null });
  stream ??= new LiveStream(url, ["raw"], {
    onEvent: (name, data) => onRaw(data),
    onStatus: (text, live) => {
      dom.counts.dataset.stream = live ? "live" : text;
      invalidate("inspector");
    },
  });
  stream.start();
  invalidate("inspector");
}

function showKeyNote() {
  const hidden = "Ground truth (truth topics) is hidden: enter the API key under Controls to see it.";
  setText(dom.note, apiKey() ? "" : hidden);
}

export function closeInspector() {
  stream?.stop();
}

function onRaw(data) {
  const message = typeof data.topic === "string" ? data : data.payload;
  if (!message || typeof message.topic !== "string") return;
  received++;
  buffer.push(message);
  if (paused) missed++;
  invalidate("inspector"); // while paused only the counts change
}

function onFilter() {
  const text = dom.filter.value.trim();
  const problem = filterProblem(text);
  setText(dom.filterProblem, problem ?? "");
  dom.filter.setAttribute("aria-invalid", String(problem !== null));
  if (problem === null) {
    filter = text;
    lastDraw = 0;
    invalidate("inspector");
  }
}

function togglePause() {
  paused = !paused;
  dom.pause.setAttribute("aria-pressed", String(paused));
  setText(dom.pause, paused ? "Resume" : "Pause");
  if (!paused) missed = 0;
  invalidate("inspector");
}

function clear() {
  buffer.clear();
  received = 0;
  missed = 0;
  dom.rows.replaceChildren();
  invalidate("inspector");
}

function row(message) {
  let payload = String(message.payload ?? "");
  if (message.truncated) payload += ` … (${message.size} bytes, cut at 2 KiB)`;
  const preview = payload.length > PAYLOAD_PREVIEW ? `${payload.slice(0, PAYLOAD_PREVIEW)}…` : payload;
  const cell =
    payload.length > PAYLOAD_PREVIEW
      ? el("details", {}, el("summary", {}, preview), el("pre", {}, payload))
      : el("code", {}, payload);
  return el(
    "tr",
    { class: message.rejected ? "rejected" : null },
    el("td", {}, message.received_at ? wallTime(message.received_at) : "—"),
    el("td", { class: "topic" }, message.topic),
    el("td", {}, String(message.qos ?? "—")),
    el("td", {}, message.retain ? "retained" : "—"),
    el("td", { class: "payload" }, cell),
    el("td", {}, message.rejected ?? ""),
  );
}

function render() {
  const wait = RENDER_MIN_INTERVAL_MS - (performance.now() - lastDraw);
  if (wait > 0) {
    throttle ??= setTimeout(() => {
      throttle = null;
      invalidate("inspector");
    }, wait);
    return;
  }
  lastDraw = performance.now();
  const status = dom.counts.dataset.stream ?? "";
  const pausedText = paused ? ` · paused (${missed} new)` : "";
  setText(dom.counts, `${received} received · keeping the last ${KEEP}${pausedText} · ${status}`);
  if (paused) return;
  const shown = [];
  const items = buffer.toArray();
  for (let i = items.length - 1; i >= 0 && shown.length < SHOW; i--) {
    if (topicMatches(filter, items[i].topic)) shown.push(row(items[i]));
  }
  dom.rows.replaceChildren(...shown);
}
