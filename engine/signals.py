"""One robot's sensor signal as the engine follows it, reading by reading: the hot path.

A :class:`SignalTrack` chains the cheap ISO 13374 blocks for every reading — despike and smooth
(:mod:`engine.smoothing`), learn the healthy baseline, place the smoothed value on the
severity scale (:mod:`engine.zones`) — and, for a component's primary signal, averages
despiked values into operating-time bins that feed the trend (:mod:`engine.prognostics`).
The expensive step, the RUL fit, runs at most every ``fit_interval_op_s`` of operating time and
only once the signal has left the healthy level. Severity changes and stuck sensors are reported
to the owner (the robot), which raises and clears alarms.
"""

from __future__ import annotations

import math
import statistics
from typing import Protocol

from engine.config import KindConfig, SignalRule
from engine.prognostics import DegradationTrend, Prognosis
from engine.smoothing import Smoother
from engine.wear_model import DesignWear, design_rul
from engine.zones import Limits, resolve_limits, trusted_baseline

INF = math.inf
#: MAD → standard deviation for normal noise.
_MAD_TO_SD = 1.4826


class SignalOwner(Protocol):
    #: RUL fits run for the owner's signals so far (a new prognosis can only come from one).
    fits: int

    def on_severity(self, signal: SignalTrack, old: int, new: int, ts: float) -> None: ...
    def on_stuck(self, signal: SignalTrack, stuck: bool, ts: float) -> None: ...


