"""A realtime SimPy environment whose pace can change while it runs: pause, resume, speed.

:class:`PacedEnvironment` is ``simpy.rt.RealtimeEnvironment`` with one difference: the wait before
each event is a wait on a condition rather than a sleep, so :meth:`PacedEnvironment.set_pace`
(from any thread, e.g. paho's when a ``factory/{site}/pace`` message arrives) takes effect at
once, even in the middle of a long wait.

Nothing is re-timed. Simulated time is a continuous function of wall time: at every change the
environment re-anchors (``env_start`` = the simulated time reached so far, ``real_start`` = now),
so a speed change moves the *rate* only, and a pause stops simulated time where it stood. While
paused no event is processed: robots do not sample, their ``seq`` does not move, and on resume
the next sample is made at the simulated time it was due.
"""

from __future__ import annotations

import threading
from time import monotonic

import simpy
import simpy.rt
from simpy.core import EmptySchedule, Infinity, StopSimulation


class PacedEnvironment(simpy.rt.RealtimeEnvironment):
    """``RealtimeEnvironment`` paced at ``sim_per_wall`` simulated seconds per wall second."""

    def __init__(self, sim_per_wall: float, initial_time: float = 0.0) -> None:
        if sim_per_wall <= 0:
            raise ValueError("a paced environment needs a factor > 0")
        super().__init__(initial_time, factor=1.0 / sim_per_wall, strict=False)
        self._changed = threading.Condition()
        self._paused = False
        self._closed = False

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def sim_per_wall(self) -> float:
        """Simulated seconds per wall second while running."""
        return 1.0 / self._factor

    def _reached(self) -> float:
        """Simulated time reached by the wall clock (never before the last event processed)."""
        if self._paused:
            return max(self.now, self.env_start)
        return max(self.now, self.env_start + (monotonic() - self.real_start) / self._factor)

    def set_pace(self, *, paused: bool, sim_per_wall: float) -> bool:
        """Pause, resume or change speed from any thread; True if anything changed."""
        if sim_per_wall <= 0:
            raise ValueError("the pace factor must be > 0")
        with self._changed:
            if paused == self._paused and sim_per_wall == self.sim_per_wall:
                return False
            self.env_start = self._reached()
            self.real_start = monotonic()
            self._factor = 1.0 / sim_per_wall
            self._paused = paused
            self._changed.notify_all()
            return True

    def reanchor(self) -> None:
        """Carry on from the simulated time reached, as if it were now: after the simulation
        thread was held (flow control, :mod:`.flow`), so the clock does not race to catch up."""
        with self._changed:
            self.env_start = self.now
            self.real_start = monotonic()

    def close(self) -> None:
        """End :meth:`run` at the next step, even while paused."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def step(self) -> None:
        """Wait (paused: until resumed) for the next event's wall time, then process it."""
        evt_time = self.peek()
        if evt_time is Infinity:
            raise EmptySchedule
        with self._changed:
            while not self._closed:
                if self._paused:
                    self._changed.wait()
                    continue
                real_time = self.real_start + (evt_time - self.env_start) * self._factor
                delay_s = real_time - monotonic()
                if delay_s <= 0:
                    break
                self._changed.wait(delay_s)
            if self._closed:
                raise StopSimulation(None)
        simpy.Environment.step(self)
