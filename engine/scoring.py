"""Scoring: prognostics metrics (Saxena et al. 2008/2010) and plant metrics (OEE, MTBF, MTTR).

Pure functions on plain numbers. RUL metrics take **hours**: the PHM08 score's constants (13 and
10) were made for C-MAPSS, whose RULs run to a few hundred cycles; our components' RULs run to a
few hundred operating hours, so an hour plays the role of a cycle and a 10-hour late error costs
e − 1 ≈ 1.7, as a 10-cycle one does there. In days the score would barely register a two-day miss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

#: PHM08 score time constants (hours here): early predictions are penalised less than late ones.
PHM08_EARLY_H = 13.0
PHM08_LATE_H = 10.0


def _pairs(predicted: Sequence[float], true: Sequence[float]) -> list[tuple[float, float]]:
    if len(predicted) != len(true):
        raise ValueError(f"{len(predicted)} predictions but {len(true)} true values; pair them up")
    return list(zip(predicted, true, strict=True))


def rul_rmse(predicted: Sequence[float], true: Sequence[float]) -> float:
    """Root-mean-square error of RUL predictions (same unit as the inputs); NaN if empty."""
    pairs = _pairs(predicted, true)
    if not pairs:
        return math.nan
    return math.sqrt(sum((p - t) ** 2 for p, t in pairs) / len(pairs))


def phm08_term(d_h: float) -> float:
    """Penalty of one error d = predicted − true RUL, hours: exp(−d/13) − 1 if early (d < 0),
    exp(d/10) − 1 if late."""
    return math.exp(-d_h / PHM08_EARLY_H) - 1.0 if d_h < 0 else math.exp(d_h / PHM08_LATE_H) - 1.0


def phm08_score(predicted_h: Sequence[float], true_h: Sequence[float]) -> float:
    """PHM08 score: the sum of :func:`phm08_term` over all predictions (lower is better)."""
    return sum(phm08_term(p - t) for p, t in _pairs(predicted_h, true_h))


@dataclass(frozen=True, slots=True)
class RulTrajectory:
    """The RUL predictions over one component life: ``(time, predicted RUL)`` pairs, hours,
    from ``start`` (when prediction began) to ``end_of_life`` (the true failure time)."""

    start: float
    end_of_life: float
    predictions: Sequence[tuple[float, float]]

    def prediction_at(self, t: float) -> float | None:
        """The latest prediction made at or before ``t``, carried forward to ``t``."""
        made = [(tp, rul) for tp, rul in self.predictions if tp <= t]
        if not made:
            return None
        tp, rul = max(made)
        return rul - (t - tp)


def alpha_lambda_hit(trajectory: RulTrajectory, alpha: float = 0.2, lam: float = 0.5) -> bool:
    """Whether the prediction at t_λ = start + λ·(EoL − start) lies within true RUL ± α·true RUL."""
    t_lambda = trajectory.start + lam * (trajectory.end_of_life - trajectory.start)
    predicted = trajectory.prediction_at(t_lambda)
    if predicted is None:
        return False
    true = trajectory.end_of_life - t_lambda
    return (1.0 - alpha) * true <= predicted <= (1.0 + alpha) * true


def alpha_lambda_accuracy(
    trajectories: Sequence[RulTrajectory], alpha: float = 0.2, lam: float = 0.5
) -> float:
    """Fraction of component lives whose prediction at t_λ is within the α band; NaN if none.

    A life with no prediction by t_λ counts as a miss.
    """
    if not trajectories:
        return math.nan
    return sum(alpha_lambda_hit(t, alpha, lam) for t in trajectories) / len(trajectories)


def prognostic_horizon(trajectory: RulTrajectory, alpha: float = 0.2) -> float:
    """EoL minus the first prediction time from which every prediction stays within ±α·true RUL;
    0 if the last prediction is outside the band (or there are none)."""
    horizon = 0.0
    for t, rul in sorted(trajectory.predictions, reverse=True):
        true = trajectory.end_of_life - t
        if not (1.0 - alpha) * true <= rul <= (1.0 + alpha) * true:
            break
        horizon = trajectory.end_of_life - t
    return horizon


@dataclass(frozen=True, slots=True)
class Oee:
    availability: float
    performance: float
    quality: float

    @property
    def oee(self) -> float:
        return self.availability * self.performance * self.quality


def oee(
    planned_production_s: float,
    run_s: float,
    ideal_cycle_s: float,
    total_count: int,
    good_count: int,
) -> Oee:
    """Nakajima's OEE: availability = run / planned production time; performance = ideal cycle
    time × count / run time; quality = good / total count. A zero denominator gives 0."""
    availability = run_s / planned_production_s if planned_production_s > 0 else 0.0
    performance = ideal_cycle_s * total_count / run_s if run_s > 0 else 0.0
    quality = good_count / total_count if total_count > 0 else 0.0
    return Oee(availability, performance, quality)


def mtbf(operating_s: float, failures: int) -> float:
    """Mean time between failures: operating time / failures (inf with no failure)."""
    return operating_s / failures if failures > 0 else math.inf


def mttr(repair_durations_s: Sequence[float]) -> float:
    """Mean time to repair: the mean repair duration (NaN with no repair)."""
    return sum(repair_durations_s) / len(repair_durations_s) if repair_durations_s else math.nan
