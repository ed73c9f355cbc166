"""The maintenance loop without a broker: contract messages in (as ingest hands them over after a
commit), engine calls, planning cadence, commands out (captured from the publish callable),
work orders and alarms into a real SQLite store and onto the stream."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from api.maintenance.changes import ChangeTracker
from api.maintenance.command_sender import CommandSender
from api.maintenance.loop import MaintenanceLoop
from api.store import Accepted, StoreUnavailable
from api.store.sqlite import SqliteStore
from api.stream import StreamFilter, StreamHub
from contract.codec import decode
from contract.payloads import (
    Ack,
    Birth,
    ComponentTruth,
    MaintenanceFinished,
    MaintenanceStarted,
    Reading,
    ScheduleMaintenance,
    State,
    Telemetry,
    Truth,
)
from contract.topics import Channel, Topic
from engine import MaintenanceEngine
from simulator.model.physics import birth_body
from simulator.model.scenario import load_scenario

T0 = 1_767_592_800.0  # Monday 06:00 UTC
ROBOT = "weld-01"
TOPIC = Topic("plant-9", "area-9", "line-9", ROBOT, Channel.TELEMETRY)
BOOT = "boot-1"


class Spy:
    """Records the engine calls the loop makes, then lets them through."""

    def __init__(self, engine: MaintenanceEngine) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        for name in ("on_reading", "on_state", "on_event"):
            real = getattr(engine, name)

            def spy(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> None:
                self.calls.append((_name, args, kwargs))
                _real(*args, **kwargs)

            setattr(engine, name, spy)


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.engine = MaintenanceEngine(load_scenario(), "predictive")
        self.spy = Spy(self.engine)
        self.store = SqliteStore(tmp_path / "f.db")
        self.published: list[tuple[str, bytes]] = []
        counter = Counter("sent", "sent", ["type"], registry=CollectorRegistry())
        self.sender = CommandSender("svc-test", self.publish, counter)
        self.hub = StreamHub(1000)
        self.stream = self.hub.subscribe(StreamFilter())
        self.loop = MaintenanceLoop(self.engine, self.store, self.sender, self.hub, "svc-test")
        self.seq = 1

    def publish(self, topic: str, payload: bytes) -> bool:
        self.published.append((topic, payload))
        return True

    def step(self, *payloads: Any) -> None:
        messages = []
        for payload in payloads:
            channel = {
                Telemetry: Channel.TELEMETRY,
                State: Channel.STATE,
                Birth: Channel.BIRTH,
                Truth: Channel.TRUTH,
            }.get(type(payload), Channel.EVENT)
            messages.append(Accepted(TOPIC.with_channel(channel), payload, 1.0))
        clock = max(p.ts for p in payloads)
        asyncio.run(self.loop.on_committed(messages, clock))

    def envelope(self, ts: float) -> dict[str, Any]:
        self.seq += 1
        return {"v": 1, "robot": ROBOT, "ts": ts, "boot": BOOT, "seq": self.seq}

    def reading(self, ts: float, vibration: float, robot: str = ROBOT) -> Telemetry:
        values = Reading(ts=ts, vibration_rms_mm_s=vibration, temperature_c=41.0 + ts % 7 / 10)
        return Telemetry(**{**self.envelope(ts), "robot": robot}, readings=[values])

    def streamed(self, channel: str) -> list[str]:
        out = []
        while not self.stream.queue.empty():
            item = self.stream.queue.get_nowait()
            if getattr(item, "channel", None) == channel:
                out.append(item.data)  # type: ignore[union-attr]
        return out


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    made = Rig(tmp_path)
    yield made
    made.store.close()


def test_messages_reach_the_engine_as_readings_states_and_events_but_never_truth(
    rig: Rig,
) -> None:
    state = State(**rig.envelope(T0), state="RUNNING", since=T0 - 60)
    ack = Ack(**rig.envelope(T0 + 2), kind="ack", command_id="x.1", status="rejected", reason="no")
    truth = Truth(
        **rig.envelope(T0 + 3),
        components=[ComponentTruth(name="gripper", wear=0.5, threshold=1.0, rul_s=10.0)],
    )
    reading = rig.reading(T0 + 1, 0.5)
    rig.step(state, reading, ack, truth, rig.reading(T0 + 4, 0.5, "stranger"))
    values = {"vibration_rms_mm_s": 0.5, "temperature_c": reading.readings[0].temperature_c}
    assert rig.spy.calls == [
        ("on_state", (ROBOT, T0 - 60, "RUNNING"), {}),  # from when the state began
        ("on_reading", (ROBOT, T0 + 1, values), {}),
        (
            "on_event",
            (ROBOT, T0 + 2, "ack"),
            {"component": None, "command_id": "x.1", "status": "rejected", "reason": "no"},
        ),
    ]
    assert rig.loop.skipped == 1  # the robot the scenario does not have
    assert rig.sender.topic_of(ROBOT) == TOPIC.with_channel(Channel.CMD)  # where it was heard


def test_planning_runs_when_the_simulated_clock_has_moved_by_the_cadence(rig: Rig) -> None:
    interval = rig.loop.plan_interval_s
    assert interval == 1800.0  # the experiment's cadence
    plans = []
    for offset in (0.0, 600.0, 1799.0, 1800.0, 2000.0, 3600.0):
        rig.step(rig.reading(T0 + offset, 0.5 + offset / 1e5))
        plans.append(rig.loop.plans)
    assert plans == [1, 1, 1, 2, 2, 3]
    assert rig.loop.last_plan_ts == T0 + 3600.0


def test_a_predictive_order_is_persisted_sent_and_followed_through_its_lifecycle(
    rig: Rig,
) -> None:
    rng = random.Random(5)
    samples = 60 * 12  # vibration climbing into zone D over 60 operating hours
    for i in range(samples):
        ts = T0 + 300.0 * i
        rig.step(rig.reading(ts, 0.45 + 4.5 * (i / samples) ** 2 + rng.gauss(0, 0.03)))
        if rig.published and rig.store.alarms():
            break
    assert rig.published, "the engine never planned the worn reducer's maintenance"
    topic, data = rig.published[0]
    assert topic == "factory/plant-9/area-9/line-9/weld-01/cmd"  # where the robot publishes
    command = decode(Channel.CMD, data)
    assert isinstance(command, ScheduleMaintenance)
    assert (command.boot, command.seq, command.component) == ("svc-test", 1, "reducer-j2")
    wo_id = command.work_order
    assert wo_id is not None
    stored = rig.store.work_order(wo_id)
    assert stored is not None
    assert (stored.status, stored.source) == ("dispatched", "predictive")
    assert [h.status for h in stored.history] == ["planned", "dispatched"]
    # The alarm on the way up was stored and streamed.
    (alarm,) = rig.store.alarms()
    assert (alarm.severity, alarm.component, alarm.limit) == ("warning", "reducer-j2", "C")
    assert alarm.id.startswith("al-svc-test-")
    assert [a for a in rig.streamed("alarm") if alarm.id in a]
    # The robot's answers move it along; each change is stored and streamed.
    now = rig.loop.last_plan_ts or 0.0
    rig.step(Ack(**rig.envelope(now + 1), kind="ack", command_id=command.id, status="accepted"))
    start = command.start_ts
    started = MaintenanceStarted(
        **rig.envelope(start),
        kind="maintenance_started",
        command_id=command.id,
        component="reducer-j2",
    )
    finished = MaintenanceFinished(
        **rig.envelope(start + 7200),
        kind="maintenance_finished",
        command_id=command.id,
        component="reducer-j2",
        duration_s=7200.0,
        cost=900.0,
    )
    rig.step(started)
    rig.step(finished)
    done = rig.store.work_order(wo_id)
    assert done is not None
    assert [h.status for h in done.history] == [
        "planned",
        "dispatched",
        "acknowledged",
        "in_progress",
        "done",
    ]
    statuses = [s for s in rig.streamed("work_order") if wo_id in s]
    assert len(statuses) >= 3
    # The restored reducer's alarms are cleared, in the store too.
    assert [a for a in rig.store.alarms(active=True) if a.component == "reducer-j2"] == []


def test_a_robot_that_restarts_mid_job_ends_it_as_interrupted_and_gets_a_new_one(
    rig: Rig,
) -> None:
    """A rebooted robot forgot the job it was doing: the order must not stay in progress for
    ever (blocking new work on a still-worn reducer). A reconnect with the same boot is no
    restart."""
    rng = random.Random(5)
    samples = 60 * 12
    for i in range(samples):
        rig.step(rig.reading(T0 + 300.0 * i, 0.45 + 4.5 * (i / samples) ** 2 + rng.gauss(0, 0.03)))
        if rig.published:
            break
    command = decode(Channel.CMD, rig.published[0][1])
    assert isinstance(command, ScheduleMaintenance)
    wo_id = command.work_order
    assert wo_id is not None
    robot = next(r for r in load_scenario().robots if r.id == ROBOT)
    rig.step(Birth(**rig.envelope(command.start_ts - 60), **birth_body(robot)))
    started = MaintenanceStarted(
        **rig.envelope(command.start_ts),
        kind="maintenance_started",
        command_id=command.id,
        component="reducer-j2",
    )
    rig.step(started)
    rig.step(Birth(**rig.envelope(command.start_ts + 60), **birth_body(robot)))  # a reconnect
    assert (stored := rig.store.work_order(wo_id)) is not None
    assert stored.status == "in_progress"

    rebooted = {**rig.envelope(command.start_ts + 600), "boot": "boot-2"}
    rig.step(Birth(**rebooted, **birth_body(robot)))
    assert (stored := rig.store.work_order(wo_id)) is not None
    assert stored.status == "interrupted"
    assert stored.history[-1].reason == "the robot restarted and forgot this job"
    assert [s for s in rig.streamed("work_order") if wo_id in s and "interrupted" in s]
    # The reducer is still worn: the next planning step books it again.
    published = len(rig.published)
    ts = command.start_ts + 900
    for _ in range(12):
        ts += 300.0
        rig.step(rig.reading(ts, 4.9 + rng.gauss(0, 0.03)))
    again = [decode(Channel.CMD, data) for _, data in rig.published[published:]]
    assert [c.component for c in again if isinstance(c, ScheduleMaintenance)] == ["reducer-j2"]


def test_changes_the_store_cannot_take_stay_pending_until_it_can(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any) -> None:
        raise StoreUnavailable("locked (test)")

    with monkeypatch.context() as patch:
        patch.setattr(rig.store, "save_maintenance", unavailable)
        decision = rig.engine.request_work_order(ROBOT, "gripper", T0)
        asyncio.run(rig.loop.flush())
        assert rig.loop.save_errors == 1
    assert rig.store.work_orders() == []
    asyncio.run(rig.loop.flush())
    assert [w.id for w in rig.store.work_orders()] == [decision.work_order]


def test_an_alarm_raised_and_cleared_between_two_looks_is_still_recorded() -> None:
    engine = MaintenanceEngine(load_scenario(), "predictive")
    tracker = ChangeTracker(engine, "run1")
    tracker.start({})
    book = engine.fleet.alarm_book
    common: dict[str, Any] = {"component": "gripper", "limit": "alert", "value": 50.0}
    book.raise_alarm(
        ("weld-01", "cycle_time_s", "level"), severity="warning", message="slow", ts=T0, **common
    )
    book.raise_alarm(
        ("weld-02", "cycle_time_s", "level"), severity="warning", message="slow", ts=T0, **common
    )
    book.clear(("weld-01", "cycle_time_s", "level"), T0 + 60, "back to normal")
    changes = tracker.collect()
    by_id = {a.id: a for a in changes.alarms}
    assert set(by_id) == {"al-run1-000001", "al-run1-000002"}
    assert by_id["al-run1-000001"].cleared_reason == "back to normal"
    assert by_id["al-run1-000002"].cleared_ts is None
    tracker.commit(changes)
    assert not tracker.collect()  # nothing new since
    book.clear(("weld-02", "cycle_time_s", "level"), T0 + 90, "back to normal")
    (cleared,) = tracker.collect().alarms
    assert (cleared.id, cleared.cleared_ts) == ("al-run1-000002", T0 + 90)
