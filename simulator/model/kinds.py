"""Robot kinds as the simulator runs them: the plant's kind (:mod:`plant.spec`) plus how its
parts wear, how wear and load show in the readings, and the work cycle's randomness (see
docs/scenario.md for every field).

Shared by :mod:`simulator.model.scenario` (which re-exports these names) and everyone in the
model reading a kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import Field

from plant.spec import (
    ISO10816_ZONES_MM_S,
    Name,
    NonNegative,
    Positive,
    Probability,
    SensorSpec,
    SensorsSpec,
    Spec,
)
from plant.spec import ComponentSpec as PlantComponentSpec
from plant.spec import KindSpec as PlantKindSpec

__all__ = [
    "ISO10816_ZONES_MM_S",
    "ComponentSpec",
    "KindSpec",
    "LoadLevel",
    "Name",
    "NonNegative",
    "PhysicsSpec",
    "Positive",
    "Probability",
    "SensorSpec",
    "SensorsSpec",
    "Spec",
]

#: A load level λ: the payload/duty fraction of a product, 1 = full load (0 would be no work).
LoadLevel = Annotated[float, Field(gt=0.0, le=1.0)]


class ComponentSpec(PlantComponentSpec):
    """A wearing part. Wear starts after a Weibull-distributed onset (operating hours), then grows
    as a gamma process until it crosses ``threshold``; see docs/scenario.md."""

    onset_shape: Positive = Field(description="Weibull shape k of the defect onset.")
    onset_scale_h: Positive = Field(description="Weibull scale η of the onset, operating hours.")
    pf_mean_h: Positive = Field(
        description="Mean operating hours from onset to failure (the P–F interval)."
    )
    pf_cv: Annotated[float, Field(gt=0.0, le=2.0)] = Field(
        description="Coefficient of variation of wear at the mean failure time (gamma process)."
    )
    threshold: Positive = 1.0


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
    scrap_rise: Probability = Field(
        default=0.0,
        description="Scrap probability added at a failed gripper: p = scrap_probability + "
        "scrap_rise·r_gripper^p.",
    )
    micro_stop_probability: Probability = Field(
        default=0.0, description="Chance that a cycle ends in a micro-stop, new components."
    )
    micro_stop_rise: Probability = Field(
        default=0.0,
        description="Micro-stop chance added at a failed component: + micro_stop_rise·r_max^p "
        "(r_max: the most worn component of the robot).",
    )
    micro_stop_s: NonNegative = Field(
        default=0.0, description="Seconds a micro-stop takes (running, making nothing)."
    )
    setup_min: NonNegative = Field(
        default=0.0,
        description="Set-up minutes at each product change, spent running but making nothing "
        "before the first part of the new product.",
    )
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


class KindSpec(PlantKindSpec):
    """A robot kind as simulated: the plant's kind plus wear, sensor physics and randomness."""

    cycle_time_cv: Annotated[float, Field(ge=0.0, le=1.0)]
    scrap_probability: Probability
    initial_age_h_max: NonNegative = Field(
        default=0.0,
        description="Each component starts with an operating age drawn uniformly in [0, this].",
    )
    components: Sequence[ComponentSpec] = Field(min_length=1, max_length=16)
    physics: PhysicsSpec = PhysicsSpec()

    @property
    def vibration_at_failure_mm_s(self) -> float:
        explicit = self.physics.vibration_at_failure_mm_s
        return explicit if explicit is not None else ISO10816_ZONES_MM_S[self.vibration_class][2]

    def default_danger_limits(self) -> dict[str, float]:
        """The mean reading of a component at its failure threshold (others new) at full load,
        per the sensor physics."""
        p, s = self.physics, self.sensors
        return {
            "vibration_rms_mm_s": self.vibration_at_failure_mm_s,
            "temperature_c": s.temperature_c.base + p.temperature_rise_c,
            "motor_current_a": s.motor_current_a.base
            * (1.0 + max(p.current_rise_reducer, p.current_rise_servo)),
            "cycle_time_s": s.cycle_time_s.base * (1.0 + p.cycle_time_rise),
        }
