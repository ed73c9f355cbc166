"""Across seeds: the mean of each metric and its 95 % confidence interval.

The seeds are independent replications, so each metric's per-seed values are treated as a sample
and the interval is Student's t interval on their mean: mean ± t(0.975, n − 1) · s / √n, with s
the sample standard deviation. With one seed there is no spread to estimate: the interval is the
point. A metric undefined in some seeds (e.g. MTTR in a run without a repair) is averaged over
the seeds where it is defined; undefined everywhere, it is ``None`` (JSON null).

Quantiles of t for 1–30 degrees of freedom are tabulated (they are exact to 9 digits); beyond,
the Cornish–Fisher expansion of Abramowitz & Stegun 26.7.5 in powers of 1/ν is used, which
agrees with the table to 3e-8 at ν = 30 and improves from there.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

#: t(0.975, ν) for ν = 1 … 30.
T975_TABLE = (
    12.706204736,
    4.302652730,
    3.182446305,
    2.776445105,
    2.570581836,
    2.446911851,
    2.364624252,
    2.306004135,
    2.262157163,
    2.228138852,
    2.200985160,
    2.178812830,
    2.160368656,
    2.144786688,
    2.131449546,
    2.119905299,
    2.109815578,
    2.100922040,
    2.093024054,
    2.085963447,
    2.079613845,
    2.073873068,
    2.068657610,
    2.063898562,
    2.059538553,
    2.055529439,
    2.051830516,
    2.048407142,
    2.045229642,
    2.042272456,
)
Z975 = 1.959963984540054


def t975_expansion(df: int) -> float:
    """t(0.975, df) from the Cornish–Fisher expansion (A&S 26.7.5); good for df ≥ 30."""
    z = Z975
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


def t975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` ≥ 1 degrees of freedom."""
    if df < 1:
        raise ValueError(f"t quantile needs at least 1 degree of freedom, got {df}")
    return T975_TABLE[df - 1] if df <= len(T975_TABLE) else t975_expansion(df)


@dataclass(frozen=True, slots=True)
class MeanCI:
    """Mean over ``n`` seeds and its 95 % interval (``None`` throughout if ``n`` is 0)."""

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def half_width(self) -> float | None:
        if self.mean is None or self.high is None:
            return None
        return self.high - self.mean


def mean_ci95(values: Iterable[float | None]) -> MeanCI:
    """Student-t 95 % interval on the mean of the defined values."""
    sample = [v for v in values if v is not None]
    n = len(sample)
    if n == 0:
        return MeanCI(None, None, None, 0)
    mean = statistics.fmean(sample)
    if n == 1:
        return MeanCI(mean, mean, mean, 1)
    half = t975(n - 1) * statistics.stdev(sample) / math.sqrt(n)
    return MeanCI(mean, mean - half, mean + half, n)


def summarise(
    per_run: Mapping[tuple[str, int], Mapping[str, float | None]],
    policies: Sequence[str],
    seeds: Sequence[int],
) -> dict[str, dict[str, MeanCI]]:
    """``{policy: {metric: MeanCI}}`` from ``{(policy, seed): {metric: value}}``, in order."""
    out: dict[str, dict[str, MeanCI]] = {}
    for policy in policies:
        runs = [per_run[(policy, seed)] for seed in seeds]
        metrics = list(runs[0])
        out[policy] = {m: mean_ci95(run.get(m) for run in runs) for m in metrics}
    return out
