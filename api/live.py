"""What the service knows right now: the simulated clock, each robot's state and newest values,
whether the broker and the store are usable, and how far behind ingest is. Touched only on the
event loop, after commits.

The clock is the newest simulated time of any message ingested (``None`` before the first): the
service reasons in message time, never its own, so it works at any real-time factor. Only times
the clock guard trusted get here (:mod:`api.ingest.clock_guard`).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from dataclasses import dataclass, field

from api.lag import IngestLag
from api.records import Robot
from api.store import Accepted
from contract.payloads import State, Telemetry

#: A reading's time, as a C-level key (this runs for every reading ingested).
_TS = operator.attrgetter("ts")


@dataclass(slots=True)
class RobotLive:
    line: str
    state: str | None = None
    values: dict[str, float] = field(default_factory=dict)
    values_ts: float | None = None
    last_seen: float | None = None


@dataclass(slots=True)
class LiveState:
    clock: float | None = None
    robots: dict[str, RobotLive] = field(default_factory=dict)
    #: Why the broker or the store cannot be used right now; ``None`` when it can.
    broker_problem: str | None = "not connected to the broker yet"
    store_problem: str | None = None
    ingest_problem: str | None = None
    #: How far behind ingest is, and its readiness bound (:mod:`api.lag`).
    lag: IngestLag = field(default_factory=IngestLag)

    @classmethod
    def from_robots(cls, robots: Iterable[Robot], clock: float | None) -> LiveState:
        live = cls(clock=clock)
        for robot in robots:
            live.robots[robot.id] = RobotLive(
                line=robot.line,
                state=robot.state,
                values={str(m): v for m, v in robot.latest.values.items()} if robot.latest else {},
                values_ts=robot.latest.ts if robot.latest else None,
                last_seen=robot.last_seen,
            )
        return live

    def apply(self, message: Accepted) -> None:
        """Fold in a message that was just committed as new."""
        payload = message.payload
        robot = self.robots.get(payload.robot)
        if robot is None:
            robot = self.robots[payload.robot] = RobotLive(line=message.topic.line)
        robot.line = message.topic.line
        if robot.last_seen is None or payload.ts > robot.last_seen:
            robot.last_seen = payload.ts
        if self.clock is None or payload.ts > self.clock:
            self.clock = payload.ts
        if isinstance(payload, State):
            robot.state = payload.state
        elif isinstance(payload, Telemetry):
            newest = max(payload.readings, key=_TS)
            if robot.values_ts is None or newest.ts >= robot.values_ts:
                robot.values = newest.values()
                robot.values_ts = newest.ts

    def problems(self) -> list[str]:
        """Why the service is not ready; empty when it is."""
        lag = self.lag.problem()
        return [p for p in (self.broker_problem, self.store_problem, self.ingest_problem, lag) if p]
