"""The experiment's arithmetic on known numbers: intervals over seeds, RUL scoring, stop logs."""

from __future__ import annotations

import math

import pytest

from engine.prognostics import Prognosis
from experiment.aggregate import (
    T975_TABLE,
    mean_ci95,
    summarise,
    t975,
    t975_expansion,
)
from experiment.rul_scoring import Life, RulScorer, life_left_metrics, rul_metrics
from experiment.state_log import StateLog
from simulator.model.records import ComponentTruthRecord, TruthRecord
from simulator.model.scenario import load_scenario

HOUR = 3600.0

# --- mean and Student-t interval ------------------------------------------------------------


def test_interval_by_hand() -> None:
    # mean 2.5; s = sqrt(((1.5² + 0.5²) · 2) / 3) = 1.290994; t(0.975, 3) = 3.182446;
    # half-width = 3.182446 · 1.290994 / 2 = 2.054260.
    ci = mean_ci95([1.0, 2.0, 3.0, 4.0])
    assert ci.mean == 2.5
    assert ci.n == 4
    assert ci.half_width == pytest.approx(2.054260, abs=1e-6)
    assert (ci.low, ci.high) == pytest.approx((0.445740, 4.554260), abs=1e-6)


def test_one_seed_gives_the_point_and_no_seed_gives_nothing() -> None:
    assert mean_ci95([7.25]) == mean_ci95([None, 7.25, None])
    one = mean_ci95([7.25])
    assert (one.mean, one.low, one.high, one.n) == (7.25, 7.25, 7.25, 1)
    none = mean_ci95([None, None])
    assert (none.mean, none.low, none.high, none.n) == (None, None, None, 0)


def test_identical_values_have_a_zero_width_interval() -> None:
    ci = mean_ci95([3.0, 3.0, 3.0])
    assert (ci.low, ci.mean, ci.high) == (3.0, 3.0, 3.0)


def test_undefined_seeds_are_left_out() -> None:
    ci = mean_ci95([2.0, None, 4.0])
    assert ci.n == 2
    assert ci.mean == 3.0
    assert ci.half_width == pytest.approx(12.706204736 * math.sqrt(2.0) / math.sqrt(2.0))


def test_t_quantiles_table_and_expansion_agree() -> None:
    assert t975(1) == pytest.approx(12.7062047)
    assert t975(9) == pytest.approx(2.2621572)
    assert t975_expansion(30) == pytest.approx(T975_TABLE[29], abs=1e-7)
    # Beyond the table: decreasing towards the normal quantile.
    beyond = [t975(df) for df in (31, 60, 120, 10_000)]
    assert beyond == sorted(beyond, reverse=True)
    assert t975(31) < T975_TABLE[29]
    assert t975(10_000) == pytest.approx(1.9602, abs=1e-4)
    with pytest.raises(ValueError, match="degree of freedom"):
        t975(0)


def test_summarise_keeps_policy_order_and_metric_set() -> None:
    per_run: dict[tuple[str, int], dict[str, float | None]] = {
        ("b", 1): {"x": 1.0, "y": None},
        ("b", 2): {"x": 3.0, "y": None},
        ("a", 1): {"x": 10.0, "y": 5.0},
        ("a", 2): {"x": 10.0, "y": 7.0},
    }
    summary = summarise(per_run, ["b", "a"], [1, 2])
    assert list(summary) == ["b", "a"]
    assert summary["b"]["x"].mean == 2.0
    assert summary["b"]["y"].mean is None
    assert summary["a"]["y"].mean == 6.0
    assert summary["a"]["x"].half_width == 0.0


# --- RUL scoring ----------------------------------------------------------------------------


def truth(ts: float, rul_h: float | None, name: str = "reducer") -> TruthRecord:
    rul_op_s = None if rul_h is None else rul_h * HOUR
    return TruthRecord("r1", ts, (ComponentTruthRecord(name, 0.5, 1.0, rul_op_s, rul_op_s),))


def prognosis(ts: float, rul_h: float) -> Prognosis:
    return Prognosis("linear", ts, rul_h, rul_h * 0.8, rul_h * 1.2, 0.8, 10, 0.1)


class FakeEngine:
    """Stands in for ``engine.prognosis``: returns whatever the test set last."""

    def __init__(self) -> None:
        self.current: Prognosis | None = None

    def prognosis(self, robot: str, component: str) -> Prognosis | None:
        return self.current


