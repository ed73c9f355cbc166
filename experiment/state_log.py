"""What the robots did, as the experiment's plant metrics need it: stops, their causes, repairs.

Built from the same state changes and events the engine receives (no truth needed): per robot,
the intervals spent BROKEN and in MAINTENANCE, how much *production* time each of them took
(a repair that runs through the night costs only the production hours it overlaps), and the
time from each failure until the robot was back in service (for MTTR), and how many planned
stops took no production time at all (``planned_in_window_share``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from plant.calendar import ShiftCalendar
from simulator.model.scenario import Scenario

BROKEN, MAINTENANCE = "BROKEN", "MAINTENANCE"


@dataclass(slots=True)
class Failure:
    robot: str
    component: str
    ts: float


@dataclass(slots=True)
class RobotLog:
    state: str | None = None
    since_ts: float = 0.0
    #: Production seconds lost while BROKEN / in MAINTENANCE (closed intervals).
    lost_production_s: dict[str, float] = field(
        default_factory=lambda: {BROKEN: 0.0, MAINTENANCE: 0.0}
    )
    #: Calendar seconds from each failure to the end of its BROKEN interval (completed repairs).
    restore_s: list[float] = field(default_factory=list)
    #: Planned stops (MAINTENANCE intervals), and those that took no production time at all.
    planned_stops: int = 0
    planned_stops_off_production: int = 0


class StateLog:
    """Per-robot stop intervals and failures; call :meth:`close` at the end of the run."""

    def __init__(self, scenario: Scenario) -> None:
        self._calendar: ShiftCalendar = scenario.shift_calendar
        self.robots: dict[str, RobotLog] = {r.id: RobotLog() for r in scenario.robots}
        self.failures: list[Failure] = []
        self._closed = False

    def on_state(self, robot: str, ts: float, state: str) -> None:
        log = self.robots[robot]
        self._end_interval(log, ts, completed=True)
        log.state, log.since_ts = state, ts

    def on_event(self, robot: str, ts: float, body: dict[str, Any]) -> None:
        if body["kind"] == "failure":
            self.failures.append(Failure(robot, str(body.get("component")), ts))

    def close(self, end_ts: float) -> None:
        """Account for the stops still under way at ``end_ts`` (their repair is not complete)."""
        if self._closed:
            return
        self._closed = True
        for log in self.robots.values():
            self._end_interval(log, end_ts, completed=False)
            log.state, log.since_ts = None, end_ts

    def _end_interval(self, log: RobotLog, ts: float, *, completed: bool) -> None:
        state = log.state
        if state not in (BROKEN, MAINTENANCE):
            return
        lost = self._calendar.production_seconds(log.since_ts, ts)
        log.lost_production_s[state] += lost
        if state == MAINTENANCE:
            log.planned_stops += 1
            log.planned_stops_off_production += lost == 0.0
        if state == BROKEN and completed:
            log.restore_s.append(ts - log.since_ts)

    # --- totals ------------------------------------------------------------------------------

    def lost_production_s(self, state: str) -> float:
        return sum(log.lost_production_s[state] for log in self.robots.values())

    def planned_in_window_share(self) -> float | None:
        """The share of planned stops that took no production time: inside downtime windows
        (or other time outside production: breaks, nights). None without planned stops."""
        stops = sum(log.planned_stops for log in self.robots.values())
        off = sum(log.planned_stops_off_production for log in self.robots.values())
        return off / stops if stops else None

    def restore_durations_s(self) -> list[float]:
        """Failure → back in service, for every completed repair, robot by robot."""
        return [d for log in self.robots.values() for d in log.restore_s]
