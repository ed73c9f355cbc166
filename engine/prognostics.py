"""Prognostics (ISO 13374 block 5): remaining useful life from the trend of a health indicator.

The indicator is a component's primary signal (vibration, temperature or cycle time), despiked and
averaged into bins of operating time. The *degradation segment* is the run of bins since the
signal was last at its healthy baseline (within ``onset_sigma`` bin-noise deviations), capped to the
most recent ``fit_window_bins``. With e = value − baseline, three trend models are fitted to it,
each as a straight line ``z = a + μ·t`` in a transformed indicator, by weighted least squares from
running sums (a fit costs O(1) however long the segment is):

=============  ===================  =========  ==================================================
model          z                    weight     shape of the indicator
=============  ===================  =========  ==================================================
linear         value                1          base + k·t
quadratic      √e                   4·e        base + c·(t − t₀)²: wear growing linearly, read
                                               through a square law (e.g. vibration ∝ wear²)
exponential    ln e                 e²         base + θ·exp(β·t) (Gebraeel 2005)
=============  ===================  =========  ==================================================

The weights make each fit approximately least squares in the signal's own unit, so the models are
compared on their weighted residual variance; the smallest wins. If its slope μ is not positive
there is no prediction.

RUL: the transformed indicator is treated as a Wiener process with drift μ (the fitted slope) and
diffusion σ² (estimated from the increments of the segment over a lag of several bins, net of the
drift). Starting from the present smoothed value z₀ (moved along the slope by the smoother's
lag), the operating time to reach the failure level
z_L is inverse-Gaussian with mean D/μ (D = z_L − z₀) and variance D·σ²/μ³; the uncertainty of μ
itself adds D²·Var(μ)/μ⁴. The point RUL is the mean; the interval is the central ``coverage``
interval of a lognormal with that mean and variance, never narrower than
±``min_relative_half_width``·RUL. So the interval widens with the distance still to go and with
how erratic the degradation has been — a gamma-process wear path is far from a smooth curve.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

MODELS = ("linear", "quadratic", "exponential")
#: Rebuild the running sums from the stored points after this many removals (rounding drift).
_REBUILD_EVERY = 512
#: Increments for the diffusion estimate span this many bins (fewer in a short segment).
DIFFUSION_LAG_BINS = 8


@dataclass(slots=True)
class Prognosis:
    """One RUL estimate, in operating hours, as of a fit; calendar times are filled on demand."""

    model: str
    as_of_ts: float
    rul_op_h: float
    rul_low_op_h: float
    rul_high_op_h: float
    coverage: float
    n_bins: int
    residual_sd: float
    failure_ts: float | None = None
    failure_low_ts: float | None = None
    failure_high_ts: float | None = None

    def to_calendar(self, advance: Callable[[float, float], float]) -> tuple[float, float, float]:
        """Predicted failure times (point, low, high) as calendar timestamps.

        ``advance(ts, op_s)`` is the calendar's ``advance_production``: the robot only wears while
        it works, so operating hours are laid onto the production windows ahead.
        """
        if self.failure_ts is None or self.failure_low_ts is None or self.failure_high_ts is None:
            self.failure_ts = advance(self.as_of_ts, self.rul_op_h * 3600.0)
            self.failure_low_ts = advance(self.as_of_ts, self.rul_low_op_h * 3600.0)
            self.failure_high_ts = advance(self.as_of_ts, self.rul_high_op_h * 3600.0)
        return self.failure_ts, self.failure_low_ts, self.failure_high_ts


def z_for(coverage: float) -> float:
    """Two-sided standard-normal quantile for a central interval of ``coverage``."""
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"interval coverage must be in (0, 1), got {coverage}")
    return NormalDist().inv_cdf(0.5 + coverage / 2.0)


def transform(model: str, value: float, baseline: float) -> tuple[float, float] | None:
    """(z, weight) of one value in a model's space; None where the model is undefined."""
    if model == "linear":
        return value, 1.0
    excess = value - baseline
    if excess <= 0.0:
        return None
    if model == "quadratic":
        return math.sqrt(excess), 4.0 * excess
    return math.log(excess), excess * excess


class _Sums:
    """Weighted least-squares sums of (t, z) pairs."""

    __slots__ = ("n", "w", "wx", "wxx", "wxz", "wz", "wzz")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.n = 0
        self.w = self.wx = self.wz = self.wxx = self.wxz = self.wzz = 0.0

    def add(self, x: float, z: float, w: float, sign: int) -> None:
        self.n += sign
        w *= sign
        self.w += w
        self.wx += w * x
        self.wz += w * z
        self.wxx += w * x * x
        self.wxz += w * x * z
        self.wzz += w * z * z

    def line(self) -> tuple[float, float, float, float, float] | None:
        """(slope, intercept, residual variance, Var(slope), weighted mean t) or None."""
        if self.n < 3 or self.w <= 0.0:
            return None
        mean_x = self.wx / self.w
        s_xx = self.wxx - self.wx * mean_x
        if s_xx <= 0.0:
            return None
        s_xz = self.wxz - self.wx * self.wz / self.w
        s_zz = self.wzz - self.wz * self.wz / self.w
        slope = s_xz / s_xx
        mse = max(s_zz - slope * s_xz, 0.0) / (self.n - 2)
        return slope, self.wz / self.w - slope * mean_x, mse, mse / s_xx, mean_x


@dataclass(frozen=True, slots=True)
class TrendFit:
    model: str
    rul_op_h: float
    low_op_h: float
    high_op_h: float
    residual_sd: float


