"""The threads that open connections for the network loop.

paho's ``reconnect()`` blocks: a DNS lookup, a TCP connect, a TLS handshake (each bounded by the
client's ``connect_timeout``). On the loop thread, a broker that drops SYNs would stall every
robot of the process for that long, once per robot. So :data:`CONNECT_WORKERS` threads make the
connects and hand each outcome back to the loop (``on_done``, which must only queue); the loop
never waits on the network. However many robots wait to connect, these are the only threads
besides the loop.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from simulator.devices.net_link import Link

#: Connects made in parallel, whatever the number of robots.
CONNECT_WORKERS = 4
#: paho's TCP connect and TLS handshake timeout, per attempt.
CONNECT_TIMEOUT_S = 5.0


class Connectors:
    """``on_done(link, None)`` after a connect that opened a socket (paho queued the CONNECT),
    ``on_done(link, reason)`` after one that failed below MQTT."""

    def __init__(self, name: str, on_done: Callable[[Link, str | None], None]) -> None:
        self._on_done = on_done
        self._queue: queue.SimpleQueue[Link | None] = queue.SimpleQueue()
        self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-connect-{i}", daemon=True)
            for i in range(CONNECT_WORKERS)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, link: Link) -> None:
        self._queue.put(link)

    def stop(self) -> None:
        """Skip connects not begun; wait for those under way (at most
        :data:`CONNECT_TIMEOUT_S` and a second): their outcome is handed over as usual."""
        self._stopping = True
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + CONNECT_TIMEOUT_S + 1.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while (link := self._queue.get()) is not None:
            if self._stopping:
                continue  # the loop finishes every link as it stops
            try:
                link.client.reconnect()
            except (OSError, ValueError) as exc:  # refused, unreachable, timeout, TLS failure
                self._on_done(link, getattr(exc, "strerror", None) or str(exc) or repr(exc))
            else:
                self._on_done(link, None)
