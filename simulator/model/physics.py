"""Sensor physics: what a robot's four sensors read, given the wear of its components and the
load of the product it is making.

With r = wear / threshold of a component (0 new, 1 at failure), p the kind's
``physics.wear_exponent`` (2 by default), the most worn component of each kind counting, and
λ the load level of the current product (1 = full load; :class:`LoadSchedule`):

    vibration_rms_mm_s = base · (1 − vibration_load_share · (1 − λ))
                         + (vibration at failure − base) · r_reducer^p
    temperature_c      = base − temperature_load_c · (1 − λ) + temperature_rise_c · r_servo^p
    motor_current_a    = base · (1 − current_load_share · (1 − λ))
                         · (1 + rise_reducer · r_reducer^p + rise_servo · r_servo^p)
    cycle_time_s       = base · (1 + cycle_time_rise · r_gripper^p)

plus white noise of the sensor's ``noise`` standard deviation. At λ = 1 the load terms vanish
(the sensors' ``base`` values are full-load readings), so a kind whose ``load_levels`` is the
default ``[1.0]`` reads exactly as before loads existed. A lighter product lowers the healthy
level a wear rise starts from; it never changes wear, which is a function of operating time only.
Vibration at failure defaults to the ISO 10816-1 C/D limit of the kind's class, so a failing
reducer reads zone D; the current rises are ``physics.current_rise_reducer`` and
``physics.current_rise_servo``. See docs/scenario.md for the reasoning behind each number. The
sensors' names, units and measuring ranges are announced in each robot's birth message
(:func:`birth_body`).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from contract.payloads import METRICS
from simulator.model.kinds import KindSpec
from simulator.model.scenario import Robot

VIBRATION, TEMPERATURE, CURRENT, CYCLE_TIME = (
    "vibration_rms_mm_s",
    "temperature_c",
    "motor_current_a",
    "cycle_time_s",
)
SENSOR_NAMES = (VIBRATION, TEMPERATURE, CURRENT, CYCLE_TIME)
#: Which reading-driving slot each component kind fills (the most worn one of a kind counts).
WEAR_SLOT = {"reducer": 0, "servo": 1, "gripper": 2}
#: Measuring ranges announced in the birth message (a choice: typical transmitter ranges).
TEMPERATURE_RANGE_C = (-20.0, 150.0)
VIBRATION_RANGE_FACTOR = 2.0  # × the vibration at failure
CURRENT_RANGE_FACTOR = 3.0  # × the healthy base current
CYCLE_TIME_RANGE_FACTOR = 3.0  # × the healthy base cycle time


@dataclass(frozen=True, slots=True)
class SensorPhysics:
    """Precomputed constants of one robot kind's sensor model."""

    exponent: float
    vib_base: float
    vib_span: float
    temp_base: float
    temp_rise: float
    cur_base: float
    cur_reducer: float
    cur_servo: float
    cyc_base: float
    cyc_rise: float
    noise: tuple[float, float, float, float]
    vib_load: float
    temp_load: float
    cur_load: float

    @classmethod
    def from_kind(cls, kind: KindSpec) -> SensorPhysics:
        s, p = kind.sensors, kind.physics
        return cls(
            exponent=p.wear_exponent,
            vib_base=s.vibration_rms_mm_s.base,
            vib_span=kind.vibration_at_failure_mm_s - s.vibration_rms_mm_s.base,
            temp_base=s.temperature_c.base,
            temp_rise=p.temperature_rise_c,
            cur_base=s.motor_current_a.base,
            cur_reducer=p.current_rise_reducer,
            cur_servo=p.current_rise_servo,
            cyc_base=s.cycle_time_s.base,
            cyc_rise=p.cycle_time_rise,
            noise=(
                s.vibration_rms_mm_s.noise,
                s.temperature_c.noise,
                s.motor_current_a.noise,
                s.cycle_time_s.noise,
            ),
            vib_load=p.vibration_load_share,
            temp_load=p.temperature_load_c,
            cur_load=p.current_load_share,
        )

    def clean(
        self, r_reducer: float, r_servo: float, r_gripper: float, load: float = 1.0
    ) -> tuple[float, ...]:
        """Noise-free readings (vibration, temperature, current, cycle time) at load ``load``."""
        values = self.readings(r_reducer, r_servo, r_gripper, (0.0, 0.0, 0.0, 0.0), load)
        return tuple(values.values())

    def readings(
        self,
        r_reducer: float,
        r_servo: float,
        r_gripper: float,
        z: Sequence[float],
        load: float = 1.0,
    ) -> dict[str, float]:
        """Readings at load level ``load`` with white noise from four standard normal draws
        ``z`` (one per sensor, always consumed, so the noise stream stays aligned whatever faults
        do afterwards). At ``load`` = 1 the load terms are exact zeros: the same floats as the
        wear-only formulas."""
        p = self.exponent
        red, servo = r_reducer**p, r_servo**p
        slack = 1.0 - load
        n_vib, n_temp, n_cur, n_cyc = self.noise
        vib = self.vib_base * (1.0 - self.vib_load * slack) + self.vib_span * red + n_vib * z[0]
        temp = self.temp_base - self.temp_load * slack + self.temp_rise * servo + n_temp * z[1]
        cur = self.cur_base * (1.0 - self.cur_load * slack)
        cur *= 1.0 + self.cur_reducer * red + self.cur_servo * servo
        cur += n_cur * z[2]
        cyc = self.cyc_base * (1.0 + self.cyc_rise * r_gripper**p) + n_cyc * z[3]
        return {
            VIBRATION: vib if vib > 0.0 else 0.0,
            TEMPERATURE: temp,
            CURRENT: cur if cur > 0.0 else 0.0,
            CYCLE_TIME: cyc if cyc > 0.0 else 0.0,
        }


