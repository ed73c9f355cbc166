"""Policies through the engine: reactive, preventive and predictive planning, manual jobs."""

import re
from collections.abc import Callable
from itertools import pairwise

import pytest
from test_engine_factory import CONFIG, HEALTHY, HOUR, START_TS, feed, make_scenario

from engine import (
    Decision,
    MaintenanceEngine,
    SlotUnavailable,
    UnknownRobot,
    WorkOrderState,
)
from engine.prognostics import Prognosis

S = WorkOrderState


def planner(
    engine: MaintenanceEngine, log: list[Decision], stop_on: str | None = None
) -> Callable[[float, float], bool]:
    """An every_hour callback: plan, keep the decisions, stop at the first of kind ``stop_on``."""

    def every_hour(ts: float, _op_h: float) -> bool:
        decisions = engine.plan(ts)
        log.extend(decisions)
        return any(d.kind == stop_on for d in decisions)

    return every_hour


def reducer_wear(onset_h: float, life_h: float) -> Callable[[float], dict[str, float]]:
    def values(op_h: float) -> dict[str, float]:
        x = max(0.0, op_h - onset_h) / life_h
        return {**HEALTHY, "vibration_rms_mm_s": 0.45 + 4.05 * x}

    return values


def test_reactive_plans_nothing() -> None:
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    log: list[Decision] = []
    last = feed(
        engine, "r11", START_TS, 115, reducer_wear(10, 100), every_hour=planner(engine, log)
    )
    assert {a.severity for a in engine.alarms()} == {"critical"}
    engine.on_event("r11", last + 60, "failure", component="reducer-j2")
    log += engine.plan(last + 120)
    assert log == []
    assert engine.work_orders() == []


def test_preventive_books_each_component_before_it_falls_due() -> None:
    engine = MaintenanceEngine(make_scenario(preventive_interval_h=100), "preventive", CONFIG)
    log: list[Decision] = []
    calendar = engine.scenario.shift_calendar
    last = feed(engine, "r11", START_TS, 40, lambda _: HEALTHY, every_hour=planner(engine, log))
    assert log == []  # 60 operating hours to go: more than the 96 h booking lead
    last = feed(engine, "r11", last + 300, 50, lambda _: HEALTHY, seed=1)
    now = last + 300
    op_h = engine.health("r11").operating_h
    due = calendar.advance_production(now, (100 - op_h) * HOUR)
    decisions = engine.plan(now)
    assert sorted(d.component for d in decisions) == ["gripper", "reducer-j2", "servo-j1"]
    orders = [engine.work_order(d.work_order) for d in decisions]
    for wo in orders:
        assert wo.origin == "preventive"
        assert now <= wo.start_ts
        assert wo.end_ts <= due
        assert wo.lost_production_s == 0.0
        assert wo.reason.startswith("preventive: 91 h of 100 h operating time since tracking")
    # The first job takes the latest downtime window before the due time (Monday night; the
    # Tuesday window opens after it); the robot takes one job at a time, so the other two go
    # to the night after it, where no production is lost.
    [window] = calendar.downtime_windows(now, due)
    first, *others = sorted(orders, key=lambda wo: wo.start_ts)
    assert (first.component, first.placement) == ("reducer-j2", "window")
    assert (first.start_ts, first.end_ts) == (window.start, window.end)
    assert [wo.placement for wo in others] == ["fallback", "fallback"]
    assert "r11 is already booked then" in others[0].reason
    spans = [(wo.start_ts, wo.end_ts) for wo in (first, *others)]
    assert all(a[1] <= b[0] for a, b in pairwise(spans))
    assert engine.plan(now + 60) == []  # booked once
    # A restored component starts a new interval: no new job for it after this one is done.
    gripper = next(wo for wo in orders if wo.component == "gripper")
    engine.on_event("r11", gripper.start_ts, "maintenance_started", command_id=gripper.command_id)
    engine.on_event(
        "r11",
        gripper.end_ts,
        "maintenance_finished",
        component="gripper",
        command_id=gripper.command_id,
    )
    assert engine.work_order(gripper.id).state == S.DONE
    assert [d for d in engine.plan(gripper.end_ts + 60) if d.component == "gripper"] == []


