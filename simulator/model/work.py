"""The work cycle: parts made while a robot runs, with noisy cycle times, losses and scrap.

Parts are a function of operating time only. A cycle takes the kind's ``cycle_time_s``, slowed
by gripper wear as the cycle-time sensor shows (× (1 + cycle_time_rise · r_gripper^p): the
*speed loss*), times (1 + cycle_time_cv · N(0, 1)), never less than ``MIN_CYCLE_FRACTION`` of
nominal. Each finished part is scrap with probability scrap_probability + scrap_rise·r_gripper^p
(a worn gripper misplaces parts); a cycle ends in a *micro-stop* of ``micro_stop_s`` with
probability micro_stop_probability + micro_stop_rise·r_max^p (r_max: the robot's most worn
component). One uniform draw decides both (scrap below its probability, a micro-stop in the top
band), so with both rises at zero the draws are those of the model before losses. A product
change costs ``setup_min`` of set-up before the next part (:meth:`WorkCycle.set_up`). A cycle
cut short by a stop resumes where it was. Cycles are counted in arrears when time is accounted,
so they cost no simulation events. Sources and values: docs/scenario.md, *Losses*.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from math import cos, log, sin, sqrt, tau

from simulator.model.kinds import KindSpec
from simulator.model.stats import RobotStats

#: However the noise falls, a cycle takes at least this fraction of its nominal time.
MIN_CYCLE_FRACTION = 0.2


class WorkCycle:
    """One robot's parts: the cycle in progress and the parts not yet reported."""

    __slots__ = (
        "_cv",
        "_exponent",
        "_gripper",
        "_nominal_s",
        "_rise",
        "_rng",
        "_scrap_p",
        "_scrap_rise",
        "_stop_p",
        "_stop_rise",
        "_stop_s",
        "_worst",
        "counters",
        "cycle_left_s",
        "good",
        "scrap",
    )

    def __init__(
        self,
        kind: KindSpec,
        rng: random.Random,
        gripper_ratio: Callable[[], float],
        counters: RobotStats,
        worst_ratio: Callable[[], float] | None = None,
    ) -> None:
        self._nominal_s = kind.cycle_time_s
        self._cv = kind.cycle_time_cv
        self._rise = kind.physics.cycle_time_rise
        self._exponent = kind.physics.wear_exponent
        self._scrap_p = kind.scrap_probability
        physics = kind.physics
        self._scrap_rise = physics.scrap_rise
        self._stop_p = physics.micro_stop_probability
        self._stop_rise = physics.micro_stop_rise
        self._stop_s = physics.micro_stop_s
        self._worst = worst_ratio if worst_ratio is not None else gripper_ratio
        self._rng = rng
        self._gripper = gripper_ratio
        self.counters = counters
        self.good = self.scrap = 0  # since the last report
        self.cycle_left_s = self._next_cycle_s()

    def _next_cycle_s(self) -> float:
        """The first cycle's time (:meth:`run_for` draws the rest the same way, inlined)."""
        slowdown = 1.0 + self._rise * self._gripper() ** self._exponent
        noise = max(1.0 + self._cv * self._rng.gauss(0.0, 1.0), MIN_CYCLE_FRACTION)
        return self._nominal_s * slowdown * noise

    def run_for(self, operating_s: float) -> None:
        """Work ``operating_s`` more seconds, finishing the parts that fall in them."""
        left = self.cycle_left_s - operating_s
        if left > 0.0:
            self.cycle_left_s = left
            return
        # The hot loop of the policy experiment (~1.1 M parts a run). Wear was brought up to
        # date before this call and does not move within it, so every part finished here sees
        # the same slowdown, scrap and micro-stop odds: worked out once. The normal draw is
        # ``random.gauss`` written out (Box–Muller on the same uniforms, the spare normal kept
        # in the generator), so the stream is the one ``rng.gauss`` would give, number for
        # number, without two calls and a ``max`` per part.
        rng = self._rng
        random_ = rng.random
        exponent = self._exponent
        gripper = self._gripper() ** exponent  # once: slowdown and scrap share it
        scale = self._nominal_s * (1.0 + self._rise * gripper)
        scrap_p = self._scrap_p
        if self._scrap_rise:
            scrap_p += self._scrap_rise * gripper
        stop_p = self._stop_p
        if self._stop_rise:
            stop_p += self._stop_rise * self._worst() ** exponent
        stop_from, stop_s, cv = 1.0 - stop_p, self._stop_s, self._cv
        spare = rng.gauss_next
        good = scrap = 0
        while left <= 0.0:
            u = random_()
            if u < scrap_p:
                scrap += 1
            else:
                good += 1
            if spare is None:
                x2pi = random_() * tau
                g2rad = sqrt(-2.0 * log(1.0 - random_()))
                z = cos(x2pi) * g2rad
                spare = sin(x2pi) * g2rad
            else:
                z, spare = spare, None
            noise = 1.0 + cv * z
            left += scale * (noise if noise > MIN_CYCLE_FRACTION else MIN_CYCLE_FRACTION)
            if u >= stop_from:
                left += stop_s
        rng.gauss_next = spare
        self.cycle_left_s = left
        self.good += good
        self.scrap += scrap
        counters = self.counters
        counters.parts_good += good
        counters.parts_scrap += scrap

    def set_up(self, seconds: float) -> None:
        """A product change: ``seconds`` of running before the next part can start."""
        self.cycle_left_s += seconds

    def take_report(self) -> tuple[int, int] | None:
        """(good, scrap) since the last report, or ``None`` if no part was made."""
        if not (self.good or self.scrap):
            return None
        report = (self.good, self.scrap)
        self.good = self.scrap = 0
        return report
