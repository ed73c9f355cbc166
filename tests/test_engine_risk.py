"""The failure risk of waiting, and the scheduler's rule 5 that uses it, by hand."""

import dataclasses

import pytest
from test_engine_scheduler import HOUR, at, job, scheduler

from engine.risk import FailureRisk


def risk(breakdown_h: float = 9.0) -> FailureRisk:
    # Now Mon 08:00; 80 % interval Mon 12:00 … Tue 12:00, point Mon 20:00.
    return FailureRisk(at(0, 8), at(0, 12), at(0, 20), at(1, 12), 0.8, breakdown_h * HOUR)


def test_probability_is_linear_through_the_quantiles() -> None:
    r = risk()
    assert r.probability_by(at(0, 8)) == 0.0
    assert r.probability_by(at(0, 10)) == pytest.approx(0.05)  # half-way to the 10 % quantile
    assert r.probability_by(at(0, 12)) == pytest.approx(0.1)
    assert r.probability_by(at(0, 16)) == pytest.approx(0.3)  # half-way from 10 % to 50 %
    assert r.probability_by(at(0, 20)) == pytest.approx(0.5)
    assert r.probability_by(at(1, 12)) == pytest.approx(0.9)
    assert r.probability_by(at(1, 20)) == pytest.approx(0.95)  # half-way to Wed 04:00 (1.0)
    assert r.probability_by(at(2, 4)) == 1.0
    assert r.expected_loss_s(at(0, 16)) == pytest.approx(0.3 * 9 * HOUR)


def test_quantiles_in_the_past_or_equal_keep_the_function_monotone() -> None:
    r = FailureRisk(at(0, 8), at(0, 6), at(0, 8), at(0, 10), 0.8, HOUR)
    values = [r.probability_by(at(0, h)) for h in (7, 8, 9, 10, 11, 12, 13)]
    assert values == sorted(values)
    assert values[-1] == 1.0


def test_waiting_for_time_outside_production_when_it_is_cheaper() -> None:
    # A 1 h job, deadline passed, limit Mon 12:00: rules 1–4 put it at 08:00 now (1 h of
    # production lost). Waiting for Mon 22:00–23:00 risks P(failure by 23:00): past the
    # point (20:00, 50 %) towards the 90 % at Tue 12:00: 0.5 + 0.4 × 3/16 = 0.575.
    cheap = dataclasses.replace(job(hours=1, deadline=at(0, 7), limit=at(0, 12)), risk=risk(1.5))
    placement = scheduler().place(cheap, [])
    assert placement is not None
    # 0.575 × 1.5 h = 0.86 h < 1 h: it waits.
    assert placement.start_ts == at(0, 22)
    assert placement.lost_production_s == 0.0
    assert placement.reason.startswith("overdue: the deadline 2026-01-05 07:00 has passed;")
    assert "waiting is cheaper" in placement.reason
    assert "chance of failing first × 1.5 h of breakdown = 52 min expected loss" in placement.reason
    # A breakdown costing 9 h: 0.575 × 9 = 5.2 h > 1 h, so the job stops production now.
    dear = dataclasses.replace(cheap, risk=risk(9.0))
    placement = scheduler().place(dear, [])
    assert placement is not None
    assert placement.lost_production_s == HOUR
    assert "waiting" not in placement.reason
