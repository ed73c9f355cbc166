"""Robot kinds in a scenario: work cycle, components and their wear, sensors, sensor physics
and the danger limits an engineer sets per kind (see docs/scenario.md for every field).

Shared by :mod:`simulator.scenario` (which re-exports these names) and everyone reading a kind.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.payloads import MetricName

Name = Annotated[
    str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
]
Positive = Annotated[float, Field(gt=0.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: A load level λ: the payload/duty fraction of a product, 1 = full load (0 would be no work).
LoadLevel = Annotated[float, Field(gt=0.0, le=1.0)]

#: ISO 10816-1 vibration zone limits (A/B, B/C, C/D), mm/s RMS, per machine class.
ISO10816_ZONES_MM_S: dict[str, tuple[float, float, float]] = {
    "I": (0.71, 1.8, 4.5),
    "II": (1.12, 2.8, 7.1),
    "III": (1.8, 4.5, 11.2),
    "IV": (2.8, 7.1, 18.0),
}


class Spec(BaseModel):
    """Base of every scenario section: strict, frozen, no unknown fields."""

    # Strict: a TOML string is not a number ("2" for technicians is refused, not converted).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ComponentSpec(Spec):
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


class SensorSpec(Spec):
    """Healthy baseline and white-noise standard deviation of one sensor."""

    base: float
    noise: NonNegative


class SensorsSpec(Spec):
    vibration_rms_mm_s: SensorSpec
    temperature_c: SensorSpec
    motor_current_a: SensorSpec
    cycle_time_s: SensorSpec


class PhysicsSpec(Spec):
    """How wear and load show in the readings; r = wear / threshold of a component (0 new,
    1 failed), λ = the load level of the product being made (1 = full load).

    vibration = base·(1 − vibration_load_share·(1 − λ)) + (vibration_at_failure − base)·r_reducer^p;
    temperature = base − temperature_load_c·(1 − λ) + temperature_rise_c·r_servo^p;
    current = base·(1 − current_load_share·(1 − λ))·(1 + current_rise_reducer·r_reducer^p +
    current_rise_servo·r_servo^p); cycle time = base·(1 + cycle_time_rise·r_gripper^p); plus noise.
    At λ = 1 the load terms vanish, so the sensors' ``base`` values are the full-load readings.
    """

    wear_exponent: Annotated[float, Field(ge=1.0, le=4.0)] = 2.0
    vibration_at_failure_mm_s: Positive | None = Field(
        default=None, description="Default: the ISO 10816-1 C/D limit of the kind's class."
    )
    temperature_rise_c: NonNegative = 30.0
    current_rise_reducer: NonNegative = 0.3
    current_rise_servo: NonNegative = 0.2
    cycle_time_rise: NonNegative = 0.4
    load_levels: list[LoadLevel] = Field(
        default=[1.0],
        min_length=1,
        max_length=8,
        description="Payload/duty fraction λ of each product the robot handles, each in (0, 1]; "
        "at every product change the next level is drawn uniformly from this list.",
    )
    load_change_h: Positive = Field(
        default=8.0, description="Calendar hours between product changes."
    )
    current_load_share: Probability = Field(
        default=0.4, description="Share of the healthy motor current that scales with load."
    )
    temperature_load_c: NonNegative = Field(
        default=4.0, description="How much cooler the motor runs at no load than at full load, °C."
    )
    vibration_load_share: Probability = Field(
        default=0.15, description="Share of the healthy vibration that scales with load."
    )


class KindSpec(Spec):
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
        component at its failure threshold (others new) at full load, per the sensor physics."""
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
