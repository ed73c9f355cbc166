"""The factory: every robot of a scenario on one SimPy environment, sharing the technicians.

The model is pure: records leave through the one ``emit`` sink, commands come in through
:meth:`Factory.handle` (or a robot's own methods). Only an entry point chooses the environment:
``simpy.Environment()`` to run as fast as possible, ``simpy.rt.RealtimeEnvironment(factor=…)``
to pace it against the wall clock (``env.now`` is simulated seconds since ``scenario.start``).
:func:`run_offline` is the fast path for tests, benches and experiments.
"""

from __future__ import annotations

from typing import Any

import simpy

from plant.calendar import DAY_S
from simulator.model.host import Command
from simulator.model.records import Record, Sink
from simulator.model.robot import RobotModel
from simulator.model.scenario import Scenario
from simulator.model.stats import STATES, RobotStats
from simulator.model.timeline import schedule_faults, scripted_commands


class UnknownRobot(LookupError):
    """A command for a robot id the scenario does not have."""


class Factory:
    """All robots of ``scenario``; call :meth:`start`, then run ``env``."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, seed: int, emit: Sink) -> None:
        self.env = env
        self.scenario = scenario
        self.seed = seed
        self.technicians = simpy.PriorityResource(env, capacity=scenario.maintenance.technicians)
        self.robots: dict[str, RobotModel] = {
            robot.id: RobotModel(env, robot, scenario, seed, emit, self.technicians)
            for robot in scenario.robots
        }

    def start(self) -> None:
        """Register every robot's process (records start flowing once ``env`` runs) and the
        scenario's scripted faults (none: nothing registered, the run is unchanged)."""
        for robot in self.robots.values():
            robot.start()
        if self.scenario.faults:
            start_ts = self.scenario.start_ts
            commands = scripted_commands(self.scenario.faults, start_ts)
            schedule_faults(self.env, commands, start_ts, self.handle)

    @property
    def now_ts(self) -> float:
        return self.scenario.start_ts + self.env.now

    def handle(self, command: Command) -> str:
        """Hand a command to its robot; returns the acknowledgement status."""
        robot = self.robots.get(command.robot)
        if robot is None:
            raise UnknownRobot(f"no robot {command.robot!r} in scenario {self.scenario.name!r}")
        return robot.handle(command)

    def stats(self) -> dict[str, RobotStats]:
        return {robot_id: robot.stats for robot_id, robot in self.robots.items()}

    def summary(self) -> dict[str, Any]:
        """Counters per robot and for the factory, up to now (JSON-ready)."""
        robots = {robot_id: s.as_dict() for robot_id, s in self.stats().items()}
        totals: dict[str, Any] = {}
        for key in (
            "parts_good",
            "parts_scrap",
            "breakdowns",
            "maintenance_jobs",
            "maintenance_cost",
            "repair_cost",
            "total_cost",
            "operating_s",
            "downtime_planned_s",
            "downtime_unplanned_s",
            "samples",
        ):
            totals[key] = sum(r[key] for r in robots.values())
        totals["state_s"] = {s: sum(r["state_s"][s] for r in robots.values()) for s in STATES}
        start_ts = self.scenario.start_ts
        return {
            "scenario": self.scenario.name,
            "seed": self.seed,
            "start_ts": start_ts,
            "end_ts": self.now_ts,
            "production_s_per_robot": self.scenario.shift_calendar.production_seconds(
                start_ts, self.now_ts
            ),
            "totals": totals,
            "robots": robots,
        }


def _discard(record: Record) -> None:
    """A sink that keeps nothing."""


def run_offline(
    scenario: Scenario, seed: int, days: float, emit: Sink | None = None
) -> dict[str, Any]:
    """Run the factory as fast as possible for ``days`` simulated days; return its summary."""
    env = simpy.Environment()
    factory = Factory(env, scenario, seed, emit or _discard)
    factory.start()
    env.run(until=days * DAY_S)
    return factory.summary()
