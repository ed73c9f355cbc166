"""Failure risk of waiting: whether to stop production now or wait for time that costs none.

When no job slot that ends before the predicted failure is free of production time, the
scheduler weighs two costs in production seconds: the production a slot *now* takes, against the
expected loss of waiting for the next slot that takes none — the chance that the component fails
first times what a breakdown costs (the technician's response plus the unplanned repair, which
all lands in production in the worst case). It waits only when waiting is cheaper on average.

The chance of failing by a time comes from the prognosis interval, read as quantiles of the
failure time: the low end of the ``coverage`` interval is its (1 − coverage)/2 quantile, the point
estimate its median, the high end its (1 + coverage)/2 quantile; in between, and from now (0)
and up to twice the high end's distance past the median (1), the distribution function is taken
as linear. A documented approximation (choice), not a fitted law; the engine's intervals are
reported with their measured coverage in the experiment (docs/maintenance.md).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FailureRisk:
    """The predicted failure time as calendar quantiles, and what a breakdown would cost."""

    now_ts: float
    low_ts: float
    point_ts: float
    high_ts: float
    coverage: float
    breakdown_loss_s: float

    def probability_by(self, ts: float) -> float:
        """P(failure before ``ts``), piecewise linear through the interval's quantiles."""
        tail = (1.0 - self.coverage) / 2.0
        last = self.high_ts + max(self.high_ts - self.point_ts, 0.0)
        xs = [self.now_ts, self.low_ts, self.point_ts, self.high_ts, last]
        ps = [0.0, tail, 0.5, 1.0 - tail, 1.0]
        # Quantiles may coincide or come before now: keep the knots strictly increasing.
        knots: list[tuple[float, float]] = []
        for x, p in zip(xs, ps, strict=True):
            if knots and x <= knots[-1][0]:
                knots[-1] = (knots[-1][0], max(knots[-1][1], p))
                continue
            knots.append((x, p))
        if ts <= knots[0][0]:
            return knots[0][1]
        if ts >= knots[-1][0]:
            return 1.0
        i = bisect_right([x for x, _ in knots], ts)
        (x0, p0), (x1, p1) = knots[i - 1], knots[i]
        return p0 + (p1 - p0) * (ts - x0) / (x1 - x0)

    def expected_loss_s(self, end_ts: float) -> float:
        """Expected production seconds lost to a breakdown if the job ends at ``end_ts``."""
        return self.probability_by(end_ts) * self.breakdown_loss_s
