// The dashboard's entry point: hash routing between the views, the live stream, snapshots from
// the REST endpoints (at start and after every reconnect) and discovery of optional endpoints.

import { features, getJson, streamUrl } from "./api.js";
import { mountControls, openControls } from "./controls.js";
import { mountFloor } from "./floor.js";
import { setText, simTime } from "./format.js";
import { invalidate, onRender } from "./frame.js";
import { HealthPoller } from "./health.js";
import { mountPace } from "./pace.js";
import { closeProtocol, mountProtocol, openProtocol } from "./protocol.js";
import { closeInspector, mountInspector, openInspector } from "./inspector.js";
import { refreshKpis, startKpis } from "./kpis.js";
import { mountMaintenance } from "./maintenance.js";
import { closeRobot, mountRobot, openRobot } from "./robot.js";
import { recordHealth } from "./robot_health.js";
import { applyEvent, factory, loadAlarms, loadRobots, loadWorkOrders } from "./state.js";
import { LiveStream } from "./stream.js";

const FEATURE_POLL_MS = 10000; // until every optional endpoint is there
const SNAPSHOT_EVERY_MS = 60000; // safety net under the stream
const LIVE_EVENTS = ["telemetry", "state", "event", "birth", "alarm", "work_order"];

const poller = new HealthPoller(features);
const views = {};
let currentView = null;

function section(name) {
  return document.querySelector(`[data-view="${name}"]`);
}

async function loadSnapshots() {
  const banner = document.getElementById("banner");
  try {
    loadRobots(await getJson("/api/robots"));
    banner.hidden = true;
  } catch (error) {
    setText(banner, `The service is not answering (${error.message}); retrying.`);
    banner.hidden = false;
    return;
  }
  if (features.has("alarms")) loadAlarms(await getJson("/api/alarms").catch(() => []));
  if (features.has("workOrders")) loadWorkOrders(await getJson("/api/work-orders").catch(() => []));
}

function onEvent(name, data) {
  applyEvent(name, data);
  if (name === "alarm" || name === "work_order") poller.poke(data.robot);
}

function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  const name = views[parts[0]] ? parts[0] : "floor";
  for (const view of Object.keys(views)) section(view).hidden = view !== name;
  for (const link of document.querySelectorAll("nav a")) {
    const target = link.getAttribute("href").replace(/^#\/?/, "") || "floor";
    if (target === name || (name === "robot" && target === "floor")) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (currentView !== name) views[currentView]?.close?.();
  currentView = name;
  views[name].open?.(parts.slice(1).map(decodeURIComponent), new URLSearchParams(query));
  document.title = `Smart factory — ${name === "robot" ? parts[1] : name}`;
}

function renderClock() {
  setText(document.getElementById("sim-clock"), `${simTime(factory.clock)} UTC`);
  const rate = factory.rate;
  setText(document.getElementById("sim-rate"), rate && rate > 1 ? `≈ ${Math.round(rate)}× real time` : "");
}

function start() {
  mountFloor(section("floor"));
  mountRobot(section("robot"));
  mountMaintenance(section("maintenance"));
  mountInspector(section("inspector"));
  mountProtocol(section("inspector"));
  mountControls(section("controls"), poller);
  mountPace(document.getElementById("pace"));
  Object.assign(views, {
    floor: {
      open: () => {
        poller.floorVisible = true;
        poller.setFocus(null);
      },
      close: () => (poller.floorVisible = false),
    },
    robot: {
      open: ([id]) => {
        poller.setFocus(id);
        openRobot(id);
      },
      close: () => {
        poller.setFocus(null);
        closeRobot();
      },
    },
    maintenance: { open: () => invalidate("work-orders", "alarms") },
    inspector: {
      open: () => {
        openInspector();
        openProtocol();
      },
      close: () => {
        closeInspector();
        closeProtocol();
      },
    },
    controls: { open: (parts, params) => openControls(params) },
  });
  onRender("clock", renderClock);
  poller.onHealth(recordHealth);

  const connection = document.getElementById("connection");
  const live = new LiveStream(() => streamUrl(), LIVE_EVENTS, {
    onEvent,
    onOpen: loadSnapshots,
    onStatus: (text, isLive) => {
      setText(connection, isLive ? "● live" : text);
      connection.className = isLive ? "connection live" : "connection";
    },
  });

  features.onChange(() => {
    invalidate("features", "floor", "alarms", "work-orders", "health");
    loadSnapshots();
    refreshKpis();
    if (currentView === "inspector") {
      openInspector();
      openProtocol();
    }
  });
  const refreshFeatures = async () => {
    await features.refresh();
    if (!features.complete) setTimeout(refreshFeatures, FEATURE_POLL_MS);
  };

  window.addEventListener("hashchange", route);
  route();
  refreshFeatures().then(() => {
    live.start();
    poller.start();
    startKpis();
  });
  setInterval(() => document.hidden || loadSnapshots(), SNAPSHOT_EVERY_MS);
  renderClock();
}

start();
