"""Scoring metrics against hand-computed values."""

import math

import pytest

from engine.scoring import (
    RulTrajectory,
    alpha_lambda_accuracy,
    alpha_lambda_hit,
    mtbf,
    mttr,
    oee,
    phm08_score,
    phm08_term,
    prognostic_horizon,
    rul_rmse,
)

E_MINUS_1 = math.e - 1.0  # 1.718281828…


def test_rmse() -> None:
    assert rul_rmse([10.0, 20.0], [12.0, 16.0]) == pytest.approx(math.sqrt(10.0))  # (4 + 16) / 2
    assert rul_rmse([5.0], [5.0]) == 0.0
    assert math.isnan(rul_rmse([], []))
    with pytest.raises(ValueError, match="pair them up"):
        rul_rmse([1.0], [])


def test_phm08_penalises_late_more_than_early() -> None:
    assert phm08_term(-13.0) == pytest.approx(E_MINUS_1)  # 13 h early
    assert phm08_term(10.0) == pytest.approx(E_MINUS_1)  # 10 h late costs the same
    assert phm08_term(0.0) == 0.0
    assert phm08_term(-5.0) < phm08_term(5.0)
    # d = −13, +10, 0
    assert phm08_score([0.0, 20.0, 30.0], [13.0, 10.0, 30.0]) == pytest.approx(2 * E_MINUS_1)


def test_alpha_lambda() -> None:
    # start 0, EoL 100: t_λ = 50, true RUL 50, band [40, 60] for α = 0.2.
    hit = RulTrajectory(0.0, 100.0, [(40.0, 62.0), (50.0, 55.0)])
    carried = RulTrajectory(0.0, 100.0, [(45.0, 63.0)])  # 63 − 5 = 58 at t_λ
    miss = RulTrajectory(0.0, 100.0, [(45.0, 66.0)])  # 61 at t_λ
    late = RulTrajectory(0.0, 100.0, [(60.0, 40.0)])  # nothing by t_λ
    assert alpha_lambda_hit(hit)
    assert alpha_lambda_hit(carried)
    assert not alpha_lambda_hit(miss)
    assert not alpha_lambda_hit(late)
    assert alpha_lambda_accuracy([hit, carried, miss, late]) == 0.5
    assert math.isnan(alpha_lambda_accuracy([]))
    # Band edges are inside; other α and λ move the check.
    assert alpha_lambda_hit(RulTrajectory(0.0, 100.0, [(50.0, 40.0)]))
    assert alpha_lambda_hit(RulTrajectory(0.0, 100.0, [(80.0, 22.0)]), alpha=0.1, lam=0.8)


def test_prognostic_horizon() -> None:
    trajectory = RulTrajectory(
        0.0, 100.0, [(20.0, 60.0), (40.0, 55.0), (60.0, 41.0), (80.0, 19.0)]
    )  # in the ±20 % band from t = 40 on
    assert prognostic_horizon(trajectory) == 60.0
    assert prognostic_horizon(RulTrajectory(0.0, 100.0, [(90.0, 20.0)])) == 0.0


def test_oee() -> None:
    # 8 h planned, 7 h run, 60 s ideal cycle, 400 parts of which 380 good.
    result = oee(28800.0, 25200.0, 60.0, 400, 380)
    assert result.availability == pytest.approx(0.875)
    assert result.performance == pytest.approx(400 * 60 / 25200)
    assert result.quality == pytest.approx(0.95)
    assert result.oee == pytest.approx(0.875 * (24000 / 25200) * 0.95)  # 0.7917
    assert oee(0.0, 0.0, 60.0, 0, 0).oee == 0.0


def test_mtbf_and_mttr() -> None:
    assert mtbf(1000 * 3600.0, 4) == 250 * 3600.0
    assert mtbf(1000.0, 0) == math.inf
    assert mttr([2.0, 4.0, 6.0]) == 4.0
    assert math.isnan(mttr([]))
