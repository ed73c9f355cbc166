// Polls /api/robots/{id}/health: often for the robot on screen, round-robin for the floor's
// zones, and soon after an alarm or a work order touched a robot. One request at a time, so a
// large scenario costs the service one small query per tick, never a burst.

import { getJson } from "./api.js";
import { factory, setHealth } from "./state.js";

const TICK_MS = 500;
const FOCUS_EVERY_MS = 2000;

export class HealthPoller {
  constructor(features) {
    this.features = features;
    this.focus = null; // robot id on screen, if any
    this.urgent = new Set();
    this.cursor = 0;
    this.lastFocus = 0;
    this.busy = false;
    this.timer = null;
    this.floorVisible = true;
    this.listeners = [];
    this.missing = new Set(); // robots the engine does not follow (404): not asked again soon
  }

  start() {
    if (!this.timer) this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  /** Called with (robotId, health) after every successful fetch. */
  onHealth(listener) {
    this.listeners.push(listener);
  }

  setFocus(robotId) {
    this.focus = robotId;
    this.lastFocus = 0;
    if (robotId) this.poke(robotId);
  }

  /** Fetch this robot's health at the next tick. */
  poke(robotId) {
    this.urgent.add(robotId);
    if (!this.busy) queueMicrotask(() => this.tick());
  }

  next() {
    for (const id of this.urgent) {
      this.urgent.delete(id);
      return id;
    }
    const now = performance.now();
    if (this.focus && now - this.lastFocus >= FOCUS_EVERY_MS) {
      this.lastFocus = now;
      return this.focus;
    }
    if (!this.floorVisible || factory.robots.size === 0) return null;
    const ids = [...factory.robots.keys()].filter((id) => !this.missing.has(id));
    if (ids.length === 0) return null;
    const unknown = ids.find((id) => !factory.health.has(id));
    if (unknown) return unknown; // fill the floor's zones first, then go round
    this.cursor = (this.cursor + 1) % ids.length;
    return ids[this.cursor];
  }

  async tick() {
    if (this.busy || document.hidden || !this.features.has("health")) return;
    const robotId = this.next();
    if (!robotId) return;
    this.busy = true;
    try {
      const health = await getJson(`/api/robots/${encodeURIComponent(robotId)}/health`);
      setHealth(robotId, health);
      for (const listener of this.listeners) listener(robotId, health);
    } catch (error) {
      // 404: a robot outside the engine's scenario; otherwise the service is restarting.
      if (error.status === 404) this.missing.add(robotId);
    } finally {
      this.busy = false;
    }
  }
}
