"""Scenario files: the factory a run simulates, as a strict, documented TOML format.

A scenario names the site, its areas and lines, the robots on each line and their kinds; for each
kind its components (with their degradation parameters), sensors and work cycle; the shift
calendar; the technicians; and repair durations and costs. ``docs/scenario.md`` documents every
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
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.payloads import MetricName
from contract.topics import Channel, Topic
from simulator.calendar import ShiftCalendar, WeeklySet, parse_days, parse_hhmm, weekly_intervals

Name = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]

DEFAULT_SCENARIO = "default"
#: "lines.0.robots.1.kind: why" — an error message that starts with the path of its field.
_PATHED_RE = re.compile(r"^[A-Za-z_][\w.-]*: ")

#: ISO 10816-1 vibration zone limits (A/B, B/C, C/D), mm/s RMS, per machine class.
ISO10816_ZONES_MM_S: dict[str, tuple[float, float, float]] = {
    "I": (0.71, 1.8, 4.5),
    "II": (1.12, 2.8, 7.1),
    "III": (1.8, 4.5, 11.2),
    "IV": (2.8, 7.1, 18.0),
}


class ScenarioError(ValueError):
    """A scenario file that cannot be used; the message names each bad field and why."""


class _Spec(BaseModel):
    # Strict: a TOML string is not a number ("2" for technicians is refused, not converted).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ComponentSpec(_Spec):
    """A wearing part. Wear starts after a Weibull-distributed onset (operating hours), then grows
    as a gamma process until it crosses ``threshold``; see docs/scenario.md."""

    name: Name
    kind: Literal["reducer", "servo", "gripper"]
    onset_shape: Positive = Field(description="Weibull shape k of the defect onset.")
    onset_scale_h: Positive = Field(description="Weibull scale η of the onset, operating hours.")
    pf_mean_h: Positive = Field(
        description="Mean operating hours from onset to failure (the P–F interval)."
    )
    pf_cv: Annotated[float, Field(gt=0.0, le=2.0)] = Field(
        description="Coefficient of variation of wear at the mean failure time (gamma process)."
    )
    threshold: Positive = 1.0
    planned_repair_h: Positive
    unplanned_repair_h: Positive
    planned_cost: NonNegative
    unplanned_cost: NonNegative


class SensorSpec(_Spec):
    """Healthy baseline and white-noise standard deviation of one sensor."""

    base: float
    noise: NonNegative


class SensorsSpec(_Spec):
    vibration_rms_mm_s: SensorSpec
    temperature_c: SensorSpec
    motor_current_a: SensorSpec
    cycle_time_s: SensorSpec


class PhysicsSpec(_Spec):
    """How wear shows in the readings; r = wear / threshold of a component (0 new, 1 failed).

    vibration = base + (vibration_at_failure − base)·r_reducer^p; temperature = base +
    temperature_rise_c·r_servo^p; current = base·(1 + current_rise_reducer·r_reducer^p +
    current_rise_servo·r_servo^p); cycle time = base·(1 + cycle_time_rise·r_gripper^p); plus noise.
    """

    wear_exponent: Annotated[float, Field(ge=1.0, le=4.0)] = 2.0
    vibration_at_failure_mm_s: Positive | None = Field(
        default=None, description="Default: the ISO 10816-1 C/D limit of the kind's class."
    )
    temperature_rise_c: NonNegative = 30.0
    current_rise_reducer: NonNegative = 0.3
    current_rise_servo: NonNegative = 0.2
    cycle_time_rise: NonNegative = 0.4


class KindSpec(_Spec):
    """A robot kind: its work cycle, sensors, components, sensor physics and danger limits."""

    model: str = Field(max_length=80)
    vibration_class: Literal["I", "II", "III", "IV"]
    sample_interval_s: Positive
    cycle_time_s: Positive
    cycle_time_cv: Annotated[float, Field(ge=0.0, le=1.0)]
    scrap_probability: Probability
    part_value: NonNegative
    initial_age_h_max: NonNegative = Field(
        default=0.0,
        description="Each component starts with an operating age drawn uniformly in [0, this].",
    )
    sensors: SensorsSpec
    components: list[ComponentSpec] = Field(min_length=1, max_length=16)
    physics: PhysicsSpec = PhysicsSpec()
    limits: dict[MetricName, float] = Field(
        default={},
        description="Danger limit per reading (an engineer's setting the maintenance engine "
        "reads); a reading not named here defaults to its mean value at failure.",
    )

    @field_validator("components")
    @classmethod
    def _unique_components(cls, components: list[ComponentSpec]) -> list[ComponentSpec]:
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ValueError(f"component names repeat: {names}")
        return components

    @model_validator(mode="after")
    def _limits_above_base(self) -> KindSpec:
        for metric, limit in self.danger_limits.items():
            base = getattr(self.sensors, metric).base
            if not limit > base:
                where = f"limits.{metric}" if metric in self.limits else "physics"
                raise ValueError(
                    f"{where}: danger level of {metric} ({limit:g}) must be above its healthy "
                    f"base ({base:g}); raise the limit or lower sensors.{metric}.base"
                )
        return self

    @property
    def vibration_at_failure_mm_s(self) -> float:
        explicit = self.physics.vibration_at_failure_mm_s
        return explicit if explicit is not None else ISO10816_ZONES_MM_S[self.vibration_class][2]

    @property
    def danger_limits(self) -> dict[str, float]:
        """Every reading's danger limit: the explicit ``limits``, else the mean reading of a
        component at its failure threshold (others new), per the sensor physics."""
        p, s = self.physics, self.sensors
        derived = {
            "vibration_rms_mm_s": self.vibration_at_failure_mm_s,
            "temperature_c": s.temperature_c.base + p.temperature_rise_c,
            "motor_current_a": s.motor_current_a.base
            * (1.0 + max(p.current_rise_reducer, p.current_rise_servo)),
            "cycle_time_s": s.cycle_time_s.base * (1.0 + p.cycle_time_rise),
        }
        explicit: dict[str, float] = {str(k): v for k, v in self.limits.items()}
        return {metric: explicit.get(metric, value) for metric, value in derived.items()}


class RobotSpec(_Spec):
    id: Name
    kind: Name


class LineSpec(_Spec):
    id: Name
    area: Name
    max_concurrent_maintenance: int = Field(
        default=1,
        ge=1,
        description="Robots of this line that may be stopped for planned work at once.",
    )
    robots: list[RobotSpec] = Field(min_length=1)


class WindowSpec(_Spec):
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


class CalendarSpec(_Spec):
    shifts: list[WindowSpec] = Field(min_length=1)
    breaks: list[WindowSpec] = []
    planned_downtime: list[WindowSpec] = Field(
        default=[], description="Windows kept free of production for planned maintenance."
    )

    def build(self) -> ShiftCalendar:
        def weekly(specs: list[WindowSpec]) -> WeeklySet:
            return WeeklySet(i for spec in specs for i in spec.weekly())

        return ShiftCalendar(
            weekly(self.shifts), weekly(self.breaks), weekly(self.planned_downtime)
        )


class MaintenanceSpec(_Spec):
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


class Scenario(_Spec):
    name: Name
    description: str = ""
    site: Name
    start: datetime = Field(description="Simulated start time (UTC).")
    factor: NonNegative = Field(
        description="Default real-time factor for live runs: simulated seconds per wall second."
    )
    telemetry_batch: int = Field(default=1, ge=1, le=200)
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