class LoadSchedule:
    """The load level λ of the product a robot is making, piecewise constant in calendar time.

    Product k runs from ``start_ts + k·load_change_h`` for ``load_change_h`` hours; its level is
    the k-th uniform draw from ``load_levels`` of the robot's own stream (``"{seed}:{robot}:load"``,
    apart from the noise stream, so adding loads moved no noise draw). Products the robot never
    sampled (nights, repairs) are still drawn, and dropped: product k has the same level however
    the robot spent its time, so every maintenance policy sees the same products. A sample in the
    same product costs one division and a comparison.
    """

    __slots__ = ("_index", "_level", "_levels", "_period_s", "_rng", "_start_ts")

    def __init__(
        self, levels: Sequence[float], change_h: float, start_ts: float, seed_text: str
    ) -> None:
        self._levels = tuple(levels)
        self._period_s = change_h * 3600.0
        self._start_ts = start_ts
        self._rng = random.Random(seed_text)
        self._index = -1  # no product drawn yet
        self._level = 1.0

    def level_at(self, ts: float) -> float:
        """λ at calendar time ``ts`` (Unix seconds, never earlier than a previous call)."""
        index = int((ts - self._start_ts) // self._period_s)
        if index != self._index:
            self._advance(index)
        return self._level

    def product_at(self, ts: float) -> int:
        """The index k of the product made at calendar time ``ts`` (no draw: arithmetic only)."""
        return int((ts - self._start_ts) // self._period_s)

    def _advance(self, index: int) -> None:
        if index < self._index:
            raise ValueError(f"load asked for product {index} after product {self._index}")
        levels, choice = self._levels, self._rng.choice
        while self._index < index:
            self._index += 1
            self._level = choice(levels)


class NormalStream:
    """Standard normal draws for sensor noise, made in blocks by numpy and handed out four at a
    time: ~20 ns a draw instead of ~350 ns for ``random.gauss`` (the sampler's hottest cost).
    Seeded from text through SHA-256, so it is the same on every machine and numpy version
    that keeps PCG64's normal stream (numpy ≥ 1.17)."""

    __slots__ = ("_block", "_i", "_numbers", "_rng")

    def __init__(self, seed_text: str, block: int = 4096) -> None:
        seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:16], "big")
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._block = block
        self._numbers: list[float] = []
        self._i = 0

    def take4(self) -> list[float]:
        i = self._i
        if i + 4 > len(self._numbers):
            self._numbers = self._rng.standard_normal(self._block * 4).tolist()
            i = 0
        self._i = i + 4
        return self._numbers[i : i + 4]


def sensor_ranges(kind: KindSpec) -> list[dict[str, Any]]:
    """The birth message's sensor list: name, unit and measuring range."""
    s = kind.sensors
    ranges = {
        VIBRATION: (0.0, VIBRATION_RANGE_FACTOR * kind.vibration_at_failure_mm_s),
        TEMPERATURE: TEMPERATURE_RANGE_C,
        CURRENT: (0.0, CURRENT_RANGE_FACTOR * s.motor_current_a.base),
        CYCLE_TIME: (0.0, CYCLE_TIME_RANGE_FACTOR * s.cycle_time_s.base),
    }
    return [
        {"name": name, "unit": METRICS[name][0], "min": low, "max": high}
        for name, (low, high) in ranges.items()
    ]


def birth_body(robot: Robot) -> dict[str, Any]:
    """The fields of a robot's birth message: kind, place, components and sensors."""
    kind = robot.kind
    return {
        "kind": robot.kind_name,
        "model": kind.model,
        "site": robot.site,
        "area": robot.area,
        "line": robot.line,
        "components": [{"name": c.name, "kind": c.kind} for c in kind.components],
        "sensors": sensor_ranges(kind),
        "sample_interval_s": float(kind.sample_interval_s),
        "vibration_class": kind.vibration_class,
    }


def clamp_to_contract(values: dict[str, float]) -> None:
    """Keep faulted values inside the contract's physical bounds (a spike never breaks it)."""
    for name, value in values.items():
        _, low, high = METRICS[name]
        if value < low:
            values[name] = low
        elif value > high:
            values[name] = high