REASON = re.compile(
    r"^predicted failure \d{4}-\d\d-\d\d \d\d:\d\d \(RUL \d+ operating h, 80 % interval "
    r"\d+–\d+ h, (linear|exponential) trend of vibration_rms_mm_s\); placed in "
    r"(Mon|Tue|Wed|Thu|Fri|Sat) \d\d:\d\d–\d\d:\d\d downtime window, [12] of 2 technicians free$"
)


def test_predictive_books_a_window_before_the_predicted_failure() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    log: list[Decision] = []
    when_op: dict[float, float] = {}

    def every_hour(ts: float, op_h: float) -> bool:
        when_op[op_h] = ts
        return bool(planner(engine, log, stop_on="new")(ts, op_h))

    last = feed(engine, "r11", START_TS, 110, reducer_wear(10, 100), every_hour=every_hour)
    [decision] = log
    wo = engine.work_order(decision.work_order)
    assert (decision.kind, wo.component, wo.origin, wo.placement) == (
        "new",
        "reducer-j2",
        "predictive",
        "window",
    )
    assert REASON.match(decision.reason), decision.reason
    assert wo.deadline_ts is not None
    assert wo.end_ts <= wo.deadline_ts <= last + 72 * HOUR
    # Against the truth: the job ends at least the safety margin before the real failure.
    true_failure = engine.scenario.shift_calendar.advance_production(
        last, (110 - max(when_op)) * HOUR
    )
    assert wo.end_ts <= true_failure - 24 * HOUR
    [command] = decision.commands
    assert (command.type, command.start_ts, command.duration_s) == (
        "schedule_maintenance",
        wo.start_ts,
        2 * HOUR,
    )
    assert engine.plan(last + 60) == []  # one job per component


def inject(engine: MaintenanceEngine, now: float, rul_h: float, severity: int = 2) -> None:
    """Hand the reducer of r11 a prognosis (hand-built input for the planner)."""
    signal = engine.fleet.component("r11", "reducer-j2").primary
    signal.severity = severity
    signal.prognosis = Prognosis("linear", now, rul_h, 0.85 * rul_h, 1.15 * rul_h, 0.8, 50, 0.05)


MONDAY_10 = START_TS + 4 * HOUR


def test_predictive_replans_when_the_prediction_moves_and_not_before() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    inject(engine, MONDAY_10, rul_h=60)
    [first] = engine.plan(MONDAY_10)
    wo = engine.work_order(first.work_order)
    assert wo.start_ts == MONDAY_10 + 12 * HOUR  # Monday 22:00
    inject(engine, MONDAY_10 + 600, rul_h=58)  # moved less than the threshold
    assert engine.plan(MONDAY_10 + 600) == []
    inject(engine, MONDAY_10 + 1200, rul_h=12)  # now fails before Monday night
    [moved] = engine.plan(MONDAY_10 + 1200)
    assert moved.kind == "replanned"
    assert moved.cancelled == wo.id
    assert [c.type for c in moved.commands] == ["cancel_maintenance", "schedule_maintenance"]
    assert moved.commands[0].target == wo.command_id
    new = engine.work_order(moved.work_order)
    assert (wo.state, wo.replaced_by, new.replaces) == (S.CANCELLED, new.id, wo.id)
    assert new.placement == "fallback"
    assert new.end_ts <= engine.scenario.shift_calendar.advance_production(
        MONDAY_10 + 1200, 0.85 * 12 * HOUR
    )
    assert moved.reason.startswith("re-planned: predicted failure")
    assert "moved" in moved.reason


def test_predictive_cancels_when_health_recovers_after_a_sensor_fault() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    log: list[Decision] = []

    def drifting(op_h: float) -> dict[str, float]:  # a drifting temperature sensor
        return {**HEALTHY, "temperature_c": 41.0 + 0.6 * max(0.0, op_h - 4)}

    last = feed(engine, "r11", START_TS, 80, drifting, every_hour=planner(engine, log, "new"))
    [new] = log
    assert new.component == "servo-j1"
    log.clear()
    feed(
        engine,
        "r11",
        last + 300,
        3,
        lambda _: HEALTHY,
        seed=2,
        every_hour=planner(engine, log, "cancelled"),
    )
    [cancelled] = log
    assert (cancelled.kind, cancelled.work_order) == ("cancelled", new.work_order)
    assert cancelled.reason.startswith("health recovered: temperature_c")
    assert [c.type for c in cancelled.commands] == ["cancel_maintenance"]
    assert engine.work_order(new.work_order).state == S.CANCELLED


