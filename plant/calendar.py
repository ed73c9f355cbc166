"""The weekly shift calendar: production windows, breaks and planned-downtime windows.

Pure time arithmetic on simulated Unix seconds (UTC); the robots follow it to decide when to
work, and the scheduler reads it to place maintenance in planned downtime. A calendar repeats every
week. An entry whose end is not after its start runs past midnight into the next day.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DAY_S = 86400.0
WEEK_S = 7 * DAY_S
#: 1970-01-05 00:00 UTC was a Monday: the origin of calendar weeks.
_MONDAY_EPOCH_S = 4 * DAY_S
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM_RE = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True, slots=True, order=True)
class Window:
    """A half-open interval ``[start, end)`` of simulated Unix seconds."""

    start: float
    end: float

    @property
    def duration_s(self) -> float:
        return self.end - self.start

    def contains(self, ts: float) -> bool:
        return self.start <= ts < self.end


def _day(name: str) -> int:
    day = name.strip().lower()
    if day not in DAY_NAMES:
        raise ValueError(
            f"{name!r} is not a day; use {', '.join(DAY_NAMES)}, a range like mon-fri, or daily"
        )
    return DAY_NAMES.index(day)


def parse_days(days: str | Sequence[str]) -> list[int]:
    """``"mon-fri"``, ``"sat"``, ``"daily"`` or a list of day names → weekday numbers (mon = 0).

    A range wraps past Sunday: ``"sat-mon"`` is Saturday, Sunday and Monday.
    """
    if isinstance(days, str):
        text = days.strip().lower()
        if text in ("daily", "all", "mon-sun"):
            return list(range(7))
        if "-" in text:
            first, last = (_day(d) for d in text.split("-", 1))
            return [(first + i) % 7 for i in range((last - first) % 7 + 1)]
        return [_day(text)]
    if not days:
        raise ValueError("no days given; use e.g. mon-fri or daily")
    return [_day(d) for d in days]


def parse_hhmm(text: str) -> float:
    """``"06:30"`` → seconds after midnight; ``"24:00"`` is allowed as the end of a day."""
    match = _HHMM_RE.fullmatch(text.strip())
    h, m = (int(match[1]), int(match[2])) if match else (-1, -1)
    if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00 to 24:00)")
    return h * 3600.0 + m * 60.0


def weekly_intervals(
    days: Iterable[int], start_s: float, end_s: float
) -> list[tuple[float, float]]:
    """Seconds-of-week intervals for a daily ``start..end`` on the given weekdays (may wrap)."""
    length = end_s - start_s if end_s > start_s else end_s + DAY_S - start_s
    out = []
    for day in days:
        begin = day * DAY_S + start_s
        out.append((begin, begin + length))
    return out


def _normalise(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Fold intervals onto one week ``[0, WEEK_S)`` and merge overlaps."""
    pieces: list[tuple[float, float]] = []
    for raw_start, raw_end in intervals:
        start = raw_start % WEEK_S
        end = start + max(raw_end - raw_start, 0.0)
        if end <= WEEK_S:
            pieces.append((start, end))
        else:
            pieces += [(start, WEEK_S), (0.0, end - WEEK_S)]
    pieces.sort()
    merged: list[tuple[float, float]] = []
    for start, end in pieces:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return merged


def _subtract(
    base: list[tuple[float, float]], cut: list[tuple[float, float]]
) -> list[tuple[float, float]]:
    out = []
    for start, end in base:
        pieces = [(start, end)]
        for c_start, c_end in cut:
            next_pieces = []
            for p_start, p_end in pieces:
                if c_end <= p_start or c_start >= p_end:
                    next_pieces.append((p_start, p_end))
                    continue
                if c_start > p_start:
                    next_pieces.append((p_start, c_start))
                if c_end < p_end:
                    next_pieces.append((c_end, p_end))
            pieces = next_pieces
        out += pieces
    return out


