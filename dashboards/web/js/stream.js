// One Server-Sent Events connection that comes back by itself.
//
// The browser's EventSource retries a dropped connection on its own, but gives up for good when
// an answer is not an event stream (the service restarting behind a proxy, a 503). Then we retry
// with a growing delay. While the page is hidden the connection is closed (a projector laptop
// that sleeps should not make the service buffer for it) and reopened when it is shown again.

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

export class LiveStream {
  /**
   * @param {() => string} urlOf  the URL to open (asked again on every reconnect)
   * @param {string[]} events     SSE event names to listen to
   * @param {{onEvent: Function, onOpen?: Function, onStatus?: Function}} handlers
   */
  constructor(urlOf, events, handlers) {
    this.urlOf = urlOf;
    this.events = events;
    this.handlers = handlers;
    this.source = null;
    this.retryMs = RETRY_MIN_MS;
    this.retryTimer = null;
    this.wanted = false;
    this.onVisibility = () => {
      if (document.hidden) this.disconnect("paused while the page is hidden");
      else if (this.wanted) this.connect();
    };
  }

  start() {
    if (this.wanted) return;
    this.wanted = true;
    document.addEventListener("visibilitychange", this.onVisibility);
    if (!document.hidden) this.connect();
  }

  stop() {
    this.wanted = false;
    document.removeEventListener("visibilitychange", this.onVisibility);
    this.disconnect("stopped");
  }

  /** Reopen now (e.g. the URL's filters changed). */
  restart() {
    if (!this.wanted) return;
    this.disconnect("reconnecting");
    if (!document.hidden) this.connect();
  }

  status(text, live = false) {
    this.handlers.onStatus?.(text, live);
  }

  connect() {
    if (this.source) return;
    clearTimeout(this.retryTimer);
    const source = new EventSource(this.urlOf());
    this.source = source;
    this.status("connecting…");
    source.onopen = () => {
      this.retryMs = RETRY_MIN_MS;
      this.status("live", true);
      this.handlers.onOpen?.();
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) {
        this.source = null;
        const delay = this.retryMs;
        this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
        this.status(`disconnected: retrying in ${Math.round(delay / 1000)} s`);
        this.retryTimer = setTimeout(() => {
          if (this.wanted && !document.hidden) this.connect();
        }, delay);
      } else {
        this.status("reconnecting…");
      }
    };
    for (const name of this.events) {
      source.addEventListener(name, (message) => {
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          return; // not ours to show; the service only sends JSON
        }
        this.handlers.onEvent(name, data);
      });
    }
  }

  disconnect(why) {
    clearTimeout(this.retryTimer);
    if (this.source) {
      this.source.close();
      this.source = null;
    }
    this.status(why);
  }
}
