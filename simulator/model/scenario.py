"""Scenario files: the factory a run simulates, as a strict, documented TOML format.

A scenario is a plant (:mod:`plant`: the site, its areas and lines, the robots on each line and
their kinds, the shift calendar, the technicians, repair durations and costs) plus what only a
simulation needs: when it starts, how fast it runs live, and for each kind how its components
wear and how wear and load show in its sensors (:mod:`simulator.model.kinds`, whose names are
re-exported here). ``docs/scenario.md`` documents every field and where its default numbers come
from. :func:`load_scenario` refuses a bad file with the path of each bad field and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator, model_validator

from contract.faults import fault_problem
from contract.payloads import MAX_BATCH
from plant.description import (
    CalendarSpec,
    LineSpec,
    MaintenanceSpec,
    Plant,
    RobotSpec,
    WindowSpec,
)
from plant.description import Robot as PlantRobot
from plant.loader import DEFAULT_SCENARIO, read_scenario_file, validate_scenario
from plant.loader import PlantError as ScenarioError
from simulator.model.kinds import (
    ISO10816_ZONES_MM_S,
    ComponentSpec,
    KindSpec,
    Name,
    NonNegative,
    PhysicsSpec,
    Positive,
    Probability,
    SensorSpec,
    SensorsSpec,
)
from simulator.model.timeline import FaultSpec

__all__ = [
    "DEFAULT_SCENARIO",
    "ISO10816_ZONES_MM_S",
    "CalendarSpec",
    "ComponentSpec",
    "FaultSpec",
    "KindSpec",
    "LineSpec",
    "MaintenanceSpec",
    "Name",
    "NonNegative",
    "PhysicsSpec",
    "Positive",
    "Probability",
    "Robot",
    "RobotSpec",
    "Scenario",
    "ScenarioError",
    "SensorSpec",
    "SensorsSpec",
    "WindowSpec",
    "load_scenario",
    "parse_scenario",
]


class Robot(PlantRobot):
    """A robot as placed in the factory, with its resolved, simulated kind."""

    kind: KindSpec


class Scenario(Plant):
    start: datetime = Field(description="Simulated start time (UTC).")
    factor: NonNegative = Field(
        description="Default real-time factor for live runs: simulated seconds per wall second."
    )
    telemetry_batch: int = Field(
        default=1, ge=1, le=MAX_BATCH, description="Readings per telemetry message of a live robot."
    )
    heartbeat_s: float = Field(
        default=900.0,
        gt=0.0,
        le=86400.0,
        description="A live robot that has sent nothing for this long (simulated seconds) "
        "re-publishes its state: idle robots stay visibly alive.",
    )
    kinds: Mapping[Name, KindSpec] = Field(min_length=1)
    faults: list[FaultSpec] = Field(
        default_factory=list,
        max_length=10_000,
        description="Scripted fault timeline (simulator.model.timeline), in any order.",
    )

    robot_model: ClassVar[type[PlantRobot]] = Robot

    @field_validator("start")
    @classmethod
    def _utc(cls, start: datetime) -> datetime:
        if start.tzinfo is None or start.utcoffset() is None or start.utcoffset().total_seconds():  # type: ignore[union-attr]
            raise ValueError("start must be a UTC time, e.g. 2026-01-05T06:00:00Z")
        return start

    @model_validator(mode="after")
    def _faults_fit(self) -> Scenario:
        # One error naming every bad entry, as "faults.N.field: why", like the plant's checks.
        problems: list[str] = []
        robots = {r.id: r for r in self.robots}
        for i, spec in enumerate(self.faults):
            robot = robots.get(spec.robot)
            if robot is None:
                problems.append(
                    f"faults.{i}.robot: unknown robot {spec.robot!r} (known: {', '.join(robots)})"
                )
                continue
            if spec.at_ts(self.start_ts) < self.start_ts:
                problems.append(f"faults.{i}.at: {spec.at} is before the start {self.start}")
            components = [c.name for c in robot.kind.components]
            problem = fault_problem(spec.fault, spec.component, spec.sensor, components)
            if problem is not None:
                problems.append(f"faults.{i}: {problem}")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def with_kind_overrides(self, **fields: Any) -> Scenario:
        """A copy with the given kind fields set on every kind, e.g. ``sample_interval_s=1.0``."""
        data = self.model_dump()
        for kind in data["kinds"].values():
            kind.update(fields)
        return parse_scenario(data, f"scenario {self.name!r} with {fields}")

    @property
    def start_ts(self) -> float:
        """Simulated start as Unix seconds."""
        return self.start.timestamp()

    if TYPE_CHECKING:  # the same robots as a plant's, with simulated kinds

        @property
        def robots(self) -> Sequence[Robot]: ...

        def robot(self, robot_id: str) -> Robot: ...


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as a dict; raise :class:`ScenarioError` listing every problem."""
    return validate_scenario(Scenario, data, source)


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Load a scenario file, or the packaged default (``None`` or a bundled scenario's name)."""
    data, source = read_scenario_file(path)
    return parse_scenario(data, source)
