// Batched rendering: events mark parts of the page dirty; one animation frame redraws them.
//
// A stream can bring a hundred events a second; touching the DOM for each would make the page
// sluggish on a workshop laptop. Handlers only update plain data and call invalidate(topic); the
// views registered for that topic run once in the next frame (not at all while the tab is hidden).

const renderers = new Map();
const dirty = new Set();
let scheduled = false;

export function onRender(topic, render) {
  if (!renderers.has(topic)) renderers.set(topic, []);
  renderers.get(topic).push(render);
}

export function invalidate(...topics) {
  for (const topic of topics) dirty.add(topic);
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(flush);
  }
}

function flush() {
  scheduled = false;
  const topics = [...dirty];
  dirty.clear();
  for (const topic of topics) {
    for (const render of renderers.get(topic) ?? []) {
      try {
        render();
      } catch (error) {
        // One broken view must not stop the others; the message names it for a bug report.
        console.warn(`dashboard: rendering ${topic} failed:`, error);
      }
    }
  }
}

/** A bounded FIFO: keeps the newest `capacity` items; `dropped` counts what fell off. */
export class Ring {
  constructor(capacity) {
    this.capacity = capacity;
    this.items = [];
    this.dropped = 0;
  }

  push(item) {
    this.items.push(item);
    // Trim in chunks: splicing one item per push would copy the array every time.
    const slack = Math.max(1, Math.floor(this.capacity / 10));
    if (this.items.length > this.capacity + slack) {
      const extra = this.items.length - this.capacity;
      this.items.splice(0, extra);
      this.dropped += extra;
    }
  }

  /** The newest `capacity` items, oldest first. */
  toArray() {
    const extra = this.items.length - this.capacity;
    return extra > 0 ? this.items.slice(extra) : this.items;
  }

  get length() {
    return Math.min(this.items.length, this.capacity);
  }

  clear() {
    this.items = [];
    this.dropped = 0;
  }
}

/** Keep at most `max` entries of a Map, evicting the ones `evictable` allows, oldest first. */
export function boundMap(map, max, evictable = () => true) {
  if (map.size <= max) return;
  for (const [key, value] of map) {
    if (map.size <= max) break;
    if (evictable(value)) map.delete(key);
  }
  for (const key of map.keys()) {
    if (map.size <= max) break;
    map.delete(key); // still too many: the oldest go whatever they are
  }
}
