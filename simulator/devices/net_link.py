"""One paho client on the shared :class:`~simulator.devices.net_loop.NetworkLoop`: its connection
state, its reconnect back-off, and the requests other threads make of it.

Every public method may be called from any thread: it hands the work to the loop thread, which
alone changes the state, the selector and the socket. The state, as the loop sees it::

    NEW ─start─▶ CONNECTING ─socket─▶ OPEN ─lost/dropped─▶ WAITING ─due─▶ CONNECTING …
                      │ failed ─────────────────────────────▶ WAITING
                 WAITING ─due, held─▶ HELD ─release─▶ CONNECTING
    any ─close (and, if open, DISCONNECT written)─▶ CLOSED
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from enum import Enum
from functools import partial
from typing import Any, Protocol

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

#: Reads allowed to drain what a cut socket still held before paho sees its end.
CUT_READS = 64
#: Reconnect back-off after a failed or lost connection: doubling from the first to the second.
RECONNECT_MIN_S, RECONNECT_MAX_S = 1.0, 30.0


class LinkState(Enum):
    NEW = "new"
    WAITING = "waiting"
    HELD = "held"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"


class Driver(Protocol):
    """What a link asks of its loop (:class:`~simulator.devices.net_loop.NetworkLoop`)."""

    def call(self, fn: Callable[[], None]) -> None: ...

    def connect_now(self, link: Link) -> None: ...

    def schedule(self, link: Link, delay_s: float) -> None: ...


class Link:
    """One client's connection, driven by a ``NetworkLoop`` (``NetworkLoop.link`` makes it);
    see the module docstring."""

    def __init__(self, loop: Driver, client: mqtt.Client, name: str) -> None:
        self._loop = loop
        self.client = client
        self.name = name
        self.state = LinkState.NEW
        #: The socket registered with the selector, and for which events.
        self.sock: Any = None
        self.events = 0
        #: Monotonic times: of the next connect attempt, and before which none may be made.
        self.due = 0.0
        self.away_until = 0.0
        self.backoff_s: float | None = None
        #: A CONNACK accepted the current connection (the back-off then starts over).
        self.established = False
        self.held = False
        self.closing = False
        #: Why the last connect attempt failed below MQTT (refused, timed out, TLS); None after
        #: one that opened a socket.
        self.last_error: str | None = None
        self._closed = threading.Event()

    # --- any thread ----------------------------------------------------------------------

    def start(self) -> None:
        """Connect (retrying with back-off until the broker answers)."""
        self._loop.call(self._start)

    def hold(self) -> None:
        """Make no connect attempt until :meth:`release` (one under way goes ahead)."""
        self.held = True

    def release(self) -> None:
        """End :meth:`hold`: a robot waiting at the gate connects now."""
        self.held = False
        self._loop.call(self._release)

    def drop(self, away_s: float) -> None:
        """End the connection without DISCONNECT (the broker fires the will) and make no
        connect attempt for ``away_s`` (at least the back-off's first step)."""
        self._loop.call(partial(self._drop, away_s))

    def close(self) -> None:
        """Disconnect cleanly (DISCONNECT, so no will) and never reconnect."""
        self.closing = True
        self._loop.call(self._close)

    def wait_closed(self, timeout_s: float) -> bool:
        """Wait (bounded) until the connection is closed for good; True if it is."""
        return self._closed.wait(max(0.0, timeout_s))

    # --- the loop thread -----------------------------------------------------------------

    def _start(self) -> None:
        if self.state is LinkState.NEW:
            self._loop.connect_now(self)

    def _release(self) -> None:
        if self.state is LinkState.HELD:
            self._loop.connect_now(self)

    def _drop(self, away_s: float) -> None:
        now = time.monotonic()
        self.away_until = now + away_s
        if self.state is LinkState.OPEN:
            self.cut()
        elif self.state is LinkState.WAITING:
            self._loop.schedule(self, max(0.0, self.due - now))

    def _close(self) -> None:
        if self.state in (LinkState.NEW, LinkState.WAITING, LinkState.HELD):
            self.finish()
        elif self.state is LinkState.OPEN:
            self.client.disconnect()  # paho closes the socket once DISCONNECT is written
        # CONNECTING: finished when the attempt returns (NetworkLoop._connected).

    def cut(self) -> None:
        """End the connection now without DISCONNECT (loop thread): shut the socket down, and
        paho's read sees the end and closes it, with its usual callbacks."""
        sock = self.client.socket()
        if not isinstance(sock, socket.socket):  # None: closed already (TLS sockets are one)
            return
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        for _ in range(CUT_READS):
            if self.client.socket() is not sock:
                return
            try:
                self.client.loop_read()
            except Exception:
                log.exception("%s: error while closing", self.name)

    def finish(self) -> None:
        self.state = LinkState.CLOSED
        self._closed.set()

    def next_backoff_s(self) -> float:
        """The wait before the next attempt: the first step again after an accepted
        connection, else twice the last one (up to :data:`RECONNECT_MAX_S`)."""
        if self.established or self.backoff_s is None:
            self.backoff_s = RECONNECT_MIN_S
        else:
            self.backoff_s = min(2 * self.backoff_s, RECONNECT_MAX_S)
        self.established = False
        return self.backoff_s
