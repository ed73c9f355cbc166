"""Work-order lifecycle (legal and illegal transitions), expiry, commands as contract payloads."""

from dataclasses import asdict

import pytest
from test_engine_factory import CONFIG, HOUR, START_TS, make_scenario

from contract.codec import decode, encode
from contract.payloads import CancelMaintenance, ScheduleMaintenance
from engine import IllegalTransition, MaintenanceEngine, WorkOrder, WorkOrderState
from engine.commands import command_payload
from engine.work_orders import TRANSITIONS, advance, transition

S = WorkOrderState


def order(state: WorkOrderState = S.PLANNED) -> WorkOrder:
    return WorkOrder(
        id="wo-000001",
        robot="r11",
        line="line-1",
        component="gripper",
        origin="manual",
        state=state,
        start_ts=1000.0,
        duration_s=3600.0,
        expires_ts=4600.0,
        command_id="wo-000001.schedule",
        created_ts=0.0,
        reason="test",
        placement="requested",
    )


@pytest.mark.parametrize(
    "path",
    [
        [S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.DONE],
        [S.DISPATCHED, S.IN_PROGRESS, S.DONE],
        [S.CANCELLED],
        [S.DISPATCHED, S.ACKNOWLEDGED, S.CANCELLED],
        [S.DISPATCHED, S.EXPIRED],
        [S.EXPIRED],
        [S.DISPATCHED, S.REJECTED],
        [S.DISPATCHED, S.ACKNOWLEDGED, S.REJECTED],
    ],
)
def test_legal_paths(path: list[WorkOrderState]) -> None:
    wo = order()
    for i, state in enumerate(path):
        transition(wo, state, float(i), f"step {i}")
    assert wo.state == path[-1]
    assert [h.to_state for h in wo.history] == [s.value for s in path]


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.PLANNED, S.DONE),
        (S.PLANNED, S.IN_PROGRESS),
        (S.PLANNED, S.REJECTED),
        (S.IN_PROGRESS, S.CANCELLED),
        (S.IN_PROGRESS, S.EXPIRED),
        (S.DONE, S.CANCELLED),
        (S.CANCELLED, S.DISPATCHED),
        (S.EXPIRED, S.IN_PROGRESS),
        (S.REJECTED, S.ACKNOWLEDGED),
        (S.ACKNOWLEDGED, S.DISPATCHED),
    ],
)
def test_illegal_transitions_are_refused(start: WorkOrderState, to: WorkOrderState) -> None:
    wo = order(start)
    with pytest.raises(IllegalTransition, match=f"is {start.value}; it cannot become {to.value}"):
        transition(wo, to, 1.0, "nope")
    assert wo.state == start
    assert wo.history == []


def test_terminal_states_have_no_way_out() -> None:
    for state in (S.DONE, S.CANCELLED, S.EXPIRED, S.REJECTED):
        assert TRANSITIONS[state] == frozenset()


def test_advance_walks_the_implied_path() -> None:
    wo = order()
    assert advance(wo, S.DONE, 5.0, "robot reports the job done")
    assert [h.to_state for h in wo.history] == ["dispatched", "acknowledged", "in_progress", "done"]
    assert wo.history[0].reason == "implied by: robot reports the job done"
    assert not advance(wo, S.DONE, 6.0, "again")  # idempotent
    cancelled = order(S.CANCELLED)
    with pytest.raises(IllegalTransition):
        advance(cancelled, S.IN_PROGRESS, 1.0, "started anyway")


def manual_engine() -> tuple[MaintenanceEngine, str, str]:
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    decision = engine.request_work_order("r11", "gripper", START_TS, START_TS + 2 * HOUR)
    return engine, decision.work_order, decision.commands[0].id


def test_engine_events_drive_the_lifecycle() -> None:
    engine, wo_id, command_id = manual_engine()
    assert engine.work_order(wo_id).state == S.PLANNED
    engine.mark_dispatched(wo_id, START_TS + 1)
    engine.on_event("r11", START_TS + 2, "ack", command_id=command_id, status="accepted")
    assert engine.work_order(wo_id).state == S.ACKNOWLEDGED
    engine.on_event(
        "r11",
        START_TS + 2 * HOUR,
        "maintenance_started",
        command_id=command_id,
        component="gripper",
    )
    assert engine.work_order(wo_id).state == S.IN_PROGRESS
    # In progress: the planner may no longer cancel it.
    with pytest.raises(IllegalTransition):
        engine.cancel_work_order(wo_id, START_TS + 2 * HOUR + 60, "changed my mind")
    # The finish event names no component: the work order says which one was restored.
    engine.on_event("r11", START_TS + 3 * HOUR, "maintenance_finished", command_id=command_id)
    engine.on_event("r11", START_TS + 3 * HOUR + 60, "ack", command_id=command_id, status="done")
    gripper = engine.fleet.component("r11", "gripper")
    assert gripper.installed_ts == START_TS + 3 * HOUR  # restored once, by the finish event
    wo = engine.work_order(wo_id)
    assert wo.state == S.DONE
    assert [h.to_state for h in wo.history] == [
        "planned",
        "dispatched",
        "acknowledged",
        "in_progress",
        "done",
    ]
    assert engine.stats["lifecycle_conflicts"] == 0


