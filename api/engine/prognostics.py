"""Prognostics (ISO 13374 block 5): remaining useful life from the trend of a health indicator.

The indicator is a component's primary signal (vibration, temperature or cycle time), despiked and
averaged into bins of operating time. The *degradation segment* is the run of bins since the
signal was last at its healthy baseline (within ``onset_sigma`` bin-noise deviations), capped to the
most recent ``fit_window_bins``. Two models are fitted to it by least squares, both from running
sums so a fit costs O(1) however long the segment is:

* linear, ``y = a + b·t``;
* exponential over the baseline, ``y = baseline + exp(c + d·t)`` (Gebraeel-style), fitted as a
  line in ``log(y − baseline)`` weighted by ``(y − baseline)²`` so that it approximately minimises
  squared errors in the signal's own unit.

The model with the smaller mean squared residual wins; if it is not rising there is no prediction.
RUL is the operating time until the fitted curve reaches the failure level. Its interval comes from
where the curve reaches the failure level ± z·s, with s² the residual variance plus the variance of
the fitted mean at the crossing (the classic prediction band, which widens the further the fit is
extrapolated), and is never narrower than ±``min_relative_half_width``·RUL.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

#: Rebuild the running sums from the stored points after this many removals (rounding drift).
_REBUILD_EVERY = 512


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


class DegradationTrend:
    """Running least-squares sums over the degradation segment of one indicator."""

    __slots__ = (
        "baseline",
        "n",
        "ne",
        "points",
        "removed",
        "sw",
        "swx",
        "swxx",
        "swxz",
        "swz",
        "swzz",
        "sx",
        "sxx",
        "sxy",
        "sy",
        "syy",
        "window",
    )

    def __init__(self, window_bins: int) -> None:
        self.window = max(3, window_bins)
        self.points: deque[tuple[float, float]] = deque()
        self.baseline = 0.0
        self.clear()

    def clear(self) -> None:
        self.points.clear()
        self.removed = 0
        self.n = 0
        self.sx = self.sy = self.sxx = self.sxy = self.syy = 0.0
        self.ne = 0
        self.sw = self.swx = self.swz = self.swxx = self.swxz = self.swzz = 0.0

    def _accumulate(self, x: float, y: float, sign: int) -> None:
        self.n += sign
        self.sx += sign * x
        self.sy += sign * y
        self.sxx += sign * x * x
        self.sxy += sign * x * y
        self.syy += sign * y * y
        excess = y - self.baseline
        if excess > 0.0:
            w = sign * excess * excess
            z = math.log(excess)
            self.ne += sign
            self.sw += w
            self.swx += w * x
            self.swz += w * z
            self.swxx += w * x * x
            self.swxz += w * x * z
            self.swzz += w * z * z

    def rebase(self, baseline: float) -> None:
        """Use a new baseline for the exponential model (recomputes the sums)."""
        self.baseline = baseline
        points = list(self.points)
        self.clear()
        for x, y in points:
            self.points.append((x, y))
            self._accumulate(x, y, 1)

    def add(self, x_h: float, y: float, onset_level: float) -> None:
        """Add one bin (operating hours, mean value); a bin at baseline restarts the segment."""
        if y <= onset_level and self.points:
            self.clear()
        self.points.append((x_h, y))
        self._accumulate(x_h, y, 1)
        if len(self.points) > self.window:
            old_x, old_y = self.points.popleft()
            self._accumulate(old_x, old_y, -1)
            self.removed += 1
            if self.removed >= _REBUILD_EVERY:
                self.rebase(self.baseline)

    def fit(
        self,
        now_op_h: float,
        failure_level: float,
        z: float,
        min_bins: int,
        min_relative_half_width: float,
        max_rul_op_h: float,
    ) -> tuple[str, float, float, float, float] | None:
        """(model, RUL, low, high, residual sd) in operating hours; None without a rising trend."""
        lin = self._fit_linear(failure_level, z) if self.n >= max(3, min_bins) else None
        expo = self._fit_exponential(failure_level, z) if self.ne >= max(3, min_bins) else None
        candidates = [c for c in (lin, expo) if c is not None]
        if not candidates:
            return None
        model, mse, rising, cross_h, low_h, high_h = min(candidates, key=lambda c: c[1])
        if not rising:
            return None
        rul = max(cross_h - now_op_h, 0.0)
        if rul > max_rul_op_h:
            return None
        low = min(max(low_h - now_op_h, 0.0), rul * (1.0 - min_relative_half_width))
        high = max(high_h - now_op_h, rul * (1.0 + min_relative_half_width))
        return model, rul, low, high, math.sqrt(mse)

    def _fit_linear(
        self, level: float, z: float
    ) -> tuple[str, float, bool, float, float, float] | None:
        n = self.n
        mean_x = self.sx / n
        s_xx = self.sxx - self.sx * mean_x
        if s_xx <= 0.0:
            return None
        s_xy = self.sxy - self.sx * self.sy / n
        s_yy = self.syy - self.sy * self.sy / n
        slope = s_xy / s_xx
        intercept = self.sy / n - slope * mean_x
        mse = max(s_yy - slope * s_xy, 0.0) / (n - 2)
        if slope <= 0.0:
            return "linear", mse, False, 0.0, 0.0, 0.0
        cross = (level - intercept) / slope
        var_mean = mse * (1.0 / n + (cross - mean_x) ** 2 / s_xx)
        half = z * math.sqrt(mse + var_mean)
        return (
            "linear",
            mse,
            True,
            cross,
            (level - half - intercept) / slope,
            (level + half - intercept) / slope,
        )

    def _fit_exponential(
        self, level: float, z: float
    ) -> tuple[str, float, bool, float, float, float] | None:
        w, ne = self.sw, self.ne
        if w <= 0.0 or level <= self.baseline:
            return None
        mean_x = self.swx / w
        s_xx = self.swxx - self.swx * mean_x
        if s_xx <= 0.0:
            return None
        s_xz = self.swxz - self.swx * self.swz / w
        s_zz = self.swzz - self.swz * self.swz / w
        rate = s_xz / s_xx
        offset = self.swz / w - rate * mean_x
        # Weighted by excess², the log residuals are (approximately) residuals in signal units.
        mse = max(s_zz - rate * s_xz, 0.0) / (ne - 2)
        if rate <= 0.0:
            return "exponential", mse, False, 0.0, 0.0, 0.0
        z_level = math.log(level - self.baseline)
        cross = (z_level - offset) / rate
        var_mean_log = mse * (1.0 / w + (cross - mean_x) ** 2 / s_xx)
        obs_log = mse / (level - self.baseline) ** 2
        half = z * math.sqrt(obs_log + var_mean_log)
        return (
            "exponential",
            mse,
            True,
            cross,
            (z_level - half - offset) / rate,
            (z_level + half - offset) / rate,
        )
