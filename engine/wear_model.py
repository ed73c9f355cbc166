"""RUL from the component's design data: a gamma-process wear model, its first-passage time, and
a Bayesian update of the wear rate.

A component's maker (or its reliability records) states how long a defect takes to grow to a
failure: the mean P–F interval T (``pf_mean_h``, operating hours) and its coefficient of
variation c (``pf_cv``). Read as a gamma process of wear r (0 new, 1 the failure level; van
Noortwijk 2009), increments over Δt operating hours are Gamma(shape a·Δt, scale b) with
a = 1/(c²·T) per hour and b = c²: the mean wear reaches 1 at T, with spread c there. A gamma
process has independent increments, so what the future holds depends only on the wear *now*: the
engine's job is to read r from the signal (the indicator rises as wear², the square law of the
``quadratic`` trend, so r = √(e / span)), the model does the rest.

**First passage.** With x = (1 − r)/b the remaining wear in scale units, the operating time S·/a
to the failure level has P(S ≤ s) = P(Gamma(s, 1) ≥ x). Its mean is g(x)/a with g(x) = x + ½ for
large x (the small-x correction, from the exact integral g(x) = ∫₀^∞ P(s, x) ds, is tabulated in
``_MEAN_CORRECTION``), and its quantile s_p solves "x is the (1 − p) quantile of Gamma(s, 1)",
with the Wilson–Hilferty approximation of the gamma quantile, solved for s by bisection: within
0.02 of the exact quantile for x ≥ 0.5 and 0.04 down to x = 0.05 (tested against a quadrature),
where the Birnbaum–Saunders approximation misses the median by a third of a scale unit.

**Rate.** A fault can make wear faster than designed. The rate multiplier m (1 = the design rate)
has a two-part prior: the design, N(1, ``PRIOR_SD``²), with weight 1 − ``ANOMALY_PRIOR``, and a
broad N(1, ``ANOMALY_SD``²) for "something is off". The observed rate m̂ of the degradation
segment (its fitted slope, over Δt hours) has variance ≈ 1.2·c²·T·m/Δt at a true rate m (the
least-squares slope of a gamma path; 1.2 for a slope fitted to a random walk rather than its end
points): m = 1 under the design part, m = max(m̂, 1) under the broad one. Each part updates as
normal–normal; the parts are weighted by how well each predicts m̂. Data that fit the design move
it little; a rate several times the design's is many of the design's standard deviations out
within a few hours, and the broad part takes over.

**Interval.** The first-passage quantiles at the present wear estimate, widened by the estimate's
own uncertainty (sensor noise through the square law, and the rate's posterior spread), added in
quadrature on each side.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

#: (x, g(x) − x − ½) from the exact integral of the regularised incomplete gamma function
#: (experiment/oracle.py's quadrature); 0 beyond the last point (< 10⁻⁴ there).
_MEAN_CORRECTION = (
    (0.01, -0.2785),
    (0.015, -0.2611),
    (0.02, -0.2476),
    (0.03, -0.2269),
    (0.04, -0.2109),
    (0.05, -0.1978),
    (0.06, -0.1867),
    (0.08, -0.1685),
    (0.1, -0.1539),
    (0.125, -0.1389),
    (0.15, -0.1266),
    (0.2, -0.1070),
    (0.25, -0.0920),
    (0.3, -0.0801),
    (0.4, -0.0622),
    (0.5, -0.0495),
    (0.6, -0.0400),
    (0.75, -0.0297),
    (1.0, -0.0188),
    (1.25, -0.0123),
    (1.5, -0.0082),
    (2.0, -0.0039),
    (2.5, -0.0019),
    (3.0, -0.0010),
    (4.0, -0.0003),
    (5.0, 0.0),
)
#: Prior of the rate multiplier: the design (sd 10 %), or with this chance something else.
PRIOR_SD = 0.1
ANOMALY_PRIOR = 0.005
ANOMALY_SD = 3.0
#: Bisection steps for a first-passage quantile (relative precision ≈ 2⁻³⁰).
_BISECTION_STEPS = 40


def mean_passage(x: float) -> float:
    """g(x): the mean first-passage time over x scale units of remaining wear, in units of 1/a."""
    if x <= 0.0:
        return 0.0
    table = _MEAN_CORRECTION
    if x >= table[-1][0]:
        return x + 0.5
    if x <= table[0][0]:
        return x + 0.5 + table[0][1]
    for (x0, d0), (x1, d1) in itertools.pairwise(table):
        if x <= x1:
            return x + 0.5 + d0 + (d1 - d0) * (x - x0) / (x1 - x0)
    return x + 0.5  # not reached: the table ends at its last point


def _gamma_quantile(shape: float, z: float) -> float:
    """Wilson–Hilferty: the quantile of Gamma(shape, 1) at standard normal deviate z."""
    v = 1.0 / (9.0 * shape)
    base = 1.0 - v + z * math.sqrt(v)
    return shape * base * base * base if base > 0.0 else 0.0


def passage_quantile(x: float, z: float) -> float:
    """The quantile of the first-passage time (units of 1/a) over x scale units of remaining wear
    at standard normal deviate z (z < 0: an early quantile)."""
    if x <= 0.0:
        return 0.0
    # S ≤ s ⇔ Gamma(s) ≥ x: the p quantile of S is the s whose (1 − p) quantile equals x.
    lo, hi = 0.0, x + 10.0 * math.sqrt(x) + 10.0 + 4.0 * abs(z) * (1.0 + math.sqrt(x))
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if _gamma_quantile(mid, -z) < x:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _normal_pdf(x: float, var: float) -> float:
    return math.exp(-0.5 * x * x / var) / math.sqrt(2.0 * math.pi * var)


def rate_posterior(observed: float | None, unit_var: float) -> tuple[float, float]:
    """(mean, variance) of the rate multiplier given an observed one (None: the prior alone);
    ``unit_var`` is the observation's variance at the design rate, which grows with the rate."""
    if observed is None or not unit_var > 0.0 or math.isinf(unit_var):
        design_var = PRIOR_SD * PRIOR_SD
        mixed = (1.0 - ANOMALY_PRIOR) * design_var + ANOMALY_PRIOR * ANOMALY_SD * ANOMALY_SD
        return 1.0, min(design_var, mixed)
    parts = []
    for weight, sd, at_rate in (
        (1.0 - ANOMALY_PRIOR, PRIOR_SD, 1.0),
        (ANOMALY_PRIOR, ANOMALY_SD, max(observed, 1.0)),
    ):
        prior_var = sd * sd
        observed_var = unit_var * at_rate
        evidence = weight * _normal_pdf(observed - 1.0, prior_var + observed_var)
        var = 1.0 / (1.0 / prior_var + 1.0 / observed_var)
        mean = var * (1.0 / prior_var + observed / observed_var)
        parts.append((evidence, mean, var))
    total = sum(e for e, _, _ in parts)
    if total <= 0.0:  # both parts vanishingly unlikely: m̂ is far out; trust the broad one
        _, mean, var = parts[-1]
        return max(mean, 0.05), var
    mean = sum(e * m for e, m, _ in parts) / total
    var = sum(e * (v + (m - mean) ** 2) for e, m, v in parts) / total
    return max(mean, 0.05), var


