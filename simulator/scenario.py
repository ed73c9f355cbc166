"""Scenario files: the factory a run simulates, as a strict, documented TOML format.

A scenario names the site, its areas and lines, the robots on each line and their kinds; for each
kind its components (with their degradation parameters), sensors and work cycle; the shift
calendar; the technicians; and repair durations and costs. Robot kinds live in
:mod:`simulator.kinds`; their names are re-exported here. ``docs/scenario.md`` documents every
field and where its default numbers come from. :func:`load_scenario` refuses a bad file with the
path of each bad field and why.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.payloads import MAX_BATCH
from contract.topics import Channel, Topic
from simulator.calendar import ShiftCalendar, WeeklySet, parse_days, parse_hhmm, weekly_intervals
from simulator.kinds import (
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
    Spec,
)

__all__ = [
    "DEFAULT_SCENARIO",
    "ISO10816_ZONES_MM_S",
    "CalendarSpec",
    "ComponentSpec",
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

DEFAULT_SCENARIO = "default"
#: "lines.0.robots.1.kind: why" — an error message that starts with the path of its field.
_PATHED_RE = re.compile(r"^[A-Za-z_][\w.-]*: ")


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names each bad field and why."""


class RobotSpec(Spec):
    id: Name
    kind: Name


class LineSpec(Spec):
    id: Name
    area: Name
    max_concurrent_maintenance: int = Field(
        default=1,
        ge=1,
        description="Robots of this line that may be stopped for planned work at once.",
    )
    robots: list[RobotSpec] = Field(min_length=1)


class WindowSpec(Spec):
    """A daily window on some weekdays: ``{days = "mon-fri", start = "06:00", end = "14:00"}``."""

    days: str | list[str]
    start: str
    end: str

    @field_validator("days")
    @classmethod
    def _days(cls, days: str | list[str]) -> str | list[str]:
        parse_days(days)
        return days

    @field_validator("start", "end")
    @classmethod
    def _time_of_day(cls, text: str) -> str:
        parse_hhmm(text)
        return text

    def weekly(self) -> list[tuple[float, float]]:
        return weekly_intervals(parse_days(self.days), parse_hhmm(self.start), parse_hhmm(self.end))


class CalendarSpec(Spec):
    shifts: list[WindowSpec] = Field(min_length=1)
    breaks: list[WindowSpec] = Field(default=[])
    planned_downtime: list[WindowSpec] = Field(
        default=[], description="Windows kept free of production for planned maintenance."
    )

    def build(self) -> ShiftCalendar:
        def weekly(specs: list[WindowSpec]) -> WeeklySet:
            return WeeklySet(i for spec in specs for i in spec.weekly())

        return ShiftCalendar(
            weekly(self.shifts), weekly(self.breaks), weekly(self.planned_downtime)
        )


class MaintenanceSpec(Spec):
    technicians: int = Field(ge=1, le=1000)
    technician_response_h: NonNegative = Field(
        description="Delay before a technician reaches a broken robot (unplanned work only)."
    )
    safety_margin_h: NonNegative = Field(
        default=24.0, description="Planned work must end this long before the predicted failure."
    )
    preventive_interval_h: Positive = Field(
        default=500.0, description="Operating hours between jobs under the preventive policy."
    )


class Robot(BaseModel):
    """A robot as placed in the factory, with its resolved kind and topic."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind_name: str
    kind: KindSpec
    site: str
    area: str
    line: str

    def topic(self, channel: Channel) -> Topic:
        return Topic(self.site, self.area, self.line, self.id, channel)


class Scenario(Spec):
    name: Name
    description: str = ""
    site: Name
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
    kinds: dict[Name, KindSpec] = Field(min_length=1)
    lines: list[LineSpec] = Field(min_length=1)
    calendar: CalendarSpec
    maintenance: MaintenanceSpec

    @field_validator("start")
    @classmethod
    def _utc(cls, start: datetime) -> datetime:
        if start.tzinfo is None or start.utcoffset() is None or start.utcoffset().total_seconds():  # type: ignore[union-attr]
            raise ValueError("start must be a UTC time, e.g. 2026-01-05T06:00:00Z")
        return start

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        # One error naming every bad reference, each as "dotted.path: why" on its own line.
        problems: list[str] = []
        seen: set[str] = set()
        for i, line in enumerate(self.lines):
            for j, robot in enumerate(line.robots):
                if robot.kind not in self.kinds:
                    problems.append(
                        f"lines.{i}.robots.{j}.kind: unknown kind {robot.kind!r} "
                        f"(known: {', '.join(sorted(self.kinds))})"
                    )
                if robot.id in seen:
                    problems.append(f"lines.{i}.robots.{j}.id: robot id {robot.id!r} repeats")
                seen.add(robot.id)
        lines_seen: set[str] = set()
        for i, line in enumerate(self.lines):
            if line.id in lines_seen:
                problems.append(f"lines.{i}.id: line id {line.id!r} repeats")
            lines_seen.add(line.id)
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

    @cached_property
    def robots(self) -> list[Robot]:
        return [
            Robot(
                id=r.id,
                kind_name=r.kind,
                kind=self.kinds[r.kind],
                site=self.site,
                area=line.area,
                line=line.id,
            )
            for line in self.lines
            for r in line.robots
        ]

    def robot(self, robot_id: str) -> Robot:
        for robot in self.robots:
            if robot.id == robot_id:
                return robot
        raise KeyError(robot_id)

    @cached_property
    def shift_calendar(self) -> ShiftCalendar:
        return self.calendar.build()


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        for problem in message.splitlines():
            if _PATHED_RE.match(problem):  # a model-level check names the field inside its model
                lines.append(f"  {where}.{problem}" if where else f"  {problem}")
            else:
                lines.append(f"  {where or '(top level)'}: {problem}")
    return "\n".join(lines)


def parse_scenario(data: dict[str, Any], source: str = "<scenario>") -> Scenario:
    """Validate a scenario given as a dict; raise :class:`ScenarioError` listing every problem."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(f"{source} is not a valid scenario:\n{_format_errors(exc)}") from None


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Load a scenario file, or the packaged default (``None`` or a bundled scenario's name)."""
    if path is None or (isinstance(path, str) and "/" not in path and not path.endswith(".toml")):
        name = path or DEFAULT_SCENARIO
        bundled = resources.files("simulator") / "scenarios" / f"{name}.toml"
        if not bundled.is_file():
            raise ScenarioError(f"no bundled scenario named {name!r}; give a path to a .toml file")
        text, source = bundled.read_text(encoding="utf-8"), f"bundled scenario {name!r}"
    else:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScenarioError(f"cannot read scenario {file}: {exc.strerror}") from None
        source = str(file)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source} is not valid TOML: {exc}") from None
    return parse_scenario(data, source)
