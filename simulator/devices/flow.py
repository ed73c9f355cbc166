"""End-to-end flow control: keep what the robots have sent, and the service not yet stored, bounded.

Why here and not at the broker: a QoS 1 PUBACK comes from the broker, so robots paced to the
broker alone fill the broker's queue for the service's session while ingest is slower than they
are, and past ``max_queued_messages`` / ``max_queued_bytes`` Mosquitto drops messages. Only the
consumer knows how far it got, so the service publishes it (:mod:`api.ingest.progress`,
``factory/{site}/ingest``) and :class:`FlowGate` holds the simulation while too much is out.

Accounting, without a counter at the service that must match ours: the simulation runs in
simulated-time order, so the gate notes checkpoints ``(simulated time, messages made so far)``
as it goes. A report that the service committed a batch whose newest message was made at
simulated time ``through`` means everything made up to the checkpoint at or before ``through``
has left the broker's queue (robots publish in time order and the queue is first in, first out).
``outstanding`` is what was made since, and once ``through`` reaches the newest time made, 0.
While ``outstanding`` is above ``window`` the simulation thread waits for the next report
(a condition, woken by every report, re-checked every :data:`PROBE_S`).

Who counts: every worker (several ``factory serve`` sharing a subscription each report their own)
of every site the fleet has robots in, fresh within :data:`STALE_S` — the slowest one holds the
fleet. With no fresh report (``factory simulate`` alone, or the service stopped) the fleet runs
free, as before; :meth:`FlowGate.news` says so once per change. Messages a robot replays after a
disconnection carry their old time, so the gate counts them only while they are made, not when
replayed: a reconnect can put at most what the robot made while away on top of the window. A
service that stores nothing for :data:`STALE_S` while nothing waits at it, with messages out,
never got them (lost on the way): the gate says so and counts them as done, so the fleet never
waits forever. :func:`checkpoints` is the SimPy process that drives the gate.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import simpy

from contract.ingest import IngestProgress

#: A report older than this (wall seconds since it was heard) is from a service that is gone.
STALE_S = 10.0
#: While held, the gate re-checks at least this often (wall seconds).
PROBE_S = 0.5
#: Default window: messages made and not yet stored. Far below Mosquitto's per-session bound of
#: ``max_queued_messages 100000`` (and ``max_queued_bytes`` 64 MiB: 20,000 messages of at most
#: 3.3 KiB), so the broker never has to drop; see docs/broker.md.
DEFAULT_WINDOW = 20_000
#: Slow start: the window begins this small when a service is first followed and doubles with
#: every report of progress, so the first burst is small: the service's clock guard measures the
#: fleet's pace before messages a whole window apart can arrive (docs/contract.md, Clock guard).
INITIAL_WINDOW = 64
#: Checkpoints: every this many simulated seconds at first, then as many as make about an eighth
#: of the window, within these bounds.
TICK_S, TICK_MIN_S, TICK_MAX_S = 1.0, 1e-3, 60.0


@dataclass(frozen=True, slots=True)
class _Heard:
    report: IngestProgress
    at: float  # monotonic


class FlowGate:
    """Checkpoints of what was made, reports of what was stored, and the wait between them.

    ``made`` counts the messages the robots have made (published or buffered), ``newest`` is the
    simulated time of the newest one."""

    def __init__(
        self,
        window: int,
        sites: set[str],
        made: Callable[[], int],
        newest: Callable[[], float],
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if window < 1:
            raise ValueError("the flow-control window must be at least 1 message")
        self.window = window
        self._sites = sites
        self._made = made
        self._newest = newest
        self._clock = clock
        self._wall = wall
        self._changed = threading.Condition()
        self._heard: dict[tuple[str, str], _Heard] = {}
        self._checkpoints: deque[tuple[float, int]] = deque()
        self._said: bool | None = None
        self._news: list[str] = []
        self._closed = False
        self._moved_at = clock()  # the last time a report said more was committed
        #: The window now: from INITIAL_WINDOW, doubling with every report of progress.
        self.limit = min(window, INITIAL_WINDOW)
        #: True while the simulation is held; wall seconds held so far; largest backlog seen.
        self.held = False
        self.held_s = 0.0
        self.max_outstanding = 0

    # --- reports (any thread) -------------------------------------------------------------

    def observe(self, site: str, report: IngestProgress, retained: bool) -> None:
        """Take a report heard on ``factory/{site}/ingest``. A retained copy (the broker's, sent
        on subscribing) counts only if it is recent by its own wall time."""
        if site not in self._sites:
            return
        if retained and abs(self._wall() - report.ts) > STALE_S:
            return
        with self._changed:
            now = self._clock()
            old = self._heard.get((site, report.worker))
            if old is None or old.report.committed != report.committed:
                self._moved_at = now
                self.limit = min(self.window, self.limit * 2)
            self._heard[(site, report.worker)] = _Heard(report, now)
            self._changed.notify_all()

    def wait_heard(self, timeout_s: float) -> bool:
        """Wait (bounded) for a first report, e.g. the retained one sent on subscribing; True if
        one came."""
        with self._changed:
            return self._changed.wait_for(lambda: bool(self._heard), timeout_s)

    def close(self) -> None:
        """Release a held simulation for good (the run is stopping)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    # --- the simulation thread ------------------------------------------------------------

    def made(self) -> int:
        """Messages made so far."""
        return self._made()

    def checkpoint(self, now_ts: float) -> None:
        """Note how much was made by simulated time ``now_ts``."""
        made = self._made()
        if self._checkpoints and self._checkpoints[-1][0] == now_ts:
            self._checkpoints[-1] = (now_ts, made)
        else:
            self._checkpoints.append((now_ts, made))

    def wait_while_ahead(self, on_wait: Callable[[], object] = lambda: None) -> bool:
        """Block while more than ``window`` messages are out; True if it had to wait.
        ``on_wait`` runs before every wait (the robots send what waits in their spools)."""
        start = self._clock()
        waited = False
        with self._changed:
            while not self._closed:
                out = self._outstanding_locked()
                if out is not None:
                    self.max_outstanding = max(self.max_outstanding, out)
                self._say(out is not None)
                if out is None or out <= self.limit:
                    break
                if self._stalled():
                    self._news.append(
                        f"flow control: the service has stored nothing for {STALE_S:g} s and has "
                        f"nothing waiting, yet {out:,} messages are out: lost on the way to it? "
                        "Counting them as done and running on"
                    )
                    self._checkpoints.clear()  # with none, all made so far counts as stored
                    self._moved_at = self._clock()
                    continue
                waited = self.held = True
                self._changed.release()
                try:
                    on_wait()
                finally:
                    self._changed.acquire()
                self._changed.wait(PROBE_S)
            self.held = False
        if waited:
            self.held_s += self._clock() - start
        return waited

    def outstanding(self) -> int | None:
        """Messages made and not yet reported stored; ``None`` while no service reports."""
        with self._changed:
            return self._outstanding_locked()

    def workers(self) -> set[str]:
        """The ingest workers heard from within :data:`STALE_S`."""
        with self._changed:
            now = self._clock()
            return {w for (_, w), h in self._heard.items() if now - h.at <= STALE_S}

    def line(self) -> str:
        """The flow control in a few words, for the status line and table."""
        out = self.outstanding()
        if out is None:
            return "flow: free (no ingest progress heard)"
        if self.held:
            return (
                f"flow: held back, {out:,} messages not yet stored "
                f"(window {self.limit:,}; held {self.held_s:,.0f} s so far)"
            )
        return f"flow: {out:,} of {self.limit:,} messages not yet stored"

    def summary(self) -> str:
        """What the flow control did over the run, for the last line of the command."""
        return (
            f"flow control held the robots {self.held_s:,.1f} s, at most "
            f"{self.max_outstanding:,} messages not yet stored"
        )

    def news(self) -> list[str]:
        """What changed in following the service since last asked (for the status output)."""
        with self._changed:
            news, self._news = self._news, []
        return news

    # --- internals (lock held) ------------------------------------------------------------

    def _watermark(self) -> float | bool | None:
        """The slowest fresh worker's ``through``; ``False`` when no worker is fresh, ``None``
        while a fresh one has committed nothing of ours yet."""
        now = self._clock()
        fresh = [h.report for h in self._heard.values() if now - h.at <= STALE_S]
        if not fresh:
            return False
        throughs = [r.through for r in fresh]
        if any(t is None for t in throughs):
            return None
        return min(t for t in throughs if t is not None)

    def _outstanding_locked(self) -> int | None:
        mark = self._watermark()
        if mark is False:
            self._checkpoints.clear()  # running free: nothing to account for
            return None
        made = self._made()
        if mark is None:
            return made - (self._checkpoints[0][1] if self._checkpoints else made)
        assert isinstance(mark, float)
        if mark >= self._newest():
            return 0  # the newest message made is stored: nothing is out
        points = self._checkpoints
        index = bisect.bisect_right(points, (mark, float("inf"))) - 1
        if index < 0:
            stored = points[0][1] if points else made
        else:
            stored = points[index][1]
            for _ in range(index):  # older checkpoints are of no more use
                points.popleft()
        return max(0, made - stored)

    def _stalled(self) -> bool:
        """Nothing committed for :data:`STALE_S` and nothing waiting at any fresh worker."""
        now = self._clock()
        fresh = [h.report for h in self._heard.values() if now - h.at <= STALE_S]
        return now - self._moved_at > STALE_S and all(r.waiting == 0 for r in fresh)

    def _say(self, following: bool) -> None:
        if following == self._said:
            return
        self._said = following
        if following:  # slow start again: a service (re)appeared
            self.limit = min(self.window, INITIAL_WINDOW)
        sites = ", ".join(f"factory/{s}/ingest" for s in sorted(self._sites))
        if following:
            self._news.append(
                f"flow control: following the service's ingest progress on {sites}; at most "
                f"{self.window:,} messages out before the robots wait"
            )
        else:
            self._news.append(
                f"flow control: no service reports its ingest progress on {sites}: running "
                "free (if the service falls behind, the broker's queue for it may overflow)"
            )


def checkpoints(
    env: simpy.Environment,
    gate: FlowGate,
    now_ts: Callable[[], float],
    on_wait: Callable[[], object],
    after_hold: Callable[[], None] | None = None,
) -> simpy.events.ProcessGenerator:
    """The SimPy process of the gate: a checkpoint every tick, then wait while ahead (the
    simulation thread stands still meanwhile). ``after_hold`` re-anchors a realtime environment
    so its clock does not race to catch up; the tick adapts so that one holds about an eighth of
    the window."""
    tick_s = TICK_S
    last_made = gate.made()
    while True:
        yield env.timeout(tick_s)
        gate.checkpoint(now_ts())
        if gate.wait_while_ahead(on_wait) and after_hold is not None:
            after_hold()
        made = gate.made()
        rate = (made - last_made) / tick_s
        last_made = made
        wanted = gate.window / (8 * rate) if rate > 0 else TICK_MAX_S
        tick_s = min(TICK_MAX_S, max(TICK_MIN_S, wanted))
