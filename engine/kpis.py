"""Plant KPIs — availability, performance, quality, OEE, MTBF, MTTR — per robot and per line.

One computation for the offline experiment and the live service: each measures a robot's
planned production time, run time, parts and failures over a window in its own way (the
experiment from the model's counters, the service from stored events) and hands them to
:func:`robot_kpis`; :func:`pooled_kpis` combines several robots (a line, the plant) by summing
their times and counts. :func:`activity_from_events` is how the service measures: downtime runs
from a ``failure`` to its ``repair_finished`` and from a ``maintenance_started`` to its
``maintenance_finished``; run time is the production time of the window less the production time
those stops overlapped. Definitions and sources are in docs/maintenance.md "Experiment".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.scoring import mtbf, mttr, oee
from plant.calendar import ShiftCalendar

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Activity:
    """What a robot did over a window: the inputs of its KPIs (seconds and counts)."""

    planned_s: float
    run_s: float
    ideal_cycle_s: float
    good: int
    scrap: int
    failures: int
    restore_s: Sequence[float] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class Kpis:
    """KPIs of one robot or a group; ``mtbf_h`` is ``None`` with no failure (no estimate),
    ``mttr_h`` with no completed repair."""

    availability: float
    performance: float
    quality: float
    oee: float
    mtbf_h: float | None
    mttr_h: float | None
    failures: int
    planned_h: float
    run_h: float
    good: int
    scrap: int


def robot_kpis(activity: Activity) -> Kpis:
    """Nakajima's OEE parts with the kind's nominal cycle time as the ideal, MTBF = run time /
    failures, MTTR = mean failure-to-back-in-service time."""
    a = activity
    measured = oee(a.planned_s, a.run_s, a.ideal_cycle_s, a.good + a.scrap, a.good)
    between = mtbf(a.run_s, a.failures)
    return Kpis(
        availability=measured.availability,
        performance=measured.performance,
        quality=measured.quality,
        oee=measured.oee,
        mtbf_h=between / HOUR_S if math.isfinite(between) else None,
        mttr_h=mttr(a.restore_s) / HOUR_S if a.restore_s else None,
        failures=a.failures,
        planned_h=a.planned_s / HOUR_S,
        run_h=a.run_s / HOUR_S,
        good=a.good,
        scrap=a.scrap,
    )


def pooled_kpis(activities: Sequence[Activity]) -> Kpis:
    """KPIs of a group of robots: times and counts summed; the ideal output is each robot's own
    ideal cycle time × its count, so robots of different kinds pool correctly."""
    planned = sum(a.planned_s for a in activities)
    run = sum(a.run_s for a in activities)
    ideal_output_s = sum(a.ideal_cycle_s * (a.good + a.scrap) for a in activities)
    good = sum(a.good for a in activities)
    scrap = sum(a.scrap for a in activities)
    failures = sum(a.failures for a in activities)
    restore = [s for a in activities for s in a.restore_s]
    availability = run / planned if planned > 0 else 0.0
    performance = ideal_output_s / run if run > 0 else 0.0
    quality = good / (good + scrap) if good + scrap > 0 else 0.0
    between = mtbf(run, failures)
    return Kpis(
        availability=availability,
        performance=performance,
        quality=quality,
        oee=availability * performance * quality,
        mtbf_h=between / HOUR_S if math.isfinite(between) else None,
        mttr_h=mttr(restore) / HOUR_S if restore else None,
        failures=failures,
        planned_h=planned / HOUR_S,
        run_h=run / HOUR_S,
        good=good,
        scrap=scrap,
    )


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the service stores it: simulated time, kind and JSON body."""

    ts: float
    kind: str
    body: Mapping[str, Any]


def activity_from_events(
    events: Iterable[StoredEvent],
    calendar: ShiftCalendar,
    since: float,
    until: float,
    ideal_cycle_s: float,
) -> Activity:
    """A robot's activity over ``[since, until)`` from its events (any order).

    A stop open at ``until`` counts up to ``until``; a stop that began before ``since`` is
    unknown to the window and not counted. A failure counts when it falls in the window, and its
    restore time when its repair finishes in the window.
    """
    stops: list[tuple[float, float]] = []
    restore: list[float] = []
    failures = good = scrap = 0
    broken_at: dict[str, float] = {}
    maint_at: dict[str, float] = {}
    for event in sorted(events, key=lambda e: e.ts):
        if not since <= event.ts < until:
            continue
        component = str(event.body.get("component", ""))
        if event.kind == "failure":
            failures += 1
            broken_at.setdefault(component, event.ts)
        elif event.kind == "repair_finished" and component in broken_at:
            start = broken_at.pop(component)
            stops.append((start, event.ts))
            restore.append(event.ts - start)
        elif event.kind == "maintenance_started":
            maint_at.setdefault(component, event.ts)
        elif event.kind == "maintenance_finished" and component in maint_at:
            stops.append((maint_at.pop(component), event.ts))
        elif event.kind == "parts":
            good += int(event.body.get("good", 0))
            scrap += int(event.body.get("scrap", 0))
    stops.extend((start, until) for start in (*broken_at.values(), *maint_at.values()))
    planned_s = calendar.production_seconds(since, until)
    lost_s = sum(calendar.production_seconds(a, b) for a, b in _merge(stops))
    return Activity(
        planned_s=planned_s,
        run_s=max(planned_s - lost_s, 0.0),
        ideal_cycle_s=ideal_cycle_s,
        good=good,
        scrap=scrap,
        failures=failures,
        restore_s=tuple(restore),
    )


def _merge(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Overlapping stops (two components down at once) counted once."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        elif end > start:
            merged.append((start, end))
    return merged
