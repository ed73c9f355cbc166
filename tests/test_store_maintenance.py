"""Both stores' maintenance tables (a SQLite file, a PostgreSQL schema): work orders with every
transition, alarms (bounded history), filters, reopening, and the replay the engine warms up
from."""

from __future__ import annotations

import pytest
from store_backends import Backend

from api.records.maintenance import Alarm, Transition, WorkOrder
from api.store import Accepted
from contract.payloads import Ack, Reading, Telemetry
from contract.topics import Channel, Topic

T0 = 1_767_592_800.0


def work_order(wo_id: str, robot: str = "weld-01", *steps: str, created: float = T0) -> WorkOrder:
    """An order that went through ``steps`` (planned first), one simulated minute apart."""
    statuses = ["planned", *steps]
    history = [
        Transition(
            ts=created + 60 * i,
            status=s,  # type: ignore[arg-type]
            from_status=statuses[i - 1] if i else None,  # type: ignore[arg-type]
            reason=f"step {i}: {s}",
        )
        for i, s in enumerate(statuses)
    ]
    active = statuses[-1] in ("planned", "dispatched", "acknowledged", "in_progress")
    return WorkOrder(
        id=wo_id,
        robot=robot,
        line="line-1",
        component="gripper",
        status=statuses[-1],  # type: ignore[arg-type]
        source="manual",
        active=active,
        start_ts=created + 3600,
        duration_s=3600.0,
        end_ts=created + 7200,
        expires_ts=created + 7200,
        created_ts=created,
        updated_ts=history[-1].ts,
        reason="manual request by api",
        status_reason=history[-1].reason,
        command_id=f"{wo_id}.schedule",
        placement="window",
        lost_production_s=0.0,
        history=history,
    )


def alarm(alarm_id: str, raised: float, cleared: float | None = None, robot: str = "r") -> Alarm:
    return Alarm(
        id=alarm_id,
        robot=robot,
        component="reducer-j2",
        signal="vibration_rms_mm_s",
        severity="warning",
        limit="C",
        value=2.0,
        message="vibration 2 mm/s RMS in zone C",
        raised_ts=raised,
        cleared_ts=cleared,
        cleared_reason=None if cleared is None else "back to B",
    )


def test_work_orders_keep_every_transition_and_survive_reopening(store_backend: Backend) -> None:
    store = store_backend.open()
    first = work_order("wo-000001", "weld-01", "dispatched")
    store.save_maintenance([first, work_order("wo-000002", "weld-02", created=T0 + 10)], [])
    done = work_order("wo-000001", "weld-01", "dispatched", "acknowledged", "in_progress", "done")
    store.save_maintenance([done], [])
    store.close()

    again = store_backend.open()
    try:
        assert again.work_order("wo-000001") == done
        assert [w.id for w in again.work_orders()] == ["wo-000002", "wo-000001"]  # newest first
        assert [w.id for w in again.work_orders(active=True)] == ["wo-000002"]
        assert [w.id for w in again.work_orders(status="done")] == ["wo-000001"]
        assert [w.id for w in again.work_orders(robot="weld-02")] == ["wo-000002"]
        assert len(again.work_orders(limit=1)) == 1
        assert again.work_order("wo-999999") is None
        log = again._reader().execute(  # type: ignore[attr-defined]
            "SELECT idx, from_status, status, reason FROM work_order_transitions "
            "WHERE work_order = 'wo-000001' ORDER BY idx"
        )
        assert [row[2] for row in log] == [
            "planned",
            "dispatched",
            "acknowledged",
            "in_progress",
            "done",
        ]
    finally:
        again.close()


def test_alarms_filter_and_keep_a_bounded_history_of_cleared_ones(store_backend: Backend) -> None:
    store = store_backend.open(alarm_history_max_rows=3)
    try:
        active = alarm("al-x-000099", T0, robot="weld-01")
        store.save_maintenance([], [active])
        for n in range(6):
            store.save_maintenance([], [alarm(f"al-x-{n:06d}", T0 + n, cleared=T0 + n + 1)])
        kept = store.alarms()
        # Three cleared alarms kept (the newest), and the active one whatever its age.
        assert [a.id for a in kept] == ["al-x-000005", "al-x-000004", "al-x-000003", "al-x-000099"]
        assert store.alarms(active=True) == [active]
        assert [a.id for a in store.alarms(active=False, limit=1)] == ["al-x-000005"]
        assert store.alarms(robot="weld-01") == [active]
        cleared = active.model_copy(update={"cleared_ts": T0 + 50, "cleared_reason": "restored"})
        store.save_maintenance([], [cleared])
        assert store.alarms(active=True) == []
        assert store.alarms(robot="weld-01") == [cleared]  # cleared last: kept, however old
        assert [a.id for a in store.alarms()] == ["al-x-000005", "al-x-000004", "al-x-000099"]
    finally:
        store.close()


def test_recent_history_replays_readings_and_events_in_time_order(store_backend: Backend) -> None:
    topic = Topic("plant-1", "body-shop", "line-1", "weld-01", Channel.TELEMETRY)
    messages = []
    for i in range(10):
        ts = T0 + 300 * i
        reading = Reading(ts=ts, vibration_rms_mm_s=0.5 + i / 100, temperature_c=40.0)
        payload = Telemetry(
            v=1, robot="weld-01", ts=ts, boot="boot-1", seq=i + 1, readings=[reading]
        )
        messages.append(Accepted(topic, payload, 1.0))
    ack = Ack(
        v=1,
        robot="weld-01",
        ts=T0 + 1500,
        boot="boot-1",
        seq=50,
        kind="ack",
        command_id="wo-000001.schedule",
        status="accepted",
    )
    messages.append(Accepted(topic.with_channel(Channel.EVENT), ack, 1.0))
    store = store_backend.open()
    try:
        store.write(messages, [])
        rows = store.recent_history("weld-01", T0 + 900, max_rows=100)
        assert len(rows) == 8  # seven readings from T0 + 900 on, and the ack
        assert [(r.ts, r.kind) for r in rows][:4] == [
            (T0 + 900, "reading"),
            (T0 + 1200, "reading"),
            (T0 + 1500, "event"),  # events first at the same time
            (T0 + 1500, "reading"),
        ]
        assert rows[0].data == {"vibration_rms_mm_s": pytest.approx(0.53), "temperature_c": 40.0}
        assert rows[2].data["command_id"] == "wo-000001.schedule"
        newest = store.recent_history("weld-01", T0, max_rows=2)
        assert [(r.ts, r.kind) for r in newest] == [(T0 + 2400, "reading"), (T0 + 2700, "reading")]
        assert store.recent_history("weld-02", T0, max_rows=10) == []
    finally:
        store.close()