def test_scorer_pairs_each_fresh_prediction_once_with_the_truth_of_its_moment() -> None:
    engine = FakeEngine()
    scorer = RulScorer(engine.prognosis)
    scorer.on_truth(truth(0.0, 120.0))  # no prediction yet: nothing scored
    engine.current = prognosis(100.0, 110.0)
    scorer.on_truth(truth(100.0, 100.0))
    scorer.on_truth(truth(400.0, 99.9))  # the same (now stale) prediction: not again
    engine.current = prognosis(500.0, 45.0)
    scorer.on_truth(truth(600.0, 49.0))  # made at another reading's time: not this truth's
    scorer.on_truth(truth(500.0, 50.0))
    scorer.on_event("r1", {"kind": "maintenance_finished", "component": "reducer"})
    engine.current = prognosis(900.0, 30.0)
    scorer.on_truth(truth(900.0, 40.0))  # a new life
    lives = scorer.finish()
    assert [life.pairs for life in lives] == [[(100.0, 110.0), (50.0, 45.0)], [(40.0, 30.0)]]


def test_life_left_when_planned_work_starts_is_the_truth_of_the_last_sample() -> None:
    scorer = RulScorer(FakeEngine().prognosis)
    scorer.on_truth(truth(0.0, 80.0))
    scorer.on_truth(truth(300.0, 79.5))
    scorer.on_event("r1", {"kind": "maintenance_started", "component": "servo"})  # not it
    scorer.on_event("r1", {"kind": "maintenance_started", "component": "reducer"})
    assert scorer.left_at_planned_h == [79.5]
    assert life_left_metrics(scorer.left_at_planned_h) == {"life_left_at_planned_h": 79.5}
    assert life_left_metrics([]) == {"life_left_at_planned_h": None}


def test_rul_metrics_by_hand() -> None:
    # Life 1: predictions at true RUL 100 h (said 110) and 50 h (said 45). t_λ is half-way from
    # the first prediction (t = −100) to the end of life (0): t = −50, where the prediction of
    # 45 h against a true 50 h is within ±20 % (a hit) and d = −5 h (early).
    # Life 2: one prediction at true 40 h (said 70): t_λ = −20, carried forward 70 − 20 = 50 h
    # against a true 20 h: a miss, d = +30 h (late).
    lives = [
        Life("r1", "reducer", [(100.0, 110.0), (50.0, 45.0)]),
        Life("r1", "servo", [(40.0, 70.0)]),
    ]
    m = rul_metrics(lives)
    assert m["rul_rmse_h"] == pytest.approx(math.sqrt((10**2 + 5**2 + 30**2) / 3))
    assert m["rul_median_error_h"] == 10.0
    assert m["rul_median_abs_error_h"] == 10.0
    early, late = math.exp(5 / 13) - 1, math.exp(30 / 10) - 1
    assert m["rul_phm08_score"] == pytest.approx((early + late) / 2)
    assert m["rul_phm08_median"] == pytest.approx((early + late) / 2)  # median of two
    assert m["rul_alpha_lambda"] == 0.5
    assert (m["rul_lives"], m["rul_predictions"]) == (2.0, 3.0)


def test_rul_metrics_without_predictions_are_undefined_not_nan() -> None:
    m = rul_metrics([])
    assert m["rul_rmse_h"] is None
    assert m["rul_alpha_lambda"] is None
    assert m["rul_lives"] == 0.0


# --- stops and their cost in production time ------------------------------------------------


def test_state_log_counts_production_time_lost_and_time_to_restore() -> None:
    scenario = load_scenario()  # Mon–Fri 06–22 with breaks 12:00 and 18:00 (30 min)
    log = StateLog(scenario)
    monday = scenario.start_ts - 6 * HOUR  # Monday 00:00
    robot = scenario.robots[0].id

    def at(hours: float) -> float:
        return monday + hours * HOUR

    log.on_state(robot, at(6), "RUNNING")
    log.on_state(robot, at(21), "BROKEN")  # Mon 21:00 → Tue 07:00: 1 h + 1 h of production
    log.on_state(robot, at(24 + 7), "RUNNING")
    log.on_state(robot, at(24 + 11), "MAINTENANCE")  # Tue 11:00–13:00 over the break: 1.5 h
    log.on_state(robot, at(24 + 13), "RUNNING")
    log.on_state(robot, at(24 + 20), "BROKEN")  # still broken at the end (Tue 21:00)
    log.on_event(robot, at(24 + 20), {"kind": "failure", "component": "gripper"})
    log.close(at(24 + 21))
    assert log.lost_production_s("BROKEN") == pytest.approx((2 + 1) * HOUR)
    assert log.lost_production_s("MAINTENANCE") == pytest.approx(1.5 * HOUR)
    assert log.restore_durations_s() == [10 * HOUR]  # the open repair is not complete
    assert [(f.component, f.ts) for f in log.failures] == [("gripper", at(44))]
