"""The experiment's arithmetic on known numbers: intervals over seeds, RUL scoring, stop logs."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest

from engine.prognostics import Prognosis
from experiment.aggregate import (
    T975_TABLE,
    mean_ci95,
    summarise,
    t975,
    t975_expansion,
)
from experiment.oracle import (
    mean_passage_direct,
    mean_passage_units,
    oracle_rul_h,
    regularized_lower_gamma,
)
from experiment.rul_scoring import Life, RulScorer, Scored, life_left_metrics, rul_metrics
from experiment.state_log import StateLog
from simulator.model.degradation import draw_life
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


def truth(ts: float, rul_h: float | None, name: str = "reducer", wear: float = 0.5) -> TruthRecord:
    rul_op_s = None if rul_h is None else rul_h * HOUR
    return TruthRecord("r1", ts, (ComponentTruthRecord(name, wear, 1.0, rul_op_s, rul_op_s),))


def prognosis(ts: float, rul_h: float) -> Prognosis:
    return Prognosis("linear", ts, rul_h, rul_h * 0.8, rul_h * 1.2, 0.8, 10, 0.1)


def fixed_oracle(robot: str, truth: ComponentTruthRecord) -> tuple[str, float]:
    """An oracle that says 100 × (1 − wear) hours, so tests can compute it by hand."""
    return "reducer", 100.0 * (1.0 - truth.wear)


class FakeEngine:
    """Stands in for ``engine.prognosis``: returns whatever the test set last."""

    def __init__(self) -> None:
        self.current: Prognosis | None = None

    def prognosis(self, robot: str, component: str) -> Prognosis | None:
        return self.current


def test_scorer_pairs_each_fresh_prediction_once_with_the_truth_of_its_moment() -> None:
    engine = FakeEngine()
    scorer = RulScorer(engine.prognosis, fixed_oracle)
    scorer.on_truth(truth(0.0, 120.0))  # no prediction yet: nothing scored
    engine.current = prognosis(100.0, 110.0)
    scorer.on_truth(truth(100.0, 100.0, wear=0.1))
    scorer.on_truth(truth(400.0, 99.9))  # the same (now stale) prediction: not again
    engine.current = prognosis(500.0, 45.0)
    scorer.on_truth(truth(600.0, 49.0))  # made at another reading's time: not this truth's
    scorer.on_truth(truth(500.0, 50.0, wear=0.6))
    scorer.on_truth(truth(800.0, 48.0))  # the last sample before the job: the life's end
    scorer.on_truth(truth(850.0, 700.0))  # the new part, reported before the job finished
    scorer.on_event("r1", {"kind": "maintenance_finished", "component": "reducer"})
    engine.current = prognosis(900.0, 30.0)
    scorer.on_truth(truth(900.0, 40.0, wear=0.7))  # a new life
    scorer.on_truth(truth(950.0, 0.1, wear=0.7))
    scorer.on_event("r1", {"kind": "failure", "component": "reducer"})
    scorer.on_truth(truth(960.0, 500.0))  # the repaired part, before repair_finished
    scorer.on_event("r1", {"kind": "repair_finished", "component": "reducer"})
    lives = scorer.finish()
    assert [[(s.true_h, s.predicted_h, s.oracle_h) for s in life.scored] for life in lives] == [
        [(100.0, 110.0, 90.0), (50.0, 45.0, pytest.approx(40.0))],
        [(40.0, 30.0, pytest.approx(30.0))],
    ]
    assert [(life.end_true_h, life.failed) for life in lives] == [(48.0, False), (0.0, True)]


def test_life_left_when_planned_work_starts_is_the_truth_of_the_last_sample() -> None:
    scorer = RulScorer(FakeEngine().prognosis, fixed_oracle)
    scorer.on_truth(truth(0.0, 80.0))
    scorer.on_truth(truth(300.0, 79.5))
    scorer.on_event("r1", {"kind": "maintenance_started", "component": "servo"})  # not it
    scorer.on_event("r1", {"kind": "maintenance_started", "component": "reducer"})
    assert scorer.left_at_planned_h == [79.5]
    assert life_left_metrics(scorer.left_at_planned_h) == {"life_left_at_planned_h": 79.5}
    assert life_left_metrics([]) == {"life_left_at_planned_h": None}


def test_every_score_of_a_synthetic_life_by_hand() -> None:
    # Life 1 (a reducer, failed): predictions at true RUL 100, 60 and 20 h; the engine said 110,
    # 45 and 26, the oracle 95, 62 and 18. t_start = −100, t_end = 0, so t_λ = −50: the
    # prediction in force is the one made at t = −60 (true 60 h), scored at its own time.
    # Engine: 45 vs 60, d = −15 (early), outside ±20 % (48…72): a miss. Oracle: 62, a hit.
    # Life 2 (a gripper, cut short by planned work at true RUL 40 h): predictions at true 80 h
    # (said 70; oracle 84) and 50 h (said 75; oracle 47). t_start = −80, t_end = −40, so
    # t_λ = −60 (not −40, the carried-forward time of the old scoring): the prediction in force
    # is the first, 70 vs 80, d = −10, inside 64…96: a hit. Oracle 84 also a hit.
    lives = [
        Life(
            "r1",
            "reducer-j2",
            "reducer",
            [Scored(100.0, 110.0, 95.0), Scored(60.0, 45.0, 62.0), Scored(20.0, 26.0, 18.0)],
            end_true_h=0.0,
            failed=True,
        ),
        Life(
            "r1",
            "gripper",
            "gripper",
            [Scored(80.0, 70.0, 84.0), Scored(50.0, 75.0, 47.0)],
            end_true_h=40.0,
        ),
    ]
    m = rul_metrics(lives, ["gripper", "reducer"])
    engine_sq = [10**2, 15**2, 6**2, 10**2, 25**2]
    oracle_sq = [5**2, 2**2, 2**2, 4**2, 3**2]
    rmse = math.sqrt(sum(engine_sq) / 5)  # √(1086/5) = 14.738
    oracle_rmse = math.sqrt(sum(oracle_sq) / 5)  # √(58/5) = 3.406
    assert m["rul_rmse_h"] == pytest.approx(rmse)
    assert m["rul_oracle_rmse_h"] == pytest.approx(oracle_rmse)
    assert m["rul_rmse_ratio"] == pytest.approx(rmse / oracle_rmse)
    assert m["rul_median_error_h"] == 6.0  # d = 10, −15, 6, −10, 25
    assert m["rul_median_abs_error_h"] == 10.0
    # PHM08 as published, summed over lives: two early errors of 15 h and 10 h.
    terms = [math.exp(15 / 13) - 1, math.exp(10 / 13) - 1]  # 2.1706, 1.1579
    assert m["rul_phm08_score"] == pytest.approx(sum(terms))
    assert m["rul_phm08_score"] == pytest.approx(3.3285, abs=1e-4)
    assert m["rul_phm08_median"] == pytest.approx(sum(terms) / 2)
    # The oracle at t_λ: d = +2 (late) and +4 (late).
    assert m["rul_oracle_phm08_score"] == pytest.approx(math.exp(0.2) - 1 + math.exp(0.4) - 1)
    assert m["rul_alpha_lambda"] == 0.5
    assert m["rul_alpha_lambda_oracle"] == 1.0
    assert m["rul_alpha_lambda_ratio"] == 0.5
    assert (m["rul_lives"], m["rul_lives_cut_short"], m["rul_predictions"]) == (2.0, 1.0, 5.0)
    # Per kind: the gripper alone: errors 10 and 25, oracle 4 and 3.
    assert m["rul_rmse_h.gripper"] == pytest.approx(math.sqrt((100 + 625) / 2))
    assert m["rul_oracle_rmse_h.gripper"] == pytest.approx(math.sqrt((16 + 9) / 2))
    assert m["rul_rmse_ratio.gripper"] == pytest.approx(math.sqrt(725 / 25))
    assert m["rul_alpha_lambda.reducer"] == 0.0
    assert m["rul_alpha_lambda_ratio.reducer"] == 0.0
    assert m["rul_lives.reducer"] == 1.0


def test_interval_coverage_counts_predictions_whose_interval_holds_the_truth() -> None:
    # Reducer: intervals [90, 120] ∋ 100, [50, 58] ∌ 60, [15, 30] ∋ 20 → 2 of 3.
    # Gripper: [60, 90] ∋ 80 → 1 of 1; one prediction without an interval is not counted.
    lives = [
        Life(
            "r1",
            "reducer-j2",
            "reducer",
            [
                Scored(100.0, 110.0, 95.0, 90.0, 120.0, 0.8),
                Scored(60.0, 54.0, 62.0, 50.0, 58.0, 0.8),
                Scored(20.0, 26.0, 18.0, 15.0, 30.0, 0.8),
            ],
            failed=True,
        ),
        Life(
            "r1",
            "gripper",
            "gripper",
            [Scored(80.0, 70.0, 84.0, 60.0, 90.0, 0.8), Scored(50.0, 75.0, 47.0)],
            end_true_h=40.0,
        ),
    ]
    m = rul_metrics(lives, ["gripper", "reducer"])
    assert m["rul_interval_coverage"] == pytest.approx(3 / 4)
    assert m["rul_interval_nominal"] == pytest.approx(0.8)
    assert m["rul_interval_coverage.reducer"] == pytest.approx(2 / 3)
    assert m["rul_interval_coverage.gripper"] == 1.0
    assert rul_metrics([], ["servo"])["rul_interval_coverage.servo"] is None


def test_rul_metrics_without_predictions_are_undefined_not_nan() -> None:
    m = rul_metrics([], ["servo"])
    assert m["rul_rmse_h"] is None
    assert m["rul_rmse_ratio"] is None
    assert m["rul_alpha_lambda"] is None
    assert m["rul_lives"] == 0.0
    assert m["rul_predictions"] == 0.0
    assert m["rul_rmse_ratio.servo"] is None
    assert m["rul_lives.servo"] == 0.0


# --- the oracle -------------------------------------------------------------------------------


def test_mean_passage_of_a_gamma_process_by_hand() -> None:
    # g(x) = ∫ P(s, x) ds. Large x: x + 1/2. At x = 1 it is 1.48121 (numerical integration
    # with a finer grid, step 0.005); at 0 nothing is left to wear.
    assert mean_passage_units(0.0) == 0.0
    assert mean_passage_units(25.0) == 25.5
    assert mean_passage_units(1.0) == pytest.approx(1.48121, abs=2e-4)
    assert mean_passage_units(9.9) == pytest.approx(10.4, abs=1e-4)
    assert mean_passage_units(0.01) == pytest.approx(mean_passage_direct(0.01))
    # The series for P against a closed form: P(1, x) = 1 − e^(−x).
    s = np.array([1.0, 2.0])
    p = regularized_lower_gamma(s, 0.7)
    assert p[0] == pytest.approx(1 - math.exp(-0.7))
    assert p[1] == pytest.approx(1 - math.exp(-0.7) * 1.7)  # P(2, x) = 1 − e^(−x)(1 + x)


def test_oracle_rul_of_a_known_component_by_hand() -> None:
    # pf_mean_h T = 200, pf_cv c = 0.3, threshold 1: a = 1/(c²T) = 1/18 per hour, b = 1/(aT) = 0.09.
    # At wear 0.55, r = 0.45, x = r/b = 5: g(5) = 5.49992, RUL = 18 · 5.49992 = 98.999 h.
    spec = load_scenario().kinds["welder"].components[0]
    assert (spec.pf_mean_h, spec.pf_cv, spec.threshold) == (200.0, 0.3, 1.0)
    assert oracle_rul_h(spec, 0.55) == pytest.approx(18 * 5.49992, abs=0.01)
    assert oracle_rul_h(spec, 1.0) == 0.0


def test_oracle_is_the_mean_of_the_simulators_own_lives() -> None:
    # From the onset (wear 0) the mean time to failure of drawn lives matches the oracle within
    # three standard errors (sd of the failure time ≈ c·T = 60 h; 3000 lives: SE ≈ 1.1 h).
    spec = load_scenario().kinds["welder"].components[0]
    rng = random.Random(5)
    lives = [draw_life(rng, spec) for _ in range(3000)]
    pf_h = [(life.fail_s - life.onset_s) / HOUR for life in lives]
    se = statistics.stdev(pf_h) / math.sqrt(len(pf_h))
    assert abs(statistics.fmean(pf_h) - oracle_rul_h(spec, 0.0)) < 3 * se


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


def test_planned_stops_in_windows_are_those_that_cost_no_production() -> None:
    scenario = load_scenario()  # production Mon–Fri 06–22, downtime window 22–24
    log = StateLog(scenario)
    monday = scenario.start_ts - 6 * HOUR
    robot = scenario.robots[0].id
    assert log.planned_in_window_share() is None  # no planned stop yet
    for start, end in ((22, 23.5), (24 + 10, 24 + 11), (48 + 22, 48 + 24)):
        log.on_state(robot, monday + start * HOUR, "MAINTENANCE")
        log.on_state(robot, monday + end * HOUR, "RUNNING")
    log.close(monday + 72 * HOUR)
    assert log.planned_in_window_share() == pytest.approx(2 / 3)  # Tue 10–11 cost 1 h
    assert log.lost_production_s("MAINTENANCE") == pytest.approx(1 * HOUR)
