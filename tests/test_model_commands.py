"""Commands: planned maintenance, idempotency, expiry, cancellation, and every acknowledgement."""

import pytest
from simulator_support import (
    HOUR_S,
    acks,
    cancel,
    events,
    one_robot,
    run,
    samples,
    schedule,
    states,
    truths,
)

from simulator.model.factory import UnknownRobot
from simulator.model.scenario import Scenario

ROBOT = "r-1"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return one_robot("welder", ROBOT)


def ts_at(scenario: Scenario, hours: float) -> float:
    """Unix time ``hours`` after the scenario start (Monday 06:00)."""
    return scenario.start_ts + hours * HOUR_S


def test_planned_maintenance_stops_restores_and_resumes(scenario: Scenario) -> None:
    start = ts_at(scenario, 4)  # Monday 10:00, mid-shift
    command = schedule(ROBOT, "wo-1", "reducer-j2", start, duration_s=1.5 * HOUR_S)
    records, factory = run(scenario, 5, 1, [(1 * HOUR_S, lambda f: f.handle(command))])
    assert acks(records, "wo-1") == [("accepted", None), ("done", None)]
    changes = [(s.ts, s.state) for s in states(records)]
    assert (start, "MAINTENANCE") in changes
    assert (start + 1.5 * HOUR_S, "RUNNING") in changes  # 11:30, back to production
    started, finished = (
        events(records, "maintenance_started"),
        events(records, "maintenance_finished"),
    )
    assert [e.ts for e in started] == [start]
    assert started[0].body == {
        "kind": "maintenance_started",
        "command_id": "wo-1",
        "component": "reducer-j2",
    }
    assert finished[0].ts == start + 1.5 * HOUR_S
    assert finished[0].body == {
        "kind": "maintenance_finished",
        "command_id": "wo-1",
        "component": "reducer-j2",
        "duration_s": 1.5 * HOUR_S,
        "cost": 900.0,
    }
    # No telemetry while stopped; parts were flushed when it stopped.
    assert not [s for s in samples(records) if start < s.ts < start + 1.5 * HOUR_S]
    assert [e.ts for e in events(records, "parts") if e.ts == start] == [start]
    # The truth resets at the finish: new component, wear 0, a fresh life ahead.
    reset = next(t for t in truths(records) if t.ts == finished[0].ts)
    reducer = next(c for c in reset.components if c.name == "reducer-j2")
    before = [t for t in truths(records) if t.ts < start][-1]
    old = next(c for c in before.components if c.name == "reducer-j2")
    assert reducer.wear == 0.0
    assert reducer.rul_op_s != pytest.approx(old.rul_op_s)
    # ... and the new life is counted down from there by operating time.
    after = next(t for t in truths(records) if t.ts > finished[0].ts)
    later = next(c for c in after.components if c.name == "reducer-j2")
    assert reducer.rul_op_s - later.rul_op_s == pytest.approx(after.ts - finished[0].ts)
    stats = factory.robots[ROBOT].stats
    assert (stats.maintenance_jobs, stats.maintenance_cost) == (1, 900.0)
    assert stats.downtime_planned_s == 1.5 * HOUR_S
    assert stats.replacements["reducer-j2"] == 1


def test_maintenance_in_a_downtime_window_then_idle(scenario: Scenario) -> None:
    start = ts_at(scenario, 16)  # Monday 22:00, the nightly window
    command = schedule(ROBOT, "wo-2", "gripper", start, duration_s=HOUR_S)
    records, _ = run(scenario, 5, 1.2, [(0.0, lambda f: f.handle(command))])
    changes = [(s.ts, s.state, s.reason) for s in states(records) if s.ts >= start]
    assert changes[:2] == [
        (start, "MAINTENANCE", "planned maintenance of gripper (wo-2)"),
        (start + HOUR_S, "IDLE", "planned downtime window"),
    ]
    assert changes[2][:2] == (ts_at(scenario, 24), "RUNNING")  # Tuesday 06:00


def test_duplicate_command_is_acknowledged_but_not_run_twice(scenario: Scenario) -> None:
    start = ts_at(scenario, 4)
    command = schedule(ROBOT, "wo-3", "servo-j1", start)
    actions = [
        (1 * HOUR_S, lambda f: f.handle(command)),
        (2 * HOUR_S, lambda f: f.handle(command)),  # redelivered before the start
        (8 * HOUR_S, lambda f: f.handle(command)),  # and again after it was done
    ]
    records, factory = run(scenario, 5, 1, actions)
    assert len(events(records, "maintenance_started")) == 1
    statuses = acks(records, "wo-3")
    assert [s for s, _ in statuses] == ["accepted", "accepted", "done", "done"]
    assert "duplicate command id" in str(statuses[1][1])
    assert "duplicate command id" in str(statuses[3][1])
    assert factory.robots[ROBOT].stats.maintenance_jobs == 1


def test_expired_command_is_rejected_and_never_run(scenario: Scenario) -> None:
    start = ts_at(scenario, 4)
    late = schedule(
        ROBOT,
        "wo-4",
        "gripper",
        start,
        issued_ts=scenario.start_ts,
        expires_ts=ts_at(scenario, 1.5),
    )
    records, _ = run(scenario, 5, 1, [(2 * HOUR_S, lambda f: f.handle(late))])
    [(status, reason)] = acks(records, "wo-4")
    assert status == "rejected"
    assert "expired at 2026-01-05T07:30:00Z" in str(reason)
    assert not events(records, "maintenance_started")


