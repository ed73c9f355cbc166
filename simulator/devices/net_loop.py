"""One network thread per process for every robot's paho client.

With paho's ``loop_start`` each client had a thread ``select()``ing on its socket and a wake-up
socket pair: 1,000 robots were 1,000 threads and 3,000 descriptors, and ``select()`` cannot
watch a descriptor numbered 1,024 or more, so only ~340 ever connected (docs/performance.md).
Here one thread drives them all through paho's external-loop API: each open socket is registered
with one ``selectors.DefaultSelector`` (epoll: no descriptor ceiling), paho's ``on_socket_close``
and ``on_socket_register_write`` tell the loop when to forget one or write, and the loop calls
``loop_read``/``loop_write`` on ready sockets and ``loop_misc`` on all every
:data:`MISC_EVERY_S` (keepalive, and the end of a connection whose broker went silent). A robot
costs one descriptor (:mod:`.descriptors`).

What paho's own loop did is done here per client (:mod:`.net_link`): reconnect with back-off
(1 s doubling to 30 s), a gate that keeps a robot away until released (paho's
``on_pre_connect`` would block the shared thread), a drop (no DISCONNECT, away for a while), a
clean close. Connects block, so a few connector threads make them (:mod:`.connectors`): the loop
thread never waits on the network, and a slow or unreachable broker delays only connects.
Threads: the loop plus :data:`~.connectors.CONNECT_WORKERS`, whatever the number of robots.

Selectors are not thread-safe: every change to the selector is made on the loop thread; other
threads (the simulation publishing, a test holding a robot back) hand requests over through a
queue and wake the loop through a socket pair. Whether a client has bytes to write is read from
``want_write()`` after each write, not from the order of paho's register/unregister callbacks,
which can come from two threads at once.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt

from simulator.devices.connectors import CONNECT_TIMEOUT_S, Connectors
from simulator.devices.descriptors import ensure_descriptors
from simulator.devices.net_link import Link, LinkState

log = logging.getLogger(__name__)

#: How often every client's keepalive is looked after.
MISC_EVERY_S = 1.0
#: How long :meth:`NetworkLoop.stop` waits for its threads (a connect in progress included).
STOP_TIMEOUT_S = CONNECT_TIMEOUT_S + 2.0
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class NetworkLoop:
    """The network thread of a process; see the module docstring. ``clients``: how many links
    it will carry, checked against the descriptor limit at once."""

    def __init__(self, clients: int = 1, *, name: str = "mqtt-network") -> None:
        ensure_descriptors(clients)
        self._name = name
        # Made when the thread starts: a loop never started holds no descriptor.
        self._selector: selectors.BaseSelector
        self._wake_r: socket.socket
        self._wake_w: socket.socket
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._woken = False
        self._timers: list[tuple[float, int, Link]] = []
        self._order = itertools.count()
        self._links: list[Link] = []
        self._open: set[Link] = set()
        self._rereads: set[Link] = set()
        self._writes: set[Link] = set()
        self._lost: list[Link] = []
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._connectors: Connectors
        self._stopping = False

    # --- any thread ----------------------------------------------------------------------

    def link(
        self, client: mqtt.Client, host: str, port: int, *, keepalive_s: int, name: str
    ) -> Link:
        """Put ``client`` on this loop (not connected yet: :meth:`Link.start`)."""
        client.connect_timeout = CONNECT_TIMEOUT_S  # only while the client is new
        client.connect_async(host, port, keepalive=keepalive_s)
        link = Link(self, client, name)
        self._links.append(link)
        client.on_socket_close = lambda c, u, sock: self._socket_closed(link, sock)
        client.on_socket_register_write = lambda c, u, sock: self.call(
            partial(self._want_write, link)
        )
        return link

    def call(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread (at once if called there, else soon)."""
        if self._on_loop_thread():
            fn()
            return
        if self._thread is None and not self._ensure_started():
            return  # stopped before it ever ran: every link is closed already
        self._calls.put(fn)
        if not self._woken:
            self._woken = True
            with contextlib.suppress(OSError):  # full: a wake-up is pending anyway
                self._wake_w.send(b"\0")

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """End the loop: a link still open is shut down without DISCONNECT (its will fires);
        every link counts as closed. Waits for the threads at most ``timeout_s``."""
        with self._start_lock:
            thread = self._thread
            if thread is None:
                self._stopping = True
                for link in self._links:
                    link.finish()
                return
        self.call(self._begin_stop)
        thread.join(timeout_s)

    # --- the loop thread -----------------------------------------------------------------

    def _ensure_started(self) -> bool:
        """Start the threads on first use; False if the loop was stopped before that."""
        with self._start_lock:
            if self._thread is not None or self._stopping:
                return self._thread is not None
            self._selector = selectors.DefaultSelector()
            self._wake_r, self._wake_w = socket.socketpair()
            self._wake_r.setblocking(False)
            self._wake_w.setblocking(False)
            self._selector.register(self._wake_r, _READ, None)
            self._connectors = Connectors(self._name, self._connect_done)
            # Set last: a caller that sees the thread (without the lock) sees all of the above.
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
            return True

    def _on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def _run(self) -> None:
        next_misc = time.monotonic() + MISC_EVERY_S
        while True:
            self._run_calls()
            if self._stopping:
                break
            rereads, self._rereads = self._rereads, set()
            for link in rereads:
                self._read(link)
            now = time.monotonic()
            self._run_timers(now)
            if now >= next_misc:
                next_misc = now + MISC_EVERY_S
                for link in list(self._open):
                    self._guard(link, link.client.loop_misc)
            self._flush_writes()
            self._settle()
            busy = self._rereads or self._writes or self._lost or self._calls.qsize()
            timeout = max(0.0, min(next_misc, self._next_timer()) - time.monotonic())
            for key, events in self._selector.select(0.0 if busy else timeout):
                if key.data is None:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                    continue
                link = key.data
                if events & _READ:
                    self._read(link)
                if events & _WRITE:
                    self._writes.add(link)
        self._shut_down()

    def _read(self, link: Link) -> None:
        self._guard(link, link.client.loop_read)
        sock = link.sock
        # TLS: paho may have left decrypted bytes in the SSL object that epoll cannot see.
        if sock is not None and getattr(sock, "pending", lambda: 0)():
            self._rereads.add(link)
        if not link.established and link.client.is_connected():
            link.established = True  # a CONNACK accepted us: back-off starts over

    def _guard(self, link: Link, operation: Callable[[], Any]) -> None:
        """Run a paho operation for ``link``; a failure in a callback ends that connection
        (reconnecting as after a lost one), never the loop the other robots share."""
        try:
            operation()
        except Exception:
            log.exception("%s: the network loop caught an error; reconnecting", link.name)
            link.cut()

    def _run_calls(self) -> None:
        self._woken = False  # before draining: a call put after this wakes us again
        # (a lost race only costs one more wake-up byte)
        while True:
            try:
                fn = self._calls.get_nowait()
            except queue.Empty:
                return
            fn()

    def _flush_writes(self) -> None:
        writes, self._writes = self._writes, set()
        for link in writes:
            if link not in self._open:
                continue
            self._guard(link, link.client.loop_write)
            sock = link.sock
            if sock is None:
                continue
            events = _READ | (_WRITE if link.client.want_write() else 0)
            if events != link.events:
                link.events = events
                self._selector.modify(sock, events, link)

    def _want_write(self, link: Link) -> None:
        # Not a partial of ``self._writes.add``: that would bind the set of the moment, which
        # _flush_writes may have swapped for a new one before the call runs.
        self._writes.add(link)

    def _register(self, link: Link) -> None:
        sock = link.client.socket()
        if sock is None:
            return
        link.sock, link.events = sock, _READ
        self._selector.register(sock, _READ, link)
        self._open.add(link)
        link.state = LinkState.OPEN
        self._writes.add(link)  # the CONNECT paho queued

    def _socket_closed(self, link: Link, sock: Any) -> None:
        """paho is about to close ``sock`` (on this thread: a read, write or keepalive found the
        connection gone): unregister it now, before the descriptor number can be reused."""
        if not self._on_loop_thread():  # a connector's reconnect() closing what paho opened
            self.call(partial(self._socket_closed, link, sock))
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(sock)
        if link.sock is sock:
            link.sock = None
            self._open.discard(link)
            self._lost.append(link)

    def _settle(self) -> None:
        """Links whose connection ended in this round: closed for good, or reconnect later."""
        lost, self._lost = self._lost, []
        for link in lost:
            if link.closing or self._stopping:
                link.finish()
                continue
            self.schedule(link, link.next_backoff_s())

    # --- connecting ----------------------------------------------------------------------

    def schedule(self, link: Link, delay_s: float) -> None:
        """Connect ``link`` in ``delay_s`` (or once it may: held, away after a drop)."""
        link.due = max(time.monotonic() + delay_s, link.away_until)
        link.state = LinkState.WAITING
        heapq.heappush(self._timers, (link.due, next(self._order), link))

    def connect_now(self, link: Link) -> None:
        if link.closing or self._stopping:
            link.finish()
        elif time.monotonic() < link.away_until:
            self.schedule(link, 0.0)
        elif link.held:
            link.state = LinkState.HELD
        else:
            link.state = LinkState.CONNECTING
            self._connectors.submit(link)

    def _next_timer(self) -> float:
        return self._timers[0][0] if self._timers else float("inf")

    def _run_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            due, _, link = heapq.heappop(self._timers)
            if link.state is LinkState.WAITING and link.due == due:
                self.connect_now(link)

    def _connect_done(self, link: Link, failure: str | None) -> None:
        """From a connector thread: the outcome of ``link``'s connect."""
        if failure is None:
            self.call(partial(self._connected, link))
        else:
            self.call(partial(self._connect_failed, link, failure))

    def _connect_failed(self, link: Link, reason: str) -> None:
        link.last_error = reason
        if link.closing or self._stopping:
            link.finish()
        else:
            log.debug("%s: cannot connect (%s)", link.name, reason)
            self.schedule(link, link.next_backoff_s())

    def _connected(self, link: Link) -> None:
        link.last_error = None
        self._register(link)
        if link.closing or self._stopping or time.monotonic() < link.away_until:
            link.cut()  # stopped or dropped while the connect was under way

    # --- stopping ------------------------------------------------------------------------

    def _begin_stop(self) -> None:
        self._stopping = True

    def _shut_down(self) -> None:
        self._connectors.stop()
        self._run_calls()  # connects that finished meanwhile: closed below
        self._flush_writes()  # what can be written now goes out (a DISCONNECT queued, say)
        self._settle()
        for link in list(self._open):
            link.cut()
        self._settle()
        for link in self._links:
            link.finish()
        self._close_selector()

    def _close_selector(self) -> None:
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()
