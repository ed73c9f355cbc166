"""The scheduler: where in time a maintenance job goes.

Rules, in order (docs/maintenance.md explains each):

1. **Downtime window.** The job goes in the earliest planned-downtime window (``prefer="latest"``:
   the latest, used by the preventive policy) where it starts no earlier than now and *ends* by the
   deadline (predicted failure − safety margin). A window that opens before the deadline but where
   the job would end after it does not count.
2. **Capacity.** At no moment may more jobs overlap than there are technicians (unplanned repairs
   in progress count too); a line never has more of its robots stopped for planned work at once
   than its ``max_concurrent_maintenance``; a robot has one job at a time.
3. **Fallback.** If no window fits, the job goes in the feasible slot that loses the least
   production time (``production_seconds``) and still ends before the predicted failure (earliest
   on a tie). Candidate starts are now, the ends of production windows (breaks, shift ends), the
   starts of production windows minus the job's length, and the ends of other bookings.
4. **Late.** If nothing ends before the predicted failure, the earliest feasible slot at all.
5. **Wait if cheaper** (predictive work, whose failure time has a distribution,
   :mod:`engine.risk`): when rules 3–4 would take production time, the first free slot that takes
   none is taken instead if the chance of failing before it ends × the production a breakdown
   costs is less than the production the slot now would take.

Every placement carries a human-readable reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from contract.payloads import TS_MAX
from engine.config import PlanningConfig
from engine.reasons import hours, when, window_text
from engine.risk import FailureRisk
from plant import Plant
from plant.calendar import DAY_S, ShiftCalendar, Window

#: Two starts closer than this are the same slot.
SAME_SLOT_S = 60.0


@dataclass(frozen=True, slots=True)
class Booking:
    """Time already taken: a planned job (stops its robot, needs a technician) or an unplanned
    repair (needs a technician; its robot is broken, not stopped for planned work)."""

    robot: str
    line: str
    start_ts: float
    end_ts: float
    label: str
    stops_robot: bool = True
    needs_technician: bool = True


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """A job to place. It must end by ``deadline_ts`` to go in a window; the fallback must end by
    ``limit_ts`` (the predicted failure) if at all possible. None: no bound (search horizon)."""

    robot: str
    line: str
    duration_s: float
    now_ts: float
    deadline_ts: float | None = None
    limit_ts: float | None = None
    prefer: Literal["earliest", "latest"] = "earliest"
    #: What ``limit_ts`` stands for, in the reason text.
    limit_what: str = "the predicted failure"
    #: The predicted failure as a distribution (predictive work): lets the scheduler wait for a
    #: slot outside production when that is cheaper on average (rule 5).
    risk: FailureRisk | None = None


@dataclass(frozen=True, slots=True)
class Placement:
    start_ts: float
    end_ts: float
    mode: Literal["window", "fallback", "late", "requested"]
    window: Window | None
    lost_production_s: float
    technicians_busy: int
    technicians: int
    reason: str


class SlotUnavailable(ValueError):
    """A requested start time is not feasible."""


def max_overlap(bookings: Iterable[Booking], start: float, end: float) -> int:
    """The largest number of ``bookings`` running at one moment within ``[start, end)``."""
    edges = []
    for b in bookings:
        lo, hi = max(b.start_ts, start), min(b.end_ts, end)
        if lo < hi:
            edges += [(lo, 1), (hi, -1)]
    edges.sort()  # at equal times -1 sorts first: half-open intervals that touch do not overlap
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


class Scheduler:
    def __init__(
        self,
        calendar: ShiftCalendar,
        technicians: int,
        line_limits: Mapping[str, int],
        planning: PlanningConfig,
    ) -> None:
        self.calendar = calendar
        self.technicians = technicians
        self.line_limits = dict(line_limits)
        self.planning = planning

    @classmethod
    def for_scenario(cls, scenario: Plant, planning: PlanningConfig) -> Scheduler:
        limits = {line.id: line.max_concurrent_maintenance for line in scenario.lines}
        return cls(scenario.shift_calendar, scenario.maintenance.technicians, limits, planning)

    # --- feasibility -----------------------------------------------------------------------

    def conflict(
        self, robot: str, line: str, start: float, end: float, bookings: Sequence[Booking]
    ) -> tuple[str | None, int]:
        """(why ``[start, end)`` is infeasible or None, technicians busy in it)."""
        if end > TS_MAX:
            return "it would end after the last time the contract can carry (year 3000)", 0
        overlapping = [b for b in bookings if b.start_ts < end and start < b.end_ts]
        for b in overlapping:
            if b.robot == robot:
                return f"{robot} is already booked then ({b.label})", 0
        busy = max_overlap((b for b in overlapping if b.needs_technician), start, end)
        if busy + 1 > self.technicians:
            return f"all {self.technicians} technicians busy", busy
        limit = self.line_limits.get(line, 1)
        stopped = max_overlap(
            (b for b in overlapping if b.stops_robot and b.line == line), start, end
        )
        if stopped + 1 > limit:
            return f"{line} already has {stopped} of {limit} robots stopped", busy
        return None, busy

    # --- placement -------------------------------------------------------------------------

    def place(self, request: SlotRequest, bookings: Sequence[Booking]) -> Placement | None:
        """The slot for ``request`` by rules 1–5, or None if nothing is free in the horizon."""
        placed = self._by_rules(request, bookings)
        if placed is None or placed.lost_production_s == 0.0 or request.risk is None:
            return placed
        return self._wait_if_cheaper(request, bookings, placed, request.risk)

    def _wait_if_cheaper(
        self,
        request: SlotRequest,
        bookings: Sequence[Booking],
        placed: Placement,
        risk: FailureRisk,
    ) -> Placement:
        """Rule 5: the first slot that takes no production, if its expected breakdown loss is
        less than the production ``placed`` takes."""
        duration = request.duration_s
        start = request.now_ts + self.planning.min_lead_s
        horizon = start + self.planning.search_horizon_h * 3600.0
        for s in self._candidate_starts(start, horizon, duration, bookings):
            if self.calendar.production_seconds(s, s + duration) > 0.0:
                continue
            why, busy = self.conflict(request.robot, request.line, s, s + duration, bookings)
            if why is not None:
                continue
            p = risk.probability_by(s + duration)
            expected = p * risk.breakdown_loss_s
            if expected >= placed.lost_production_s:
                return placed
            if request.deadline_ts is not None and request.deadline_ts < request.now_ts:
                first = f"overdue: the deadline {when(request.deadline_ts)} has passed"
            else:
                first = f"no slot outside production ends before {when(placed.end_ts)}"
            return self._placement(
                s,
                request,
                "fallback",
                None,
                0.0,
                busy,
                f"{first}; waiting is cheaper: placed at {when(s)} for {hours(duration)} outside "
                f"production, where a {p * 100:.0f} % chance of failing first × "
                f"{hours(risk.breakdown_loss_s)} of breakdown = {hours(expected)} expected loss, "
                f"less than the {hours(placed.lost_production_s)} of production the slot at "
                f"{when(placed.start_ts)} would take",
            )
        return placed

    def _by_rules(self, request: SlotRequest, bookings: Sequence[Booking]) -> Placement | None:
        """Rules 1–4."""
        placed, skipped = self._in_windows(request, bookings)
        if placed is not None:
            return placed
        start = request.now_ts + self.planning.min_lead_s
        horizon = start + self.planning.search_horizon_h * 3600.0
        limit = request.limit_ts if request.limit_ts is not None else horizon
        deadline = request.deadline_ts if request.deadline_ts is not None else horizon
        end_by = min(limit, horizon)
        overdue = request.deadline_ts is not None and request.deadline_ts < request.now_ts
        if overdue:
            # Never "a deadline already past … ends by <later>": say it is overdue, and what the
            # slot is still held to (the predicted failure, not the passed deadline).
            why_not = (
                f"overdue: the deadline {when(deadline)} has passed, so no downtime window "
                "before it can be used"
            )
        else:
            why_not = f"no downtime window fits before the deadline {when(deadline)}"
        if skipped:
            why_not += f" ({skipped})"
        bound = (
            f"ends before {request.limit_what} {when(end_by)}"
            if request.limit_ts is not None and limit <= horizon
            else f"ends within the search horizon ({when(end_by)})"
        )
        best = self._least_loss(request, bookings, end_by)
        if best is not None:
            s, lost, busy = best
            return self._placement(
                s,
                request,
                "fallback",
                None,
                lost,
                busy,
                f"{why_not}; placed at {when(s)} for {hours(request.duration_s)}, the slot that "
                f"{bound} and loses the least production ({hours(lost)} of production lost)",
            )
        best = self._earliest(request, bookings, horizon)
        if best is None:
            return None
        s, lost, busy = best
        return self._placement(
            s,
            request,
            "late",
            None,
            lost,
            busy,
            f"{why_not}, and no free slot ends before {when(limit)}: late, placed in the "
            f"earliest feasible slot {when(s)} for {hours(request.duration_s)} "
            f"({hours(lost)} of production lost)",
        )

    def place_at(
        self, request: SlotRequest, start_ts: float, bookings: Sequence[Booking]
    ) -> Placement:
        """Exactly at ``start_ts`` (a person asked for it), or :class:`SlotUnavailable`."""
        end = start_ts + request.duration_s
        if start_ts < request.now_ts:
            raise SlotUnavailable(
                f"start {when(start_ts)} is in the past (now {when(request.now_ts)}); "
                "choose a later time or ask for the earliest slot"
            )
        why, busy = self.conflict(request.robot, request.line, start_ts, end, bookings)
        if why is not None:
            raise SlotUnavailable(
                f"cannot start maintenance of {request.robot} at {when(start_ts)}: {why}; "
                "choose another time or ask for the earliest slot"
            )
        lost = self.calendar.production_seconds(start_ts, end)
        return self._placement(
            start_ts,
            request,
            "requested",
            None,
            lost,
            busy,
            f"placed as requested at {when(start_ts)} ({hours(lost)} of production lost)",
        )

    def _placement(
        self,
        start: float,
        request: SlotRequest,
        mode: Literal["window", "fallback", "late", "requested"],
        window: Window | None,
        lost: float,
        busy: int,
        text: str,
    ) -> Placement:
        free = self.technicians - busy
        reason = f"{text}, {free} of {self.technicians} technicians free"
        return Placement(
            start, start + request.duration_s, mode, window, lost, busy, self.technicians, reason
        )

    def _in_windows(
        self, request: SlotRequest, bookings: Sequence[Booking]
    ) -> tuple[Placement | None, str]:
        duration = request.duration_s
        start = request.now_ts + self.planning.min_lead_s
        deadline = (
            request.deadline_ts
            if request.deadline_ts is not None
            else start + self.planning.search_horizon_h * 3600.0
        )
        if deadline - start < duration:
            return None, ""
        windows = self.calendar.downtime_windows(start - DAY_S, deadline + DAY_S)
        latest = request.prefer == "latest"
        first_skip = ""
        for window in reversed(windows) if latest else windows:
            lo, hi = max(window.start, start), min(window.end, deadline)
            if hi - lo < duration:
                continue
            if latest:
                starts = {hi - duration} | {
                    b.start_ts - duration for b in bookings if lo <= b.start_ts - duration < hi
                }
            else:
                starts = {lo} | {b.end_ts for b in bookings if lo < b.end_ts <= hi - duration}
            for s in sorted(starts, reverse=latest):
                why, busy = self.conflict(request.robot, request.line, s, s + duration, bookings)
                if why is None:
                    lost = self.calendar.production_seconds(s, s + duration)
                    text = f"placed in {window_text(window)} downtime window"
                    if first_skip:
                        text += f" (skipped {first_skip})"
                    return self._placement(s, request, "window", window, lost, busy, text), ""
                if not first_skip:
                    first_skip = f"{window_text(window)}: {why}"
        return None, first_skip

    def _candidate_starts(
        self, start: float, last_start: float, duration: float, bookings: Sequence[Booking]
    ) -> list[float]:
        if last_start < start:
            return []
        starts = {start}
        for w in self.calendar.production_windows(start, last_start + duration):
            starts.update((w.end, w.start - duration))
        for w in self.calendar.downtime_windows(start, last_start + duration):
            starts.add(w.start)
        starts.update(b.end_ts for b in bookings)
        return sorted(s for s in starts if start <= s <= last_start)

    def _least_loss(
        self, request: SlotRequest, bookings: Sequence[Booking], limit: float
    ) -> tuple[float, float, int] | None:
        duration = request.duration_s
        start = request.now_ts + self.planning.min_lead_s
        best: tuple[float, float, int] | None = None
        for s in self._candidate_starts(start, limit - duration, duration, bookings):
            why, busy = self.conflict(request.robot, request.line, s, s + duration, bookings)
            if why is not None:
                continue
            lost = self.calendar.production_seconds(s, s + duration)
            if best is None or lost < best[1]:
                best = (s, lost, busy)
        return best

    def _earliest(
        self, request: SlotRequest, bookings: Sequence[Booking], horizon: float
    ) -> tuple[float, float, int] | None:
        duration = request.duration_s
        start = request.now_ts + self.planning.min_lead_s
        for s in self._candidate_starts(start, horizon, duration, bookings):
            why, busy = self.conflict(request.robot, request.line, s, s + duration, bookings)
            if why is None:
                return s, self.calendar.production_seconds(s, s + duration), busy
        return None