def test_a_rejected_command_rejects_the_work_order() -> None:
    engine, wo_id, command_id = manual_engine()
    engine.on_event(
        "r11",
        START_TS + 5,
        "ack",
        command_id=command_id,
        status="rejected",
        reason="robot is broken",
    )
    wo = engine.work_order(wo_id)
    assert wo.state == S.REJECTED
    assert [h.to_state for h in wo.history] == ["planned", "dispatched", "rejected"]
    assert wo.history[-1].reason == "rejected by the robot: robot is broken"
    # A late "started" for a rejected order is counted, not obeyed.
    engine.on_event(
        "r11", START_TS + 9, "maintenance_started", command_id=command_id, component="gripper"
    )
    assert engine.work_order(wo_id).state == S.REJECTED
    assert engine.stats["lifecycle_conflicts"] == 1


def test_a_command_not_started_by_its_expiry_expires() -> None:
    engine, wo_id, command_id = manual_engine()
    engine.on_event("r11", START_TS + 5, "ack", command_id=command_id, status="accepted")
    expires = engine.work_order(wo_id).expires_ts
    assert expires == START_TS + 2 * HOUR + CONFIG.planning.command_expiry_s
    assert engine.plan(expires) == []  # not past it yet
    decisions = engine.plan(expires + 1)
    assert [(d.kind, d.work_order) for d in decisions] == [("expired", wo_id)]
    assert engine.work_order(wo_id).state == S.EXPIRED
    assert engine.work_orders(active_only=True) == []


def test_commands_become_valid_contract_payloads() -> None:
    engine, wo_id, _ = manual_engine()
    assert engine.work_order(wo_id).command_id == f"{wo_id}.schedule"
    decision = engine.cancel_work_order(wo_id, START_TS + 60, "not needed")
    cancel = command_payload(decision.commands[0], ts=START_TS + 60, boot="svc-1", seq=7)
    assert isinstance(cancel, CancelMaintenance)
    assert cancel.target == f"{wo_id}.schedule"
    assert decode("cmd", encode(cancel)) == cancel
    engine2, _, _ = manual_engine()
    spec = engine2.request_work_order("r12", "servo-j1", START_TS).commands[0]
    payload = command_payload(spec, ts=START_TS, boot="svc-1", seq=8)
    assert isinstance(payload, ScheduleMaintenance)
    assert (payload.robot, payload.component, payload.work_order) == (
        "r12",
        "servo-j1",
        "wo-000002",
    )
    assert payload.duration_s == 1.5 * HOUR  # servo-j1 planned_repair_h
    assert payload.expires_ts == payload.start_ts + CONFIG.planning.command_expiry_s
    assert decode("cmd", encode(payload)) == payload


def test_work_orders_survive_asdict_and_restore() -> None:
    engine, wo_id, command_id = manual_engine()
    engine.on_event("r11", START_TS + 5, "ack", command_id=command_id, status="accepted")
    saved = [asdict(wo) for wo in engine.work_orders()]
    fresh = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    fresh.restore_work_orders(WorkOrder(**d) for d in saved)
    restored = fresh.work_order(wo_id)
    assert restored.state == S.ACKNOWLEDGED
    assert restored.history[-1].to_state == "acknowledged"
    fresh.on_event(
        "r11",
        START_TS + 2 * HOUR,
        "maintenance_started",
        command_id=command_id,
        component="gripper",
    )
    assert fresh.work_order(wo_id).state == S.IN_PROGRESS
    # New ids continue after the restored ones.
    assert fresh.request_work_order("r12", "gripper", START_TS).work_order == "wo-000002"


def test_the_robots_answers_to_a_cancelled_or_expired_job_are_not_conflicts() -> None:
    engine, wo_id, command_id = manual_engine()
    decision = engine.cancel_work_order(wo_id, START_TS + 60, "not needed")
    # The simulator answers a cancel with "rejected" for the job and "done" for the cancel.
    engine.on_event(
        "r11",
        START_TS + 61,
        "ack",
        command_id=command_id,
        status="rejected",
        reason=f"cancelled by {decision.commands[0].id}",
    )
    engine.on_event("r11", START_TS + 61, "ack", command_id=decision.commands[0].id, status="done")
    assert engine.work_order(wo_id).state == S.CANCELLED
    engine2, wo2, command2 = manual_engine()
    engine2.plan(engine2.work_order(wo2).expires_ts + 1)
    engine2.on_event(
        "r11",
        START_TS + 9 * HOUR,
        "ack",
        command_id=command2,
        status="rejected",
        reason="expired while the robot was busy",
    )
    assert engine2.work_order(wo2).state == S.EXPIRED
    # An ack "accepted" arriving after "started" does not move the order back.
    engine3, wo3, command3 = manual_engine()
    engine3.on_event("r11", START_TS + 2 * HOUR, "maintenance_started", command_id=command3)
    engine3.on_event("r11", START_TS + 2 * HOUR, "ack", command_id=command3, status="accepted")
    assert engine3.work_order(wo3).state == S.IN_PROGRESS
    for e in (engine, engine2, engine3):
        assert e.stats["lifecycle_conflicts"] == 0