class DegradationTrend:
    """The degradation segment of one indicator and the running sums of each model."""

    __slots__ = ("baseline", "pending", "points", "removed", "sums", "window")

    def __init__(self, window_bins: int) -> None:
        self.window = max(3, window_bins)
        self.points: deque[tuple[float, float]] = deque()
        self.baseline = 0.0
        self.sums = {m: _Sums() for m in MODELS}
        #: The segment is only its anchor (a bin at baseline), not yet in the sums: while the
        #: signal stays healthy the anchor moves every bin, and that must cost next to nothing.
        self.pending = False
        self.removed = 0

    @property
    def n(self) -> int:
        return len(self.points)

    def clear(self) -> None:
        self.points.clear()
        for sums in self.sums.values():
            sums.reset()
        self.pending = False
        self.removed = 0

    def _accumulate(self, x: float, y: float, sign: int) -> None:
        sums = self.sums
        sums["linear"].add(x, y, 1.0, sign)
        excess = y - self.baseline
        if excess > 0.0:  # transform() for the other two models, inlined (once per bin)
            sums["quadratic"].add(x, math.sqrt(excess), 4.0 * excess, sign)
            sums["exponential"].add(x, math.log(excess), excess * excess, sign)

    def rebase(self, baseline: float) -> None:
        """Use a new baseline (recomputes the sums)."""
        self.baseline = baseline
        points, pending = list(self.points), self.pending
        self.clear()
        self.points.extend(points)
        self.pending = pending
        if not pending:
            for x, y in points:
                self._accumulate(x, y, 1)

    def add(self, x_h: float, y: float, onset_level: float) -> None:
        """Add one bin (operating hours, mean value); a bin at baseline restarts the segment."""
        if y <= onset_level:
            if self.pending:
                self.points.clear()
            elif self.points:
                self.clear()
            self.points.append((x_h, y))
            self.pending = True
            return
        if self.pending:
            self.pending = False
            anchor_x, anchor_y = self.points[0]
            self._accumulate(anchor_x, anchor_y, 1)
        self.points.append((x_h, y))
        self._accumulate(x_h, y, 1)
        if len(self.points) > self.window:
            old_x, old_y = self.points.popleft()
            self._accumulate(old_x, old_y, -1)
            self.removed += 1
            if self.removed >= _REBUILD_EVERY:
                self.rebase(self.baseline)

    def wear_slope(self) -> tuple[float, float] | None:
        """(slope of √e per operating hour, span of the segment in hours) of the quadratic model:
        the wear rate where the indicator rises as wear²; None before there is a line."""
        if self.pending or len(self.points) < 3:
            return None
        line = self.sums["quadratic"].line()
        span_h = self.points[-1][0] - self.points[0][0]
        if line is None or span_h <= 0.0:
            return None
        return line[0], span_h

    def fit(
        self,
        now_op_h: float,
        level_now: float,
        level_lag_h: float,
        failure_level: float,
        z: float,
        min_bins: int,
        min_relative_half_width: float,
        max_rul_op_h: float,
        max_extrapolation: float = math.inf,
    ) -> TrendFit | None:
        """RUL (point and interval, operating hours) from now; None without a rising trend.

        ``level_now`` is the present smoothed value, which lags the signal by ``level_lag_h``.
        """
        best: tuple[float, str, tuple[float, float, float, float, float]] | None = None
        for model, sums in self.sums.items():
            if sums.n < max(3, min_bins):
                continue
            line = sums.line()
            if line is not None and (best is None or line[2] < best[0]):
                best = (line[2], model, line)
        if best is None:
            return None
        mse, model, (slope, intercept, _, var_slope, _) = best
        target = transform(model, failure_level, self.baseline)
        if slope <= 0.0 or target is None:
            return None
        here = transform(model, level_now, self.baseline)
        # The smoothed value trails the trend by ``level_lag_h``: move it up the fitted slope.
        z_now = here[0] + slope * level_lag_h if here is not None else intercept + slope * now_op_h
        distance = target[0] - z_now
        if distance <= 0.0:
            return TrendFit(model, 0.0, 0.0, 0.0, math.sqrt(mse))
        rul = distance / slope
        span_h = self.points[-1][0] - self.points[0][0]
        if rul > max_rul_op_h or rul > max_extrapolation * span_h:
            return None
        diffusion = self._diffusion(model, slope)
        variance = distance * diffusion / slope**3 + distance**2 * var_slope / slope**4
        s2 = math.log1p(variance / (rul * rul))
        median = rul * math.exp(-0.5 * s2)
        low = min(median * math.exp(-z * math.sqrt(s2)), rul * (1.0 - min_relative_half_width))
        high = max(median * math.exp(z * math.sqrt(s2)), rul * (1.0 + min_relative_half_width))
        return TrendFit(model, rul, low, high, math.sqrt(mse))

    def _diffusion(self, model: str, slope: float) -> float:
        """σ² per operating hour of the transformed indicator, from lagged increments."""
        points = self.points
        lag = max(1, min(DIFFUSION_LAG_BINS, len(points) // 4))
        base = self.baseline
        if model == "linear":
            zs = list(points)
        elif model == "quadratic":
            zs = [(x, math.sqrt(y - base)) for x, y in points if y > base]
        else:
            zs = [(x, math.log(y - base)) for x, y in points if y > base]
        total_sq = total_dt = 0.0
        for i in range(lag, len(zs)):
            dt = zs[i][0] - zs[i - lag][0]
            if dt > 0.0:
                d = zs[i][1] - zs[i - lag][1] - slope * dt
                total_sq += d * d
                total_dt += dt
        return total_sq / total_dt if total_dt > 0.0 else 0.0
