// The participant page (/join): an MQTT client in the browser over the broker's WebSocket
// listener, with the vendored MQTT.js (MQTT 5, so the broker can say *why* it refuses). Log in,
// subscribe with wildcards, publish under your own namespace (workshop/<login>/…), and see what
// the broker refuses, as it refuses it.

import mqtt from "../vendor/mqtt/mqtt.esm.js";

const $ = (selector) => document.querySelector(selector);
const MAX_LINES = 300;
let client = null;
let login = "";

function line(text, kind = "info") {
  const item = document.createElement("li");
  item.className = `join-line ${kind}`;
  item.dataset.kind = kind;
  item.textContent = `${new Date().toISOString().slice(11, 19)} UTC  ${text}`;
  const log = $("#log");
  log.prepend(item);
  while (log.children.length > MAX_LINES) log.lastChild.remove();
}

function status(text, ok) {
  const node = $("#status");
  node.textContent = text;
  node.className = ok ? "result ok" : "result error";
}

async function defaults() {
  const form = $("#login");
  try {
    const config = await (await fetch("/dashboard/config.json")).json();
    const url = config.broker_ws_url ? new URL(config.broker_ws_url) : null;
    if (url) url.hostname = location.hostname; // the address this page was reached at
    form.url.value = url ? url.toString().replace(/\/$/, "") : "";
  } catch {
    form.url.value = "";
  }
  if (!form.url.value) status("This service does not know the broker's WebSocket address; type it (ws://HOST:PORT, or wss:// on a TLS broker).", false);
}

function connect(event) {
  event.preventDefault();
  const form = $("#login");
  client?.end(true);
  login = form.username.value.trim();
  $("#publish").topic.value ||= `workshop/${login || "me"}/hello`;
  status("connecting…", true);
  client = mqtt.connect(form.url.value, {
    protocolVersion: 5,
    username: login || undefined,
    password: form.password.value || undefined,
    clientId: `join-${login || "guest"}-${Math.random().toString(16).slice(2, 8)}`,
    reconnectPeriod: 0,
    connectTimeout: 8000,
    timerVariant: "native", // no worker from a blob: the page's CSP allows its own scripts only
  });
  client.on("connect", () => {
    status(`connected${login ? ` as ${login}` : " read-only (no login)"}`, true);
    line(`connected to ${form.url.value}${login ? ` as ${login}` : ""}`, "ok");
  });
  client.on("error", (error) => {
    status(`refused: ${error.message}`, false);
    line(`connection refused: ${error.message}`, "refused");
  });
  client.on("close", () => line("disconnected", "info"));
  client.on("message", (topic, payload, packet) => {
    const flags = `QoS ${packet.qos}${packet.retain ? ", retained" : ""}`;
    line(`${topic} (${flags}) ${payload.toString().slice(0, 200)}`, "message");
  });
}

function subscribe(event) {
  event.preventDefault();
  const filter = $("#subscribe").filter.value.trim();
  if (!client?.connected) return line("connect first", "refused");
  client.subscribe(filter, { qos: 1 }, (error, granted) => {
    const code = granted?.[0]?.qos;
    if (error || code === undefined || code >= 128) {
      line(`subscribe ${filter} refused${code >= 128 ? ` (reason ${code})` : error ? `: ${error.message}` : ""}`, "refused");
    } else {
      line(`subscribed to ${filter} (QoS ${code})`, "ok");
    }
  });
}

function publish(event) {
  event.preventDefault();
  const form = $("#publish");
  const topic = form.topic.value.trim();
  if (!client?.connected) return line("connect first", "refused");
  client.publish(topic, form.message.value, { qos: 1, retain: form.retain.checked }, (error, packet) => {
    const code = packet?.reasonCode ?? 0;
    if (error || code >= 128) {
      const why = error?.message ?? `reason ${code}`;
      line(`publish to ${topic} refused: ${why}`, "refused");
    } else {
      line(`published to ${topic}`, "ok");
    }
  });
}

$("#login").addEventListener("submit", connect);
$("#subscribe").addEventListener("submit", subscribe);
$("#publish").addEventListener("submit", publish);
defaults();
