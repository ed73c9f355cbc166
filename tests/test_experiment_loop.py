"""The experiment's closed loop: factory + the live maintenance engine, offline, on small factories.

One robot (or the default factory) for a few simulated days: cheap, and each test checks
something the loop could get wrong — policies that must not act, a fault the predictive engine
must catch, truth that must never reach the engine, determinism.
"""

from __future__ import annotations

import itertools

import pytest
from simulator_support import HOUR_S, fault, one_robot

from engine.config import PLAN_INTERVAL_S
from experiment.loop import ClosedLoop
from experiment.runs import RunSpec, plant_metrics, run_one
from simulator.model.records import Record, TruthRecord
from simulator.model.scenario import load_scenario

#: Eight times faster wear of the welder's reducer from the first hour: it fails within ten
#: days when nobody acts (checked in each test as the control), in seeds 1–3.
FAULTY = "reducer-j2"
FAULT_MAGNITUDE = 8.0
DAYS = 10.0


def faulty_loop(policy: str, seed: int) -> ClosedLoop:
    scenario = one_robot()
    injection = fault(
        "r-1",
        "fault-1",
        scenario.start_ts + HOUR_S,
        "accelerated_wear",
        component=FAULTY,
        magnitude=FAULT_MAGNITUDE,
    )
    loop = ClosedLoop(scenario, policy, seed, injections=[injection])
    loop.run(DAYS)
    return loop


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_reactive_never_dispatches_work_even_when_a_component_fails(seed: int) -> None:
    loop = faulty_loop("reactive", seed)
    stats = loop.factory.robots["r-1"].stats
    assert stats.failures[FAULTY] >= 1  # there was something to react to
    assert loop.commands_sent == 0
    assert loop.engine.work_orders() == []
    assert stats.maintenance_jobs == 0
    assert loop.readings > 1000


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_predictive_catches_accelerated_wear_before_it_fails(seed: int) -> None:
    control = faulty_loop("reactive", seed)
    assert control.factory.robots["r-1"].stats.failures[FAULTY] >= 1

    loop = faulty_loop("predictive", seed)
    stats = loop.factory.robots["r-1"].stats
    assert stats.failures[FAULTY] == 0
    orders = [wo for wo in loop.engine.work_orders() if wo.component == FAULTY]
    assert orders, "no work order for the worn component"
    # The order went all the way round the loop: command → robot ack → job → done.
    assert orders[-1].state.value == "done"
    assert stats.replacements[FAULTY] >= 1
    assert loop.commands_sent >= 1
    # The only command the engine did not issue is the fault injection (its ack is "unknown").
    assert loop.engine.stats["unknown_commands"] == 1
    assert loop.engine.stats["lifecycle_conflicts"] == 0


class TruthBlind(ClosedLoop):
    """The same loop with truth records dropped before the router."""

    def _route(self, record: Record) -> None:
        if not isinstance(record, TruthRecord):
            super()._route(record)


def test_the_engine_never_sees_truth() -> None:
    scenario = one_robot()
    with_truth = ClosedLoop(scenario, "predictive", 2)
    without = TruthBlind(scenario, "predictive", 2)
    for loop in (with_truth, without):
        loop.run(20.0)
    orders = [
        (wo.id, wo.component, wo.start_ts, wo.state) for wo in with_truth.engine.work_orders()
    ]
    assert orders, "nothing happened: the comparison would prove nothing"
    assert orders == [
        (wo.id, wo.component, wo.start_ts, wo.state) for wo in without.engine.work_orders()
    ]
    assert with_truth.factory.summary() == without.factory.summary()
    assert with_truth.scorer.finish()
    assert not without.scorer.finish()


def test_planning_runs_at_its_cadence() -> None:
    scenario = one_robot()
    ticks: list[float] = []

    class Counting(ClosedLoop):
        def plan_once(self) -> None:
            ticks.append(self.factory.now_ts)
            super().plan_once()

    Counting(scenario, "reactive", 1).run(1.0)
    # Every interval from the start, up to (not at) the end of the horizon.
    assert len(ticks) == int(86400 / PLAN_INTERVAL_S) - 1
    assert ticks[0] == scenario.start_ts + PLAN_INTERVAL_S
    assert {b - a for a, b in itertools.pairwise(ticks)} == {PLAN_INTERVAL_S}


def test_a_run_is_deterministic_and_its_metrics_are_consistent() -> None:
    scenario = load_scenario()
    spec = RunSpec("preventive", 3, 4.0)
    first, again = run_one(scenario, spec), run_one(scenario, spec)
    assert first.metrics == again.metrics
    m = {k: v for k, v in first.metrics.items() if v is not None}
    assert m["breakdowns"] >= 1  # so the downtime comparisons below mean something
    assert m["oee"] == pytest.approx(m["availability"] * m["performance"] * m["quality"], rel=0.02)
    assert 0.9 < m["availability"] < 1.0
    assert 0.0 < m["production_lost_to_failures_h"] <= m["unplanned_downtime_h"]
    assert m["mttr_h"] >= load_scenario().maintenance.technician_response_h


def test_without_breakdowns_mtbf_is_the_operating_time_and_mttr_is_undefined() -> None:
    loop = ClosedLoop(one_robot(), "reactive", 1)
    loop.run(2.0)
    metrics = plant_metrics(loop)
    stats = loop.factory.robots["r-1"].stats
    assert stats.breakdowns == 0
    assert metrics["mtbf_h"] == pytest.approx(stats.operating_s / HOUR_S)
    assert metrics["mttr_h"] is None


def test_no_work_order_has_a_deadline_before_it_was_made_without_saying_overdue() -> None:
    loop = ClosedLoop(load_scenario(), "predictive", 1)
    loop.run(21.0)
    orders = loop.engine.work_orders()
    assert len(orders) >= 5
    early = [wo for wo in orders if wo.deadline_ts is not None and wo.deadline_ts < wo.created_ts]
    assert early, "the check needs an order whose deadline had passed when it was made"
    for wo in early:
        assert "overdue" in wo.reason, wo.reason
    for wo in orders:
        assert "already past" not in wo.reason
