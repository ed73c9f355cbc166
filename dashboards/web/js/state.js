// What the page knows about the factory: robots, the simulated clock, alarms, work orders,
// health. Filled from snapshots (REST) and kept current by stream events; every collection is
// bounded so an hour-long workshop never grows the page's memory.

import { ACTIVE_ORDER_STATUSES, worseZone } from "./format.js";
import { Ring, boundMap, invalidate } from "./frame.js";

const MAX_ALARMS = 300;
const MAX_WORK_ORDERS = 300;
const MAX_EVENTS = 100;
const RATE_WINDOW_MS = 10000;

export const factory = {
  clock: null,
  rate: null, // simulated seconds per wall second, measured
  robots: new Map(),
  births: new Map(),
  health: new Map(),
  alarms: new Map(),
  workOrders: new Map(),
  events: new Ring(MAX_EVENTS),
  readingListeners: new Set(),
  eventListeners: new Set(), // (robotId, payload) for every robot event, parts counts included
};
const clockSamples = [];

function robot(id, where = {}) {
  let known = factory.robots.get(id);
  if (!known) {
    known = { id, kind: null, model: null, site: "", area: "", line: "", state: null, latest: null };
    factory.robots.set(id, known);
    invalidate("floor-layout");
  }
  for (const level of ["site", "area", "line"]) {
    if (where[level] && known[level] !== where[level]) {
      known[level] = where[level];
      invalidate("floor-layout");
    }
  }
  return known;
}

export function advanceClock(ts) {
  if (typeof ts !== "number" || (factory.clock !== null && ts <= factory.clock)) return;
  factory.clock = ts;
  const now = performance.now();
  clockSamples.push([now, ts]);
  while (clockSamples.length > 2 && now - clockSamples[0][0] > RATE_WINDOW_MS) clockSamples.shift();
  const [wall0, sim0] = clockSamples[0];
  if (now - wall0 > 1000) factory.rate = (ts - sim0) / ((now - wall0) / 1000);
  invalidate("clock");
}

// Snapshots are merged, never swapped in: a stream event that arrived while a snapshot was on
// its way is newer than the snapshot, and must not be undone by it.

/** Fold a /api/robots snapshot into what we know. */
export function loadRobots(list) {
  for (const item of list) {
    const known = robot(item.id, item);
    Object.assign(known, {
      kind: item.kind ?? known.kind,
      model: item.model ?? known.model,
      // From the robot's birth, as the service keeps it: the vibration chart's zones.
      vibration_class: item.vibration_class ?? known.vibration_class ?? null,
    });
    if (item.state && (known.stateSince === undefined || item.state_since >= known.stateSince)) {
      Object.assign(known, {
        state: item.state,
        stateSince: item.state_since,
        stateReason: item.state_reason,
      });
    }
    if (item.latest && (!known.latest || item.latest.ts > known.latest.ts)) known.latest = item.latest;
    known.lastSeen = Math.max(known.lastSeen ?? 0, item.last_seen ?? 0) || null;
    advanceClock(item.last_seen);
  }
  invalidate("floor");
}

const alarmAge = (a) => (a.cleared_ts === null ? a.raised_ts : Infinity); // cleared is final

export function loadAlarms(list) {
  for (const alarm of list) {
    const known = factory.alarms.get(alarm.id);
    if (!known || alarmAge(alarm) >= alarmAge(known)) factory.alarms.set(alarm.id, alarm);
  }
  boundMap(factory.alarms, MAX_ALARMS, (a) => a.cleared_ts !== null);
  invalidate("alarms", "floor", "health");
}

export function loadWorkOrders(list) {
  for (const order of list) {
    const known = factory.workOrders.get(order.id);
    if (!known || order.updated_ts >= known.updated_ts) factory.workOrders.set(order.id, order);
  }
  boundMap(factory.workOrders, MAX_WORK_ORDERS, (o) => !ACTIVE_ORDER_STATUSES.has(o.status));
  invalidate("work-orders", "floor", "health");
}

export function setHealth(robotId, health) {
  factory.health.set(robotId, health);
  invalidate("floor", "health");
}

/** The worst zone over a robot's components, or null when unknown. */
export function robotZone(robotId) {
  let zone = null;
  for (const component of factory.health.get(robotId)?.components ?? []) {
    zone = worseZone(zone, component.zone);
  }
  return zone;
}

export function activeAlarms(robotId = null) {
  return [...factory.alarms.values()].filter(
    (a) => a.cleared_ts === null && (robotId === null || a.robot === robotId),
  );
}

/** Fold one stream event into the state. Alarm and work-order events carry the object itself. */
export function applyEvent(name, data) {
  if (name === "alarm") {
    const known = factory.alarms.get(data.id);
    if (known && alarmAge(data) < alarmAge(known)) return; // a snapshot already had newer
    factory.alarms.delete(data.id); // re-insert: Map order is "least recently changed first"
    factory.alarms.set(data.id, data);
    boundMap(factory.alarms, MAX_ALARMS, (a) => a.cleared_ts !== null);
    invalidate("alarms", "floor", "health");
    return;
  }
  if (name === "work_order") {
    const known = factory.workOrders.get(data.id);
    if (known && data.updated_ts < known.updated_ts) return;
    factory.workOrders.delete(data.id);
    factory.workOrders.set(data.id, data);
    boundMap(factory.workOrders, MAX_WORK_ORDERS, (o) => !ACTIVE_ORDER_STATUSES.has(o.status));
    invalidate("work-orders", "floor", "health");
    return;
  }
  const payload = data.payload;
  if (!payload || !data.robot) return;
  const known = robot(data.robot, data);
  advanceClock(payload.ts);
  known.lastSeen = Math.max(known.lastSeen ?? 0, payload.ts);
  if (name === "telemetry") {
    const readings = payload.readings ?? [];
    const newest = readings.reduce((a, b) => (b.ts >= (a?.ts ?? -Infinity) ? b : a), null);
    if (newest && (!known.latest || newest.ts >= known.latest.ts)) {
      const { ts, ...values } = newest;
      known.latest = { ts, values };
    }
    for (const listener of factory.readingListeners) listener(data.robot, readings);
    invalidate("floor");
  } else if (name === "state") {
    Object.assign(known, {
      state: payload.state,
      stateSince: payload.since,
      stateReason: payload.reason ?? null,
    });
    invalidate("floor", "robot-header");
  } else if (name === "birth") {
    factory.births.set(data.robot, payload);
    Object.assign(known, { kind: payload.kind, model: payload.model });
    if (payload.vibration_class) known.vibration_class = payload.vibration_class;
    invalidate("floor", "robot-header");
  } else if (name === "event") {
    for (const listener of factory.eventListeners) listener(data.robot, payload);
    if (payload.kind === "parts") return; // every few minutes per robot: they would flood the list
    factory.events.push({ robot: data.robot, ...payload });
    invalidate("events");
  }
}