def test_a_failure_cancels_planned_work_and_raises_an_alarm() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    inject(engine, MONDAY_10, rul_h=60)
    [first] = engine.plan(MONDAY_10)
    engine.on_event("r11", MONDAY_10 + HOUR, "failure", component="reducer-j2")
    assert [(a.limit, a.severity) for a in engine.alarms()] == [("failure", "critical")]
    [cancelled] = engine.plan(MONDAY_10 + HOUR + 60)
    assert (cancelled.kind, cancelled.work_order) == ("cancelled", first.work_order)
    assert "failed" in cancelled.reason
    assert engine.health("r11").components[0].health_index == 0.0
    assert engine.plan(MONDAY_10 + 2 * HOUR) == []  # no planned work on a failed component
    engine.on_event("r11", MONDAY_10 + 9 * HOUR, "repair_finished", component="reducer-j2")
    assert engine.alarms() == []
    assert engine.health("r11").components[0].health_index == 1.0


def test_an_unplanned_repair_holds_a_technician() -> None:
    engine = MaintenanceEngine(make_scenario(technicians=1, robots=2), "reactive", CONFIG)
    engine.on_event("r12", MONDAY_10 + 11 * HOUR, "failure", component="gripper")  # Mon 21:00
    decision = engine.request_work_order("r11", "gripper", MONDAY_10)
    # Repair 21:00 + 1 h response + 3 h unplanned repair: the technician is busy till 01:00.
    assert engine.work_order(decision.work_order).start_ts == MONDAY_10 + 36 * HOUR  # Tue 22:00


def test_a_rejected_job_is_retried_after_the_backoff() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    inject(engine, MONDAY_10, rul_h=60)
    [first] = engine.plan(MONDAY_10)
    engine.on_event(
        "r11",
        MONDAY_10 + 60,
        "ack",
        command_id=first.commands[0].id,
        status="rejected",
        reason="busy",
    )
    assert engine.plan(MONDAY_10 + 120) == []
    [again] = engine.plan(MONDAY_10 + 60 + CONFIG.planning.retry_after_reject_s)
    assert again.kind == "new"
    assert again.work_order != first.work_order


def test_manual_work_orders_go_through_the_scheduler() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    decision = engine.request_work_order(
        "r11", "servo-j1", MONDAY_10, requested_by="ana", note="noise"
    )
    wo = engine.work_order(decision.work_order)
    assert (wo.origin, wo.placement, wo.start_ts) == ("manual", "window", MONDAY_10 + 12 * HOUR)
    assert wo.reason.startswith("manual request by ana (noise); placed in Mon 22:00–24:00")
    with pytest.raises(ValueError, match="already plans work on r11 servo-j1"):
        engine.request_work_order("r11", "servo-j1", MONDAY_10)
    with pytest.raises(SlotUnavailable, match="1 of 1 robots stopped"):
        engine.request_work_order("r12", "gripper", MONDAY_10, MONDAY_10 + 12.5 * HOUR)
    exact = engine.request_work_order("r12", "gripper", MONDAY_10, MONDAY_10 + 2 * HOUR)
    assert engine.work_order(exact.work_order).placement == "requested"
    with pytest.raises(UnknownRobot, match="unknown robot 'x9'"):
        engine.request_work_order("x9", "gripper", MONDAY_10)
    with pytest.raises(ValueError, match="its components are reducer-j2, servo-j1, gripper"):
        engine.request_work_order("r11", "wrist", MONDAY_10)
    # The predictive policy leaves manual work alone.
    assert engine.plan(MONDAY_10 + 60) == []


def test_unknown_policy_and_event_kind_are_refused() -> None:
    with pytest.raises(ValueError, match="use one of reactive, preventive, predictive"):
        MaintenanceEngine(make_scenario(), "proactive")
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    with pytest.raises(ValueError, match="unknown event kind 'exploded'"):
        engine.on_event("r11", START_TS, "exploded")
    with pytest.raises(UnknownRobot):
        engine.on_reading("nope", START_TS, {"temperature_c": 40.0})
