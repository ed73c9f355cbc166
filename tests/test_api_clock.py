"""The clock guard in the running service against real brokers, and the year-3000 bound.

A robot login publishing a year ahead (or a wall-clock ``ts`` pasted from an example) must not
move the service's clock, must not hold back the robot's genuine messages, must be counted under
``clock`` once held for ``HOLD_S`` unconfirmed, and must leave the robot's true time on
``/api/robots``; a stored clock poisoned before the guard existed is repaired on resume; a
year-3000 ``ts`` never breaks the maintenance step.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import test_api_maintenance
from brokers import BrokerHandle, robot_topic
from test_api_endpoints import settings_for
from test_api_ingest import (
    T0,
    eventually,
    metric,
    running,
    service_settings,
    telemetry,
    wait_rows,
)
from test_api_maintenance import KEY as MAINTENANCE_KEY
from test_api_maintenance import TestClient, seed

from api.app import create_app
from api.store import Accepted
from api.store.sqlite import SqliteStore
from contract.codec import encode
from contract.payloads import TS_MAX, Reading, Telemetry
from contract.topics import Channel, Topic

YEAR_S = 365 * 86400.0
KEY = {"X-API-Key": "k3y"}
#: How long the service holds a time ahead for another robot to confirm (FACTORY_CLOCK_HOLD_S).
HOLD_S = 1.0


def clock_rejects(client: TestClient, count: int) -> dict[str, object]:
    """``/api/rejects`` once ``count`` messages were refused under ``clock`` (after the hold)."""
    return eventually(
        lambda: (r := client.get("/api/rejects").json())["counts"].get("clock") == count and r,
        f"{count} messages refused under clock",
    )


def at(robot: str, seq: int, ts: float) -> bytes:
    reading = Reading(ts=ts, temperature_c=41.0)
    return encode(Telemetry(v=1, robot=robot, ts=ts, boot="boot-1", seq=seq, readings=[reading]))


@pytest.mark.integration
def test_a_robot_a_year_ahead_moves_nothing_and_is_counted_under_clock(
    broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    robot, other = broker.robot_ids[:2]
    settings = service_settings(
        broker, topic_site, tmp_path / "f.db", api_key="k3y", clock_hold_s=HOLD_S
    )
    with running(settings) as client:
        for who in (robot, other):
            publisher = broker.client(who)
            broker.publish(
                publisher, robot_topic(topic_site, who, Channel.TELEMETRY), at(who, 1, T0)
            )
        publisher = broker.client(robot)
        topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
        broker.publish(publisher, topic, telemetry(robot, 2, 40.0))
        broker.publish(publisher, topic, at(robot, 3, T0 + YEAR_S))  # a year ahead
        broker.publish(publisher, topic, at(robot, 4, time.time()))  # a pasted wall-clock ts
        broker.publish(publisher, topic, telemetry(robot, 5, 42.0))  # genuine, after them
        rows = wait_rows(client, robot, 3)  # the genuine one is not held back by the others
        assert [r["ts"] for r in rows] == [T0, T0 + 2, T0 + 5]
        rejects = clock_rejects(client, 2)
        assert rejects["counts"] == {"clock": 2}
        assert {d["reason"] for d in rejects["recent"]} == {"clock"}
        assert "ahead of the fleet's clock" in rejects["recent"][0]["detail"]
        assert "no other robot confirmed it" in rejects["recent"][0]["detail"]
        eventually(lambda: metric(client, "factory_ingest_held") == 0, "nothing held")
        assert metric(client, "factory_ingest_rejected_total") == 2
        assert metric(client, "factory_sim_clock_seconds") == T0 + 5
        listed = {r["id"]: r for r in client.get("/api/robots").json()}
        assert listed[robot]["last_seen"] == T0 + 5
        assert listed[robot]["latest"]["ts"] == T0 + 5


@pytest.mark.integration
def test_a_year_3000_ts_is_refused_and_dispatch_goes_on(
    mosquitto_broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    broker = mosquitto_broker
    robot, other = "weld-01", "weld-02"
    settings = service_settings(
        broker, topic_site, tmp_path / "f.db", api_key="k3y", clock_hold_s=HOLD_S
    )
    with running(settings) as client:
        for who in (robot, other):
            publisher = broker.client(who)
            topic = robot_topic(topic_site, who, Channel.TELEMETRY)
            broker.publish(publisher, topic, at(who, 1, T0))
        broker.publish(publisher, topic, at(other, 2, TS_MAX))
        broker.publish(publisher, topic, at(other, 3, T0 + 60))
        wait_rows(client, other, 2)
        assert clock_rejects(client, 1)["counts"] == {"clock": 1}
        fault = {"fault": "overheat", "duration_s": 600.0}
        sent = client.post(f"/api/robots/{robot}/faults", json=fault, headers=KEY)
        assert sent.status_code == 202, sent.text
        assert metric(client, "factory_maintenance_errors_total") == 0
        assert metric(client, "factory_commands_sent_total") == 1


def test_at_the_contracts_last_time_the_engine_places_nothing_past_it(tmp_path: Path) -> None:
    """Bypassing the guard (a store seeded near year 3000): no order or command past TS_MAX is
    made, the request says why, and other commands still go out."""
    start = TS_MAX - 4 * 3600 + 200
    original = test_api_maintenance.T0
    test_api_maintenance.T0 = start
    try:
        seed(tmp_path / "f.db", hours=4)
    finally:
        test_api_maintenance.T0 = original
    with TestClient(create_app(settings_for(tmp_path))) as client:
        body = {"robot": "weld-01", "component": "gripper"}
        refused = client.post("/api/work-orders", json=body, headers=MAINTENANCE_KEY)
        assert refused.status_code == 409
        assert "no free slot" in refused.json()["detail"]
        fault = {"fault": "overheat", "duration_s": 600.0}
        sent = client.post("/api/robots/weld-01/faults", json=fault, headers=MAINTENANCE_KEY)
        assert sent.status_code == 202, sent.text
        assert sent.json()["expires_ts"] <= TS_MAX
        metrics = client.get("/metrics").text
        assert "factory_maintenance_errors_total 0.0" in metrics


def test_a_resume_repairs_a_clock_poisoned_before_the_guard(tmp_path: Path) -> None:
    """A store written before the guard: weld-01 a year ahead. The service's clock and
    weld-01's last_seen come back to the fleet's true time; the future rows are dropped."""

    def message(robot: str, seq: int, ts: float) -> Accepted:
        topic = Topic("plant-1", "body-shop", "line-1", robot, Channel.TELEMETRY)
        reading = Reading(ts=ts, temperature_c=40.0)
        payload = Telemetry(v=1, robot=robot, ts=ts, boot="boot-1", seq=seq, readings=[reading])
        return Accepted(topic, payload, 1.0)

    store = SqliteStore(tmp_path / "f.db")
    store.write(
        [
            message("weld-01", 1, T0),
            message("weld-02", 1, T0 + 30),
            message("weld-01", 2, T0 + 60),
            message("weld-01", 3, T0 + YEAR_S),
        ],
        [],
    )
    assert store.clock() == T0 + YEAR_S
    store.close()
    with TestClient(create_app(settings_for(tmp_path))) as client:
        assert metric(client, "factory_sim_clock_seconds") == T0 + 60
        listed = {r["id"]: r for r in client.get("/api/robots").json()}
        assert listed["weld-01"]["last_seen"] == T0 + 60
        assert listed["weld-01"]["latest"]["ts"] == T0 + 60
        assert client.get("/api/rejects").json()["counts"] == {"clock": 1}
