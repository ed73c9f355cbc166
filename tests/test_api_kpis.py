"""Plant KPIs (engine.kpis) by hand, and the live ones (api.kpis) from a real SQLite store filled
through the ingest pipeline, checked against the same hand-computed case."""

from __future__ import annotations

import math

import pytest
from prometheus_client import generate_latest
from store_backends import Backend

from api.inbound import Inbound
from api.ingest.clock_guard import ClockGuard, ClockRule
from api.ingest.inbox import Inbox
from api.ingest.metrics import Metrics
from api.ingest.pipeline import Pipeline
from api.kpis import kpi_report
from api.live import LiveState
from api.routes.kpis import kpi_window
from contract.codec import encode
from contract.payloads import Failure, Parts, Reading, RepairFinished, Telemetry
from engine.kpis import Activity, StoredEvent, activity_from_events, pooled_kpis, robot_kpis
from plant import load_plant

#: Monday 2026-01-05 06:00 UTC: the default calendar's first production window runs 6 h from here.
T0 = 1_767_592_800.0
H = 3600.0
BOOT = "boot-1"


def test_robot_kpis_match_a_hand_computed_case() -> None:
    # 4 h planned, 3.5 h running, 45 s ideal cycle, 266 parts of which 6 scrap, one failure
    # restored in 30 min.
    k = robot_kpis(Activity(4 * H, 3.5 * H, 45.0, 260, 6, 1, (0.5 * H,)))
    assert k.availability == pytest.approx(0.875)
    assert k.performance == pytest.approx(45.0 * 266 / (3.5 * H))
    assert k.quality == pytest.approx(260 / 266)
    assert k.oee == pytest.approx(0.875 * 45.0 * 266 / (3.5 * H) * 260 / 266)
    assert k.mtbf_h == pytest.approx(3.5)
    assert k.mttr_h == pytest.approx(0.5)


def test_no_failure_means_no_mtbf_or_mttr_and_empty_time_gives_zeros() -> None:
    k = robot_kpis(Activity(0.0, 0.0, 45.0, 0, 0, 0))
    assert (k.availability, k.performance, k.quality, k.oee) == (0.0, 0.0, 0.0, 0.0)
    assert k.mtbf_h is None
    assert k.mttr_h is None


def test_pooling_sums_times_and_weights_each_robots_own_ideal_cycle() -> None:
    a = Activity(4 * H, 4 * H, 45.0, 320, 0, 0)
    b = Activity(4 * H, 2 * H, 20.0, 360, 0, 1, (2 * H,))
    k = pooled_kpis([a, b])
    assert k.availability == pytest.approx(6 / 8)
    assert k.performance == pytest.approx((45.0 * 320 + 20.0 * 360) / (6 * H))
    assert k.mtbf_h == pytest.approx(6.0)
    assert k.mttr_h == pytest.approx(2.0)


def test_activity_from_events_counts_stops_only_in_production_time_and_overlaps_once() -> None:
    calendar = load_plant(None).shift_calendar
    events = [
        StoredEvent(T0 + 1 * H, "failure", {"component": "joint"}),
        StoredEvent(T0 + 1.25 * H, "failure", {"component": "gripper"}),  # while already down
        StoredEvent(T0 + 1.5 * H, "repair_finished", {"component": "joint"}),
        StoredEvent(T0 + 1.75 * H, "repair_finished", {"component": "gripper"}),
        StoredEvent(T0 + 3 * H, "parts", {"good": 200, "scrap": 4}),
        StoredEvent(T0 + 5.5 * H, "maintenance_started", {"component": "joint"}),  # open at end
    ]
    a = activity_from_events(events, calendar, T0, T0 + 6 * H, 45.0)
    assert a.planned_s == pytest.approx(6 * H)
    assert a.run_s == pytest.approx(6 * H - 0.75 * H - 0.5 * H)
    assert (a.good, a.scrap, a.failures) == (200, 4, 2)
    assert sorted(a.restore_s) == pytest.approx([0.5 * H, 0.5 * H])


