"""Component wear: a Weibull-distributed onset, then a gamma process up to a failure threshold.

A component's *life* is drawn whole when it is installed, so its exact failure time is known at
every moment (the truth channel reports it). Time here is the component's *wear age* in seconds:
operating seconds, sped up while an ``accelerated_wear`` fault multiplies the wear rate.

Gamma process (van Noortwijk 2009): after the onset, wear over Δt operating hours grows by
Gamma(shape = a·Δt, scale = b). From the scenario's ``pf_mean_h`` = T, ``pf_cv`` = c and
``threshold`` = w we take a = 1/(c²·T) per hour and b = w/(a·T): the mean wear a·b·t reaches w at
t = T, and the wear at T has standard deviation √(a·T)·b = c·w, i.e. coefficient of variation c.

The path is drawn on a grid of T/256 operating hours (``PATH_STEPS_PER_PF``) with exact gamma
increments and joined by straight lines between grid points; the failure time is where that path
crosses w. The model *is* this path, so the truth is exact; the first passage of the continuous
process lies in the same grid step, so the two differ by less than T/256 (0.4 %).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from plant.calendar import WeeklySet
from simulator.model.kinds import ComponentSpec
from simulator.model.records import ComponentTruthRecord

HOUR_S = 3600.0
#: The contract's bound on a remaining-time horizon; further than that is reported as unknown.
HORIZON_MAX_S = 1e10
PATH_STEPS_PER_PF = 256
#: Draws allowed when conditioning a used component's life on having survived to its age.
MAX_CONDITIONING_DRAWS = 10_000


class LifeError(ValueError):
    """A component life cannot be drawn as the scenario asks."""


@dataclass(frozen=True, slots=True)
class GammaWear:
    """Gamma-process parameters of a component: shape per operating hour and scale."""

    shape_per_h: float
    scale: float

    @classmethod
    def from_spec(cls, spec: ComponentSpec) -> GammaWear:
        shape_per_h = 1.0 / (spec.pf_cv**2 * spec.pf_mean_h)
        return cls(shape_per_h, spec.threshold / (shape_per_h * spec.pf_mean_h))


@dataclass(frozen=True, slots=True)
class Life:
    """One drawn life: onset, wear path and the exact wear age at failure (all in seconds)."""

    onset_s: float
    step_s: float
    path: tuple[float, ...]  # wear at onset + k·step_s; the last point is ≥ threshold
    threshold: float
    fail_s: float

    def wear_at(self, age_s: float) -> float:
        """Wear at a wear age (0 before the onset, ``threshold`` from the failure on)."""
        x_s = age_s - self.onset_s
        if x_s <= 0.0:
            return 0.0
        if age_s >= self.fail_s:
            return self.threshold
        position = x_s / self.step_s
        i = int(position)
        path = self.path
        if i + 1 >= len(path):  # rounding at the very end of the path
            return self.threshold
        low = path[i]
        return low + (path[i + 1] - low) * (position - i)


def draw_life(rng: random.Random, spec: ComponentSpec) -> Life:
    """Draw the life of a new component."""
    wear = GammaWear.from_spec(spec)
    step_h = spec.pf_mean_h / PATH_STEPS_PER_PF
    shape = wear.shape_per_h * step_h
    onset_s = rng.weibullvariate(spec.onset_scale_h, spec.onset_shape) * HOUR_S
    threshold = spec.threshold
    path = [0.0]
    total = 0.0
    gamma = rng.gammavariate
    while total < threshold:
        total += gamma(shape, wear.scale)
        path.append(total)
    below = path[-2]  # the last point below the threshold
    fraction = (threshold - below) / (total - below)
    fail_s = onset_s + (len(path) - 2 + fraction) * step_h * HOUR_S
    return Life(onset_s, step_h * HOUR_S, tuple(path), threshold, fail_s)


def draw_life_at_age(rng: random.Random, spec: ComponentSpec, age_s: float) -> Life:
    """Draw the life of a component that has already worked ``age_s`` without failing.

    Exact conditioning by rejection: lives that would have ended before ``age_s`` are drawn
    again, so the component starts in a state with the law of a new one given its survival.
    """
    for _ in range(MAX_CONDITIONING_DRAWS):
        life = draw_life(rng, spec)
        if life.fail_s > age_s:
            return life
    raise LifeError(
        f"component {spec.name!r} almost never survives {age_s / HOUR_S:.0f} operating hours; "
        "lower the kind's initial_age_h_max"
    )


class ComponentState:
    """A component on a robot: its life, wear age and wear-rate multiplier (mutable)."""

    __slots__ = ("age_s", "index", "kind", "life", "name", "rate", "rate_until_ts", "rng", "spec")

    def __init__(self, spec: ComponentSpec, rng: random.Random, index: int, age_s: float) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = spec.kind
        self.rng = rng
        self.index = index
        self.life = draw_life_at_age(rng, spec, age_s)
        self.age_s = age_s
        self.rate = 1.0
        self.rate_until_ts = math.inf

    def restore(self) -> None:
        """Replace with a new component: wear age 0, a fresh life, normal wear rate."""
        self.life = draw_life(self.rng, self.spec)
        self.age_s = 0.0
        self.rate = 1.0
        self.rate_until_ts = math.inf

    @property
    def wear(self) -> float:
        return self.life.wear_at(self.age_s)

    def op_to_failure_now(self) -> float:
        """Operating seconds to failure at the current wear rate."""
        return max(self.life.fail_s - self.age_s, 0.0) / self.rate

    def rul_op_s(self, production_s_until_rate_end: float) -> float:
        """Operating seconds to failure, if the robot works every production second from now;
        the current rate holds for the given production seconds, then the rate is 1 again."""
        left_s = max(self.life.fail_s - self.age_s, 0.0)
        rate = self.rate
        if rate == 1.0:
            return left_s
        fast_s = production_s_until_rate_end
        if rate * fast_s >= left_s:
            return left_s / rate
        return fast_s + (left_s - rate * fast_s)

    def truth(self, ts: float, production: WeeklySet, position: float) -> ComponentTruthRecord:
        """The true state at ``ts``; ``position`` is ``production.position(ts)``. Remaining
        calendar time assumes the robot works every production second from ``ts``."""
        life = self.life
        if self.rate == 1.0:
            rul_op = max(life.fail_s - self.age_s, 0.0)
        else:
            until = self.rate_until_ts
            fast_s = math.inf if math.isinf(until) else production.position(until) - position
            rul_op = self.rul_op_s(max(fast_s, 0.0))
        rul_s = max(production.time_at(position + rul_op) - ts, 0.0)
        return ComponentTruthRecord(
            self.name,
            life.wear_at(self.age_s),
            life.threshold,
            rul_s if rul_s <= HORIZON_MAX_S else None,
            min(rul_op, HORIZON_MAX_S),
        )