class SignalTrack(Smoother):
    """Smoothing, baseline, severity and (for primary signals) trend of one signal."""

    __slots__ = (
        "baseline_source",
        "bin_end_op",
        "bin_n",
        "bin_op",
        "bin_sum",
        "cfg",
        "danger",
        "design",
        "down",
        "fit_z",
        "install_op",
        "kind_class",
        "last_fit_op",
        "learned",
        "learning",
        "limits",
        "name",
        "noise_sd",
        "nominal",
        "nominal_noise",
        "onset_level",
        "owner",
        "prognosis",
        "rule",
        "sample_interval_s",
        "severity",
        "stuck_alarm",
        "trend",
        "unit",
        "up",
    )

    def __init__(
        self,
        name: str,
        unit: str,
        rule: SignalRule,
        cfg: KindConfig,
        *,
        nominal: float,
        nominal_noise: float,
        danger: float | None,
        kind_class: str,
        sample_interval_s: float,
        primary: bool,
        fit_z: float,
        owner: SignalOwner,
        design: DesignWear | None = None,
    ) -> None:
        super().__init__(cfg.ewma_alpha, cfg.stuck_readings)
        self.name, self.unit, self.rule, self.cfg = name, unit, rule, cfg
        self.nominal, self.nominal_noise, self.kind_class = nominal, nominal_noise, kind_class
        self.danger = danger
        self.sample_interval_s, self.fit_z, self.owner = sample_interval_s, fit_z, owner
        #: The design data of the component this is the primary signal of (None: trend models).
        self.design = design if cfg.design_wear else None
        self.trend = DegradationTrend(cfg.fit_window_bins) if primary else None
        self.restart(0.0)

    # --- lifecycle -------------------------------------------------------------------------

    def restart(self, op_s: float) -> None:
        """Start over after install/restore: relearn the baseline, forget the trend."""
        self.reset()
        self.learned: list[float] = []
        self.learning = True
        self.stuck_alarm = False
        self.severity = 0
        self.prognosis: Prognosis | None = None
        self.install_op = op_s
        self.last_fit_op = -INF
        self.bin_sum = self.bin_op = 0.0
        self.bin_n = 0
        self.bin_end_op = op_s + self.cfg.bin_op_s
        self._set_baseline(self.nominal, self.nominal_noise, "nominal")

    def _set_baseline(self, baseline: float, noise_sd: float, source: str) -> None:
        self.baseline_source = source
        self.noise_sd = max(noise_sd, 1e-9 * abs(baseline), 1e-12)
        self.limits: Limits = resolve_limits(
            self.rule, baseline, self.kind_class, self.unit, self.danger
        )
        b0, b1, b2 = self.limits.boundaries
        hysteresis = self.cfg.hysteresis_fraction * max(self.limits.failure - baseline, 0.0)
        self.up = [b0, b1, b2, INF]
        self.down = [-INF, b0 - hysteresis, b1 - hysteresis, b2 - hysteresis]
        per_bin = max(1.0, self.cfg.bin_op_s / self.sample_interval_s)
        self.onset_level = baseline + self.cfg.onset_sigma * self.noise_sd / math.sqrt(per_bin)
        if self.trend is not None:
            self.trend.rebase(baseline)

    def _learn(self, m: float) -> None:
        self.learned.append(m)
        if len(self.learned) < self.cfg.baseline_readings:
            return
        learned = statistics.median(self.learned)
        mad = statistics.median(abs(v - learned) for v in self.learned)
        baseline, source = trusted_baseline(self.rule, learned, self.nominal)
        noise = _MAD_TO_SD * mad if source == "learned" else self.nominal_noise
        self.learning = False
        self.learned = []
        self._set_baseline(baseline, noise, source)

    # --- the hot path ----------------------------------------------------------------------

    def update(self, ts: float, op_s: float, x: float) -> None:
        """Take one raw reading at calendar ``ts`` and robot operating time ``op_s``."""
        m = self.push(x)
        if m is None:
            if not self.stuck_alarm:
                self.stuck_alarm = True
                self.owner.on_stuck(self, True, ts)
            return
        if self.stuck_alarm:
            self.stuck_alarm = False
            self.owner.on_stuck(self, False, ts)
        if self.learning:
            self._learn(m)
        level = self.level
        severity = self.severity
        if level >= self.up[severity] or level < self.down[severity]:
            self._reassess(ts)
        if self.trend is not None:
            self.bin_sum += m
            self.bin_op += op_s
            self.bin_n += 1
            if op_s >= self.bin_end_op:
                self._close_bin(ts, op_s)

    # --- the slow paths --------------------------------------------------------------------

    def _reassess(self, ts: float) -> None:
        old = severity = self.severity
        level = self.level
        while severity > 0 and level < self.down[severity]:
            severity -= 1
        while severity < 3 and level >= self.up[severity]:
            severity += 1
        if severity != old:
            self.severity = severity
            if severity == 0:
                self.prognosis = None
            self.owner.on_severity(self, old, severity, ts)

    def _close_bin(self, ts: float, op_s: float) -> None:
        assert self.trend is not None
        mean = self.bin_sum / self.bin_n
        x_h = (self.bin_op / self.bin_n - self.install_op) / 3600.0
        self.trend.add(x_h, mean, self.onset_level)
        self.bin_sum = self.bin_op = 0.0
        self.bin_n = 0
        self.bin_end_op = op_s + self.cfg.bin_op_s
        if self.severity >= 1 and op_s - self.last_fit_op >= self.cfg.fit_interval_op_s:
            self.last_fit_op = op_s
            self.refit(ts, op_s)

    def refit(self, ts: float, op_s: float) -> Prognosis | None:
        """Fit the trend now and keep the result as the current prognosis."""
        if self.trend is None:
            return None
        self.owner.fits += 1
        cfg = self.cfg
        if self.design is not None:
            return self._design_refit(ts)
        result = self.trend.fit(
            (op_s - self.install_op) / 3600.0,
            self.level,
            self.lag_h,
            self.limits.failure,
            self.fit_z,
            cfg.min_fit_bins,
            cfg.min_relative_half_width,
            cfg.max_rul_op_h,
            cfg.max_extrapolation,
        )
        if result is None:
            self.prognosis = None
        else:
            self.prognosis = Prognosis(
                result.model,
                ts,
                result.rul_op_h,
                result.low_op_h,
                result.high_op_h,
                cfg.interval_coverage,
                self.trend.n,
                result.residual_sd,
            )
        return self.prognosis

    def _design_refit(self, ts: float) -> Prognosis | None:
        """The RUL from the design data and the wear the smoothed level shows now."""
        assert self.trend is not None
        assert self.design is not None
        alpha = self.alpha
        rul = design_rul(
            self.design,
            excess=self.level - self.limits.baseline,
            span=self.limits.failure - self.limits.baseline,
            excess_var=self.noise_sd * self.noise_sd * alpha / (2.0 - alpha),
            slope=self.trend.wear_slope(),
            lag_h=self.lag_h,
            z=self.fit_z,
        )
        if rul is None:
            self.prognosis = None
            return None
        mean, low, high = rul
        self.prognosis = Prognosis(
            "gamma", ts, mean, low, high, self.cfg.interval_coverage, self.trend.n, self.noise_sd
        )
        return self.prognosis

    # --- assessment ------------------------------------------------------------------------

    @property
    def lag_h(self) -> float:
        """How far the smoothed value trails a trend: the EWMA's (1 − α)/α samples plus one
        sample for the running median."""
        return ((1.0 - self.alpha) / self.alpha + 1.0) * self.sample_interval_s / 3600.0

    @property
    def baseline(self) -> float:
        return self.limits.baseline

    def health_index(self) -> float:
        """1 at the healthy baseline, 0 at the failure level, linear in between."""
        if self.count == 0:
            return 1.0
        span = self.limits.failure - self.limits.baseline
        if span <= 0.0:
            return 0.0 if self.level >= self.limits.failure else 1.0
        return min(1.0, max(0.0, 1.0 - (self.level - self.limits.baseline) / span))

    def zone(self) -> str:
        return self.limits.name(self.severity)
