"""The work cycle: parts made while a robot runs, with noisy cycle times, losses and scrap.

Parts are a function of operating time only. A cycle takes the kind's ``cycle_time_s``, slowed
by gripper wear as the cycle-time sensor shows (× (1 + cycle_time_rise · r_gripper^p): the
*speed loss*), times (1 + cycle_time_cv · N(0, 1)), never less than ``MIN_CYCLE_FRACTION`` of
nominal. Each finished part is scrap with probability scrap_probability + scrap_rise·r_gripper^p
(a worn gripper misplaces parts); a cycle ends in a *micro-stop* of ``micro_stop_s`` with
probability micro_stop_probability + micro_stop_rise·r_max^p (r_max: the robot's most worn
component). One uniform draw decides both (scrap below its probability, a micro-stop in the top
band). The normal and the uniform of each part come from the robot's work stream (numpy's PCG64
in blocks, see :class:`WorkCycle`). A product
change costs ``setup_min`` of set-up before the next part (:meth:`WorkCycle.set_up`). A cycle
cut short by a stop resumes where it was. Cycles are counted in arrears when time is accounted,
so they cost no simulation events. Sources and values: docs/scenario.md, *Losses*.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

import numpy as np

from simulator.model.kinds import KindSpec
from simulator.model.stats import RobotStats

#: However the noise falls, a cycle takes at least this fraction of its nominal time.
MIN_CYCLE_FRACTION = 0.2
#: Parts whose random numbers are drawn at once (two blocks of floats, ~64 KiB).
DRAW_BLOCK = 4096


class WorkCycle:
    """One robot's parts: the cycle in progress and the parts not yet reported.

    Each part takes two numbers from the robot's work stream (numpy's PCG64, seeded from
    ``seed_text`` through SHA-256, drawn ``DRAW_BLOCK`` parts at a time): a standard normal for
    its cycle time, already turned into the noise factor max(1 + cv·z, ``MIN_CYCLE_FRACTION``),
    and a uniform for scrap and micro-stop. Python's ``random.gauss`` per part cost a third of
    an experiment run; the block stream has the same distributions (docs/performance.md).
    """

    __slots__ = (
        "_cv",
        "_exponent",
        "_generator",
        "_nominal_s",
        "_parts",
        "_ratios",
        "_rise",
        "_scrap_p",
        "_scrap_rise",
        "_stop_p",
        "_stop_rise",
        "_stop_s",
        "counters",
        "cycle_left_s",
        "good",
        "scrap",
    )

    def __init__(
        self,
        kind: KindSpec,
        seed_text: str,
        loss_ratios: Callable[[], tuple[float, float]],
        counters: RobotStats,
    ) -> None:
        """``loss_ratios()`` gives the wear ratios the losses follow now: the most worn
        gripper's (0 without one) and the most worn component's."""
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
        seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:16], "big")
        self._generator = np.random.Generator(np.random.PCG64(seed))
        self._ratios = loss_ratios
        self.counters = counters
        self.good = self.scrap = 0  # since the last report
        self._parts = self._draw()
        # The first part's noise factor sets the first cycle; its uniform goes unused.
        factor, _ = next(self._parts)
        slowdown = 1.0 + self._rise * loss_ratios()[0] ** self._exponent
        self.cycle_left_s = self._nominal_s * slowdown * factor

    def _draw(self) -> Iterator[tuple[float, float]]:
        """The next block of parts: (noise factor, uniform) of each, in order."""
        z = self._generator.standard_normal(DRAW_BLOCK)
        factors = np.maximum(1.0 + self._cv * z, MIN_CYCLE_FRACTION)
        uniforms = self._generator.random(DRAW_BLOCK)
        return zip(factors.tolist(), uniforms.tolist(), strict=True)

    def run_for(self, operating_s: float) -> None:
        """Work ``operating_s`` more seconds, finishing the parts that fall in them."""
        left = self.cycle_left_s - operating_s
        if left > 0.0:
            self.cycle_left_s = left
            return
        # The hot loop of the policy experiment (~1.1 M parts a run). Wear was brought up to
        # date before this call and does not move within it, so every part finished here sees
        # the same slowdown, scrap and micro-stop odds: worked out once.
        exponent = self._exponent
        gripper_ratio, worst_ratio = self._ratios()
        gripper = gripper_ratio**exponent  # once: slowdown and scrap share it
        scale = self._nominal_s * (1.0 + self._rise * gripper)
        scrap_p = self._scrap_p
        if self._scrap_rise:
            scrap_p += self._scrap_rise * gripper
        stop_p = self._stop_p
        if self._stop_rise:
            stop_p += self._stop_rise * worst_ratio**exponent
        stop_from, stop_s = 1.0 - stop_p, self._stop_s
        good = scrap = 0
        # Each pass finishes the part in progress (``left`` ≤ 0) and starts the next one, until
        # one is still in progress; the block iterator carries over from call to call, so a
        # part costs no index arithmetic.
        while True:
            for factor, u in self._parts:
                if u < scrap_p:
                    scrap += 1
                else:
                    good += 1
                left += scale * factor
                if u >= stop_from:
                    left += stop_s
                if left > 0.0:
                    break
            else:  # the block ran out with the cycle still over: draw the next one
                self._parts = self._draw()
                continue
            break
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
