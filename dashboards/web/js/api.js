// HTTP access to the service: JSON reads, keyed writes, and which optional endpoints exist.
//
// Which endpoints exist is read from /openapi.json, never by probing: a probe that gets a 404 or a
// 422 puts an error in the browser console, and a projected console full of red is not a demo.

const KEY_STORAGE = "factory.apiKey";
export const API_KEY_HEADER = "X-API-Key";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE) ?? "";
}

export function setApiKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  window.dispatchEvent(new Event(KEY_CHANGED)); // open streams reconnect with (or without) it
}

export const KEY_CHANGED = "factory:api-key";

function url(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) query.append(name, String(one));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

async function detailOf(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) {
      return body.detail.map((d) => `${(d.loc ?? []).slice(1).join(".")}: ${d.msg}`).join("; ");
    }
    return JSON.stringify(body);
  } catch {
    return response.statusText;
  }
}

function readHeaders() {
  // Sent on reads too, so a service with require_key_for_reads works once a key is entered.
  const key = apiKey();
  return key ? { [API_KEY_HEADER]: key } : {};
}

/** GET a JSON document; ApiError with the service's message on a non-2xx answer. */
export async function getJson(path, params = {}) {
  const response = await fetch(url(path, params), { headers: readHeaders() });
  if (!response.ok) throw new ApiError(response.status, await detailOf(response));
  return response.json();
}

/** POST JSON with the API key; resolves to {ok, status, data|detail} (never throws on HTTP). */
export async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...readHeaders() },
    body: JSON.stringify(body),
  });
  if (response.ok) return { ok: true, status: response.status, data: await response.json() };
  return { ok: false, status: response.status, detail: await detailOf(response) };
}

// Where the key is, as the service says (/dashboard/config.json); generic until it has said.
let keyWhere = "STATE_DIR/api-key";

export function setKeyWhere(where) {
  keyWhere = where;
}

/** One line saying what a failed write means and what to do next. */
export function explainWriteError(status, detail) {
  if (status === 401) return `401 — no API key: enter the key (${keyWhere}) in Controls. ${detail}`;
  if (status === 403) return `403 — key refused: check the key in ${keyWhere}. ${detail}`;
  if (status === 404) return `404 — not found: ${detail}`;
  if (status === 422) return `422 — the service refused the form: ${detail}`;
  if (status === 409) return `409 — not now: ${detail}`;
  if (status === 503) return `503 — the service could not send it: ${detail}`;
  return `${status} — ${detail}`;
}

export function streamUrl(params = {}) {
  return url("/api/stream", params);
}

// Optional features and the OpenAPI paths (or stream channels) that reveal them.
const FEATURE_PATHS = {
  health: ["get", /^\/api\/robots\/\{[^}]+\}\/health$/],
  alarms: ["get", /^\/api\/alarms$/],
  workOrders: ["get", /^\/api\/work-orders$/],
  manualOrders: ["post", /^\/api\/work-orders$/],
  cancelOrders: ["post", /^\/api\/work-orders\/\{[^}]+\}\/cancel$/],
  faults: ["post", /^\/api\/robots\/\{[^}]+\}\/faults$/],
  kpis: ["get", /^\/api\/kpis$/],
};
const STREAM_FEATURES = { raw: "raw", mqtt: "mqtt", alarmStream: "alarm", workOrderStream: "work_order" };

/** What the running service offers, refreshed until everything optional is there. */
export class Features {
  constructor() {
    this.available = new Set();
    this.listeners = [];
  }

  has(name) {
    return this.available.has(name);
  }

  get complete() {
    const wanted = Object.keys(FEATURE_PATHS).length + Object.keys(STREAM_FEATURES).length;
    return this.available.size >= wanted;
  }

  onChange(listener) {
    this.listeners.push(listener);
  }

  async refresh() {
    let schema;
    try {
      schema = await getJson("/openapi.json");
    } catch {
      return; // the service is restarting: keep what we knew
    }
    const found = new Set();
    for (const [name, [method, pattern]] of Object.entries(FEATURE_PATHS)) {
      for (const [path, operations] of Object.entries(schema.paths ?? {})) {
        if (pattern.test(path) && operations[method]) found.add(name);
      }
    }
    const streamParams = JSON.stringify(schema.paths?.["/api/stream"]?.get?.parameters ?? []);
    for (const [name, channel] of Object.entries(STREAM_FEATURES)) {
      if (streamParams.includes(`"${channel}"`)) found.add(name);
    }
    const changed =
      found.size !== this.available.size || [...found].some((n) => !this.available.has(n));
    this.available = found;
    if (changed) for (const listener of this.listeners) listener(this);
  }
}

/** The page's one view of what the service offers (refreshed by main.js). */
export const features = new Features();
