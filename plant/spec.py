"""What a plant's own records say of a robot kind: its nominal work cycle, its sensors' healthy
readings, its wearing components with their repair times and costs, and the danger limits an
engineer sets. A real deployment has this from commissioning and the maintenance planner; the
simulator extends each model with how the parts wear and how wear shows in the readings
(:mod:`simulator.model.kinds`). ``docs/scenario.md`` documents every field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]

#: The four readings every robot reports (the contract's metric names; a test keeps them equal).
SensorName = Literal["vibration_rms_mm_s", "temperature_c", "motor_current_a", "cycle_time_s"]
SENSOR_NAMES: tuple[str, ...] = get_args(SensorName)

#: ISO 10816-1 vibration zone limits (A/B, B/C, C/D), mm/s RMS, per machine class.
ISO10816_ZONES_MM_S: dict[str, tuple[float, float, float]] = {
    "I": (0.71, 1.8, 4.5),
    "II": (1.12, 2.8, 7.1),
    "III": (1.8, 4.5, 11.2),
    "IV": (2.8, 7.1, 18.0),
}


class Spec(BaseModel):
    """Base of every plant and scenario section: strict, frozen, no unknown fields."""

    # Strict: a TOML string is not a number ("2" for technicians is refused, not converted).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ComponentSpec(Spec):
    """A wearing part as the maintenance planner knows it: what it is and what its repair takes."""

    name: Name
    kind: Literal["reducer", "servo", "gripper"]
    planned_repair_h: Positive
    unplanned_repair_h: Positive
    planned_cost: NonNegative
    unplanned_cost: NonNegative
    #: Design data (the maker's or the plant's reliability records), optional: how long a
    #: defect takes from detectable onset to failure, and how much that varies. The maintenance
    #: engine's prognostics read the wear to come from them (engine/wear_model.py).
    pf_mean_h: Positive | None = Field(
        default=None,
        description="Mean operating hours from onset to failure (the P–F interval), design data.",
    )
    pf_cv: Annotated[float, Field(gt=0.0, le=2.0)] | None = Field(
        default=None,
        description="Coefficient of variation of the wear at the mean failure time, design data.",
    )

    @model_validator(mode="after")
    def _design_data_in_pairs(self) -> ComponentSpec:
        if (self.pf_mean_h is None) != (self.pf_cv is None):
            raise ValueError("give pf_mean_h and pf_cv together (design data), or neither")
        return self


class SensorSpec(Spec):
    """Healthy baseline and white-noise standard deviation of one sensor."""

    base: float
    noise: NonNegative


class SensorsSpec(Spec):
    vibration_rms_mm_s: SensorSpec
    temperature_c: SensorSpec
    motor_current_a: SensorSpec
    cycle_time_s: SensorSpec


class KindSpec(Spec):
    """A robot kind: its model, work cycle, sensors, components and danger limits."""

    model: str = Field(max_length=80)
    vibration_class: Literal["I", "II", "III", "IV"]
    sample_interval_s: Positive
    cycle_time_s: Positive
    part_value: NonNegative
    sensors: SensorsSpec
    components: Sequence[ComponentSpec] = Field(min_length=1, max_length=16)
    limits: dict[SensorName, float] = Field(
        default={},
        description="Danger limit per reading (an engineer's setting the maintenance engine "
        "reads); a simulated kind derives the readings not named here from its physics.",
    )

    @field_validator("components")
    @classmethod
    def _unique_components(cls, components: Sequence[ComponentSpec]) -> Sequence[ComponentSpec]:
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

    def default_danger_limits(self) -> dict[str, float]:
        """Danger limits of the readings ``limits`` leaves out. A plant states its limits, so
        there are none here; the simulator derives them from its sensor physics."""
        return {}

    @property
    def danger_limits(self) -> dict[str, float]:
        """Every known reading's danger limit: the explicit ``limits`` over the defaults."""
        explicit: dict[str, float] = {str(k): v for k, v in self.limits.items()}
        return {**self.default_danger_limits(), **explicit}