def _event_topic(robot_id: str) -> str:
    robot = load_plant(None).robot(robot_id)
    return f"factory/{robot.site}/{robot.area}/{robot.line}/{robot.id}"


def test_live_kpis_from_a_real_store_match_the_hand_computed_case(store_backend: Backend) -> None:
    plant = load_plant(None)
    robot = "weld-01"  # 45 s ideal cycle, line-1
    base = _event_topic(robot)
    payloads = [
        Failure(v=1, robot=robot, ts=T0 + 1 * H, boot=BOOT, seq=2, kind="failure", component="j"),
        RepairFinished(
            v=1,
            robot=robot,
            ts=T0 + 1.5 * H,
            boot=BOOT,
            seq=3,
            kind="repair_finished",
            component="j",
            duration_s=1800.0,
            cost=100.0,
        ),
        Parts(v=1, robot=robot, ts=T0 + 3 * H, boot=BOOT, seq=4, kind="parts", good=260, scrap=6),
    ]
    messages = [
        Inbound(f"{base}/event", encode(p), received_at=1.0, qos=1, mid=i)
        for i, p in enumerate(payloads)
    ]
    # A reading at the start and one 4 h on set the window: [T0, T0 + 4 h).
    for seq, ts in ((1, T0), (5, T0 + 4 * H)):
        tele = Telemetry(
            v=1,
            robot=robot,
            ts=ts,
            boot=BOOT,
            seq=seq,
            readings=[Reading(ts=ts, temperature_c=40.0)],
        )
        messages.append(Inbound(f"{base}/telemetry", encode(tele), 1.0, 1, 100 + seq))
    store = store_backend.open()  # closed by the fixture: SQLite, then PostgreSQL
    # A 5-hour lead: the hand-made messages jump hours at once, as a fast simulation does.
    result = Pipeline(store, ClockGuard(ClockRule(lead_s=5 * H))).write(messages)
    assert len(result.new) == 5
    window = kpi_window(store, None, None)
    assert window == (T0, T0 + 4 * H)
    report = kpi_report(store, plant, *window)
    weld = next(r for r in report.robots if r.robot == robot)
    assert weld.line == "line-1"
    assert weld.availability == pytest.approx(0.875)
    assert weld.performance == pytest.approx(45.0 * 266 / (3.5 * H))
    assert weld.quality == pytest.approx(260 / 266)
    assert weld.mtbf_h == pytest.approx(3.5)
    assert weld.mttr_h == pytest.approx(0.5)
    # Every other robot of the plant sent nothing: fully available, nothing made.
    others = [r for r in report.robots if r.robot != robot]
    assert len(others) == len(plant.robots) - 1
    assert all(r.availability == 1.0 and r.good == 0 for r in others)
    line = next(ln for ln in report.lines if ln.line == "line-1")
    members = sum(1 for r in plant.robots if r.line == "line-1")
    assert line.robots == members
    assert line.availability == pytest.approx((members - 0.125) / members)
    assert report.plant.failures == 1
    # The last 2 hours hold no stop: availability 1.
    recent = kpi_report(store, plant, *kpi_window(store, None, 2.0) or (0.0, 0.0))
    assert next(r for r in recent.robots if r.robot == robot).availability == 1.0

    metrics = Metrics(LiveState.from_robots([], None), Inbox(10))
    metrics.kpis.set(report)
    text = generate_latest(metrics.registry).decode()
    assert 'factory_robot_availability{line="line-1",robot="weld-01"} 0.875' in text
    assert 'factory_robot_mttr_hours{line="line-1",robot="weld-01"} 0.5' in text
    assert 'factory_line_oee{line="line-1"}' in text
    assert "factory_robot_mtbf_hours{" in text
    assert not math.isnan(report.plant.oee)
