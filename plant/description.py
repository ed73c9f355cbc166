"""The plant description: a site's areas and lines, the robots on each line and their kinds, the
shift calendar with its planned-downtime windows, the technicians and the repair costs.

It is what a real plant's systems know, and all the service and the maintenance engine read. A
scenario file is this description plus the simulation's own parameters
(:class:`simulator.model.scenario.Scenario` extends :class:`Plant`); :mod:`plant.loader` reads
either from the same file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from plant.calendar import ShiftCalendar, WeeklySet, parse_days, parse_hhmm, weekly_intervals
from plant.spec import KindSpec, Name, NonNegative, Positive, Spec


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
    currency: str = Field(
        default="EUR",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of every cost in the file (components' costs); shown with "
        "costs in the experiment's tables.",
    )


class Robot(BaseModel):
    """A robot as placed in the plant, with its resolved kind (``contract.topics.Topic.for_robot``
    gives its topics)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind_name: str
    kind: KindSpec
    site: str
    area: str
    line: str


class Plant(Spec):
    name: Name
    description: str = ""
    site: Name
    kinds: Mapping[Name, KindSpec] = Field(min_length=1)
    lines: list[LineSpec] = Field(min_length=1)
    calendar: CalendarSpec
    maintenance: MaintenanceSpec

    #: What :attr:`robots` are made of (a scenario's robots carry simulated kinds).
    robot_model: ClassVar[type[Robot]] = Robot

    @model_validator(mode="after")
    def _references(self) -> Plant:
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

    @cached_property
    def robots(self) -> Sequence[Robot]:
        return [
            self.robot_model(
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