class WeeklySet:
    """A set of seconds-of-week, repeated every week, queried in absolute Unix seconds.

    Besides windows, it keeps a *position*: how many seconds inside the set have passed since
    the Monday epoch. Position and its inverse are O(log n) lookups, so "when will ``x`` more
    seconds inside the set have passed" costs two bisections, whatever the distance (the
    simulator asks it for every component at every sample).
    """

    def __init__(self, intervals: Iterable[tuple[float, float]]) -> None:
        self._intervals = _normalise(intervals)
        self._starts = [s for s, _ in self._intervals]
        self._cum_start: list[float] = []  # seconds inside the set before each interval
        self._cum_end: list[float] = []  # ... and at its end
        inside_s = 0.0
        for start, end in self._intervals:
            self._cum_start.append(inside_s)
            inside_s += end - start
            self._cum_end.append(inside_s)
        self._per_week_s = inside_s

    @property
    def intervals(self) -> list[tuple[float, float]]:
        return list(self._intervals)

    @property
    def per_week_s(self) -> float:
        """Seconds inside the set in every week."""
        return self._per_week_s

    def __sub__(self, other: WeeklySet) -> WeeklySet:
        return WeeklySet(_subtract(self._intervals, other._intervals))

    def contains(self, ts: float) -> bool:
        sow = (ts - _MONDAY_EPOCH_S) % WEEK_S
        i = bisect.bisect_right(self._starts, sow) - 1
        return i >= 0 and sow < self._intervals[i][1]

    def position(self, ts: float) -> float:
        """Seconds inside the set from the Monday epoch (1970-01-05) up to ``ts``."""
        since_s = ts - _MONDAY_EPOCH_S
        sow = since_s % WEEK_S
        inside_s = (since_s - sow) / WEEK_S * self._per_week_s
        i = bisect.bisect_right(self._starts, sow) - 1
        if i >= 0:
            start, end = self._intervals[i]
            inside_s += self._cum_start[i] + min(sow, end) - start
        return inside_s

    def time_at(self, position: float) -> float:
        """The earliest time whose :meth:`position` is ``position`` (``inf`` for an empty set)."""
        if self._per_week_s <= 0.0:
            return float("inf")
        weeks, rest_s = divmod(position, self._per_week_s)
        if rest_s <= 0.0 and weeks > 0:  # exactly a whole week's worth: end of the last window
            weeks, rest_s = weeks - 1, self._per_week_s
        i = min(bisect.bisect_left(self._cum_end, rest_s), len(self._cum_end) - 1)
        return _MONDAY_EPOCH_S + weeks * WEEK_S + self._starts[i] + rest_s - self._cum_start[i]

    def windows(self, t0: float, t1: float) -> list[Window]:
        """The set's windows overlapping ``[t0, t1)``, clipped to it, in time order."""
        if t1 <= t0 or not self._intervals:
            return []
        week0 = t0 - (t0 - _MONDAY_EPOCH_S) % WEEK_S
        out: list[Window] = []
        week = week0
        while week < t1:
            for start, end in self._intervals:
                w_start, w_end = week + start, week + end
                if w_end <= t0 or w_start >= t1:
                    continue
                clipped = Window(max(w_start, t0), min(w_end, t1))
                if out and out[-1].end >= clipped.start:  # joined across a week boundary
                    out[-1] = Window(out[-1].start, clipped.end)
                else:
                    out.append(clipped)
            week += WEEK_S
        return out

    def seconds(self, t0: float, t1: float) -> float:
        """How many seconds of ``[t0, t1)`` lie in the set."""
        if t1 <= t0:
            return 0.0
        return max(self.position(t1) - self.position(t0), 0.0)

    def advance(self, ts: float, inside_s: float) -> float:
        """The earliest time at which ``inside_s`` seconds inside the set have passed since ``ts``
        (``inf`` if the set is empty)."""
        if inside_s <= 0.0:
            return ts
        return max(self.time_at(self.position(ts) + inside_s), ts)

    def next_boundary(self, ts: float) -> float:
        """The first time after ``ts`` at which membership changes (``inf`` if never)."""
        if not self._intervals or self._intervals == [(0.0, WEEK_S)]:
            return float("inf")
        sow = (ts - _MONDAY_EPOCH_S) % WEEK_S
        week = ts - sow
        for offset in (0.0, WEEK_S):
            for start, end in self._intervals:
                for edge in (start, end):
                    if week + offset + edge > ts:
                        return week + offset + edge
        return float("inf")  # pragma: no cover - a non-empty set always has a later edge


class ShiftCalendar:
    """Production = shifts − breaks − planned downtime; maintenance goes in planned downtime."""

    def __init__(self, shifts: WeeklySet, breaks: WeeklySet, planned_downtime: WeeklySet) -> None:
        self.production = shifts - breaks - planned_downtime
        self.planned_downtime = planned_downtime

    def is_production(self, ts: float) -> bool:
        return self.production.contains(ts)

    def next_change(self, ts: float) -> float:
        """When production next starts or stops after ``ts``."""
        return self.production.next_boundary(ts)

    def production_windows(self, t0: float, t1: float) -> list[Window]:
        return self.production.windows(t0, t1)

    def downtime_windows(self, t0: float, t1: float) -> list[Window]:
        """Planned-downtime (maintenance) windows overlapping ``[t0, t1)``."""
        return self.planned_downtime.windows(t0, t1)

    def production_seconds(self, t0: float, t1: float) -> float:
        return self.production.seconds(t0, t1)

    def advance_production(self, ts: float, production_s: float) -> float:
        """When a robot working every production second from ``ts`` has worked ``production_s``."""
        return self.production.advance(ts, production_s)
