// The protocol inspector, under the message inspector: what the broker saw — connections with
// their clean-session flag and will, sessions resumed (with the messages that waited for them),
// every PUBLISH with sender, QoS, retain, DUP and size, and how each connection ended: a clean
// DISCONNECT (no will) or a lost connection (the broker published the will). From the service's
// ?channel=mqtt stream, which follows Mosquitto's packet log (docs/dashboard.md).

import { features, getJson, streamUrl } from "./api.js";
import { el, setText, wallTime } from "./format.js";
import { Ring, invalidate, onRender } from "./frame.js";
import { LiveStream } from "./stream.js";
import { topicMatches } from "./topics.js";

const KEEP = 1000;
const SHOW = 200;
const buffer = new Ring(KEEP);
const dom = {};
let stream = null;

const FLAGS = {
  all: () => true,
  connections: (e) => e.kind !== "publish",
  retained: (e) => e.retain === true,
  dup: (e) => e.dup === true,
  queued: (e) => e.queued === true,
  qos0: (e) => e.kind === "publish" && e.qos === 0,
  qos1: (e) => e.kind === "publish" && e.qos >= 1,
};

export function mountProtocol(section) {
  dom.client = el("input", { type: "search", placeholder: "client id, e.g. robot-weld-01", "aria-label": "Broker view: client", oninput: () => invalidate("protocol") });
  dom.topic = el("input", { type: "text", placeholder: "workshop/#", "aria-label": "Broker view: topic", spellcheck: "false", oninput: () => invalidate("protocol") });
  dom.flag = el(
    "select",
    { "aria-label": "Broker view: only", onchange: () => invalidate("protocol") },
    Object.keys(FLAGS).map((f) => el("option", { value: f }, f)),
  );
  dom.note = el("p", { class: "note" });
  dom.rows = el("tbody", { "data-testid": "protocol-rows" });
  section.append(
    el("div", { class: "toolbar" }, el("h2", {}, "Broker: connections and packets"), el("label", {}, "Client ", dom.client), el("label", {}, "Topic ", dom.topic), el("label", {}, "Only ", dom.flag)),
    dom.note,
    el("table", { class: "raw protocol" }, el("thead", {}, el("tr", {}, ["Time (UTC)", "Client", "What", "Topic", "Flags", "Size"].map((h) => el("th", { scope: "col" }, h)))), dom.rows),
  );
  onRender("protocol", render);
}

const UNAVAILABLE = "The broker's view needs Mosquitto's packet log, which this service does not follow (factory up --workshop turns it on).";

export async function openProtocol() {
  let logged = features.has("mqtt");
  if (logged) logged = (await getJson("/dashboard/config.json").catch(() => ({}))).protocol_log === true;
  if (!logged) {
    setText(dom.note, UNAVAILABLE);
    return;
  }
  setText(dom.note, "From Mosquitto's log: who connected, sessions, wills, and every packet's flags.");
  stream ??= new LiveStream(() => streamUrl({ channel: "mqtt" }), ["mqtt"], {
    onEvent: (name, data) => {
      buffer.push(data);
      invalidate("protocol");
    },
    onStatus: () => {},
  });
  stream.start();
}

export function closeProtocol() {
  stream?.stop();
}

function what(e) {
  switch (e.kind) {
    case "connect":
      return `connect (${e.clean_session ? "clean session" : "persistent session"}${e.user ? `, user ${e.user}` : ""})`;
    case "will":
      return `will registered (QoS ${e.qos}${e.retain ? ", retained" : ""})`;
    case "connack":
      return e.session_present ? "session resumed (session present)" : "new session";
    case "publish":
      return e.direction === "in" ? "PUBLISH → broker" : e.queued ? "PUBLISH → client (queued while away)" : "PUBLISH → client";
    case "disconnect":
      return "clean disconnect: no will";
    case "lost":
      return e.will_topic ? `connection lost (${e.reason}): will fired` : `connection lost (${e.reason})`;
    case "denied":
      return `denied: ${e.detail}`;
    default:
      return e.kind;
  }
}

function flags(e) {
  if (e.kind !== "publish") return "";
  return [`QoS ${e.qos}`, e.retain ? "retained" : null, e.dup ? "DUP" : null].filter(Boolean).join(" · ");
}

function row(e) {
  const topic = e.topic ?? e.will_topic ?? "";
  return el(
    "tr",
    { class: `kind-${e.kind}`, "data-kind": e.kind },
    el("td", {}, wallTime(e.ts)),
    el("td", {}, e.client ?? ""),
    el("td", {}, what(e)),
    el("td", { class: "topic" }, topic),
    el("td", {}, flags(e)),
    el("td", {}, e.size === undefined ? "" : `${e.size} B`),
  );
}

function render() {
  const client = dom.client.value.trim();
  const filter = dom.topic.value.trim();
  const flag = FLAGS[dom.flag.value] ?? FLAGS.all;
  const shown = [];
  const items = buffer.toArray();
  for (let i = items.length - 1; i >= 0 && shown.length < SHOW; i--) {
    const e = items[i];
    if (client && !(e.client ?? "").includes(client)) continue;
    if (filter && !topicMatches(filter, e.topic ?? e.will_topic ?? "")) continue;
    if (!flag(e)) continue;
    shown.push(row(e));
  }
  dom.rows.replaceChildren(...shown);
}