@dataclass(frozen=True, slots=True)
class DesignWear:
    """A component's design data: mean P–F interval (operating hours) and its CV."""

    pf_mean_h: float
    pf_cv: float

    @property
    def shape_per_h(self) -> float:
        """a: gamma shape per operating hour."""
        return 1.0 / (self.pf_cv * self.pf_cv * self.pf_mean_h)

    @property
    def scale(self) -> float:
        """b: gamma scale in units of the failure level."""
        return self.pf_cv * self.pf_cv

    def observed_rate(self, slope_per_h: float, span_h: float) -> tuple[float, float]:
        """(m̂, its variance at the design rate) from a wear slope (failure levels per hour)
        fitted over span_h hours."""
        return slope_per_h * self.pf_mean_h, 1.2 * self.pf_cv**2 * self.pf_mean_h / span_h

    def rul(
        self, wear: float, wear_var: float, rate: float, rate_var: float, z: float
    ) -> tuple[float, float, float]:
        """(mean, low, high) remaining operating hours from wear ``wear`` (0–1, estimated with
        variance ``wear_var``) at rate multiplier ``rate`` (variance ``rate_var``); the interval
        is the central one of standard normal deviate ``z`` (1.28 for 80 %)."""
        x = max(1.0 - wear, 0.0) / self.scale
        per_unit_h = 1.0 / (self.shape_per_h * rate)
        mean = mean_passage(x) * per_unit_h
        low = passage_quantile(x, -z) * per_unit_h
        high = passage_quantile(x, z) * per_unit_h
        # d(mean)/d(wear) = −T/m; d(mean)/d(rate) = −mean/m.
        extra_sd = math.sqrt(
            wear_var * (self.pf_mean_h / rate) ** 2 + rate_var * (mean / rate) ** 2
        )
        widen = z * extra_sd
        low = max(mean - math.hypot(mean - low, widen), 0.0)
        high = mean + math.hypot(high - mean, widen)
        return mean, low, high


def design_rul(
    design: DesignWear,
    *,
    excess: float,
    span: float,
    excess_var: float,
    slope: tuple[float, float] | None,
    lag_h: float,
    z: float,
) -> tuple[float, float, float] | None:
    """(mean, low, high) RUL in operating hours from the indicator's excess over its baseline
    (``excess``, variance ``excess_var``) with ``span`` = failure level − baseline, the segment's
    (√excess slope per hour, span in hours), and the smoother's lag; None without a span."""
    if span <= 0.0:
        return None
    wear = math.sqrt(max(excess, 0.0) / span)
    # Delta method through the square law, floored where the excess is within its noise.
    floor = math.sqrt(math.sqrt(excess_var) / span)
    wear_var = excess_var / (4.0 * span * span * max(wear, floor) ** 2)
    observed: float | None = None
    unit_var = math.inf
    if slope is not None:
        observed, unit_var = design.observed_rate(slope[0] / math.sqrt(span), slope[1])
    rate, rate_var = rate_posterior(observed, unit_var)
    # The smoothed level trails the wear by the smoother's lag.
    wear = min(wear + rate * lag_h / design.pf_mean_h, 1.0)
    return design.rul(wear, wear_var, rate, rate_var, z)