def test_a_job_that_expires_while_the_robot_is_busy_is_rejected(scenario: Scenario) -> None:
    start = ts_at(scenario, 4)
    first = schedule(ROBOT, "wo-5", "gripper", start, duration_s=2 * HOUR_S)
    second = schedule(ROBOT, "wo-6", "servo-j1", start, expires_ts=start + HOUR_S)
    third = schedule(ROBOT, "wo-7", "reducer-j2", start, expires_ts=start + 3 * HOUR_S)
    actions = [(0.0, lambda f, c=c: f.handle(c)) for c in (first, second, third)]
    records, _ = run(scenario, 5, 1, actions)
    assert acks(records, "wo-5")[-1] == ("done", None)
    status, reason = acks(records, "wo-6")[-1]
    assert status == "rejected"
    assert "while the robot was busy" in str(reason)
    assert acks(records, "wo-7")[-1] == ("done", None)  # queued behind wo-5, still in time
    started = {e.body["command_id"]: e.ts for e in events(records, "maintenance_started")}
    assert started == {"wo-5": start, "wo-7": start + 2 * HOUR_S}


def test_unknown_component_and_wrong_robot_are_rejected(scenario: Scenario) -> None:
    start = ts_at(scenario, 4)
    elbow = schedule(ROBOT, "wo-8", "elbow", start)
    other = schedule("r-2", "wo-9", "gripper", start)
    records, factory = run(
        scenario,
        5,
        0.5,
        [(0.0, lambda f: f.handle(elbow)), (0.0, lambda f: f.robots[ROBOT].handle(other))],
    )
    [(status, reason)] = acks(records, "wo-8")
    assert status == "rejected"
    assert "unknown component 'elbow'" in str(reason)
    assert "reducer-j2, servo-j1, gripper" in str(reason)
    assert acks(records, "wo-9") == [("rejected", "addressed to robot 'r-2'")]
    with pytest.raises(UnknownRobot, match="no robot 'r-2'"):
        factory.handle(other)


def test_cancelling_a_pending_job(scenario: Scenario) -> None:
    start = ts_at(scenario, 4)
    job = schedule(ROBOT, "wo-10", "gripper", start)
    done_job = schedule(ROBOT, "wo-11", "servo-j1", ts_at(scenario, 5))
    actions = [
        (0.0, lambda f: f.handle(job)),
        (0.0, lambda f: f.handle(done_job)),
        (2 * HOUR_S, lambda f: f.handle(cancel(ROBOT, "c-1", "wo-10", ts_at(scenario, 2)))),
        (2 * HOUR_S, lambda f: f.handle(cancel(ROBOT, "c-2", "wo-404", ts_at(scenario, 2)))),
        (3 * HOUR_S, lambda f: f.handle(cancel(ROBOT, "c-3", "wo-10", ts_at(scenario, 3)))),
        (8 * HOUR_S, lambda f: f.handle(cancel(ROBOT, "c-4", "wo-11", ts_at(scenario, 8)))),
    ]
    records, _ = run(scenario, 5, 1, actions)
    assert acks(records, "wo-10") == [("accepted", None), ("rejected", "cancelled by c-1")]
    assert acks(records, "c-1") == [("done", None)]
    assert acks(records, "c-2") == [("rejected", "no maintenance job 'wo-404' on this robot")]
    assert acks(records, "c-3") == [("done", "job wo-10 was already cancelled")]
    assert acks(records, "c-4") == [("rejected", "job wo-11 is already done")]
    assert [e.body["command_id"] for e in events(records, "maintenance_started")] == ["wo-11"]


def test_a_job_whose_start_finds_the_robot_broken_is_rejected(scenario: Scenario) -> None:
    for seed in range(1, 50):  # the first seed whose robot fails within a month
        records, _ = run(scenario, seed, 30)
        if events(records, "failure"):
            break
    failure = events(records, "failure")[0]
    repair = next(e for e in events(records, "repair_finished") if e.ts > failure.ts)
    start = (failure.ts + repair.ts) / 2
    component = next(
        c for c in one_robot().kinds["welder"].components if c.name != failure.body["component"]
    )
    job = schedule(ROBOT, "wo-12", component.name, start, issued_ts=scenario.start_ts)
    with_job, _ = run(scenario, seed, 30, [(0.0, lambda f: f.handle(job))])
    assert acks(with_job, "wo-12") == [
        ("accepted", None),
        ("rejected", "robot is BROKEN at the start time"),
    ]
    rejected = [e for e in events(with_job, "ack") if e.body["status"] == "rejected"]
    assert rejected[0].ts == start
    assert events(with_job, "failure")[0].ts == failure.ts
    assert not events(with_job, "maintenance_started")


def test_a_late_but_unexpired_job_starts_at_once(scenario: Scenario) -> None:
    start = ts_at(scenario, 1)
    job = schedule(ROBOT, "wo-13", "gripper", start, issued_ts=scenario.start_ts)
    records, _ = run(scenario, 5, 0.5, [(1.5 * HOUR_S, lambda f: f.handle(job))])
    assert [e.ts for e in events(records, "maintenance_started")] == [ts_at(scenario, 1.5)]
