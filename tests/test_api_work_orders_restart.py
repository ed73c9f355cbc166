"""Work orders and alarms across a service restart, on one real SQLite file (no broker needed):
orders come back into the engine, the engine warms up from stored telemetry so it still knows
a degrading component, and alarms keep their ids (or are cleared, saying why)."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import pytest
from test_api_endpoints import settings_for

from api.app import create_app
from api.store import Accepted
from api.store.sqlite import SqliteStore
from contract.payloads import Reading, State, Telemetry
from contract.topics import Channel, Topic

with warnings.catch_warnings():
    # Starlette 1.x wants httpx2 for its TestClient and warns on import; httpx behaves the same.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

T0 = 1_767_592_800.0
ROBOT = "weld-01"
KEY = {"X-API-Key": "s3cret-key"}
SAMPLE_S = 300.0
HOURS = 72


def seed_wearing_reducer(db: Path) -> None:
    """72 h of a welder whose reducer vibration climbs (square law) from 0.45 into zone C."""
    rng = random.Random(3)
    topic = Topic("plant-1", "body-shop", "line-1", ROBOT, Channel.TELEMETRY)
    state = State(v=1, robot=ROBOT, ts=T0, boot="boot-1", seq=1, state="RUNNING", since=T0)
    messages = [Accepted(topic.with_channel(Channel.STATE), state, 1.0)]
    samples = int(HOURS * 3600 / SAMPLE_S)
    for i in range(samples):
        ts = T0 + i * SAMPLE_S
        reading = Reading(
            ts=ts,
            vibration_rms_mm_s=0.45 + 2.0 * (i / samples) ** 2 + rng.gauss(0.0, 0.03),
            temperature_c=rng.gauss(41.0, 0.5),
            motor_current_a=rng.gauss(7.5, 0.1),
            cycle_time_s=rng.gauss(45.0, 0.5),
        )
        payload = Telemetry(v=1, robot=ROBOT, ts=ts, boot="boot-1", seq=i + 2, readings=[reading])
        messages.append(Accepted(topic, payload, 1.0))
    store = SqliteStore(db)
    try:
        store.write(messages, [])
    finally:
        store.close()


def reducer(client: TestClient) -> dict[str, Any]:
    health = client.get(f"/api/robots/{ROBOT}/health").json()
    part: dict[str, Any] = next(c for c in health["components"] if c["name"] == "reducer-j2")
    return part


def sent(client: TestClient, command: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'factory_commands_sent_total{{type="{command}"}}'):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no counter for {command}")


def test_a_restart_keeps_work_orders_alarms_and_what_the_engine_knew(tmp_path: Path) -> None:
    seed_wearing_reducer(tmp_path / "f.db")
    settings = settings_for(tmp_path)
    with TestClient(create_app(settings)) as client:
        before = reducer(client)
        assert before["zone"] == "C"
        assert before["value"] > 1.8
        assert before["rul_h"] is not None  # a rising trend, with an estimate
        (warning,) = client.get("/api/alarms", params={"active": True}).json()
        assert (warning["component"], warning["severity"]) == ("reducer-j2", "warning")
        assert before["alarms"] == [warning]
        booked = client.post(
            "/api/work-orders", json={"robot": ROBOT, "component": "gripper"}, headers=KEY
        ).json()
        assert booked["id"] == "wo-000001"

    with TestClient(create_app(settings)) as client:
        after = reducer(client)
        assert after["value"] == pytest.approx(before["value"])
        assert after["zone"] == "C"
        assert after["rul_h"] == pytest.approx(before["rul_h"])
        # The same alarm, still active since the same time: not a new one.
        assert client.get("/api/alarms", params={"active": True}).json() == [warning]
        assert after["alarms"] == [warning]
        # The order is back in the store and in the engine; its command was sent again
        # (it was not acknowledged yet), and new ids continue after it.
        assert client.get("/api/work-orders/wo-000001").json() == booked
        assert sent(client, "schedule_maintenance") == 1
        again = client.post(
            "/api/work-orders", json={"robot": ROBOT, "component": "gripper"}, headers=KEY
        )
        assert again.status_code == 409
        assert "wo-000001 already plans work" in again.json()["detail"]
        other = client.post(
            "/api/work-orders", json={"robot": ROBOT, "component": "servo-j1"}, headers=KEY
        )
        assert other.json()["id"] == "wo-000002"


def test_without_a_warm_up_the_engine_starts_blank_and_stale_alarms_are_cleared(
    tmp_path: Path,
) -> None:
    seed_wearing_reducer(tmp_path / "f.db")
    with TestClient(create_app(settings_for(tmp_path))) as client:
        (warning,) = client.get("/api/alarms", params={"active": True}).json()
    with TestClient(create_app(settings_for(tmp_path, engine_warmup_h=0.0))) as client:
        assert reducer(client)["value"] is None  # nothing replayed: nothing known
        assert client.get("/api/alarms", params={"active": True}).json() == []
        (cleared,) = client.get("/api/alarms", params={"active": False}).json()
        assert cleared["id"] == warning["id"]
        assert cleared["cleared_ts"] == T0 + (HOURS * 3600 / SAMPLE_S - 1) * SAMPLE_S
        assert "not raised again when the service restarted" in cleared["cleared_reason"]
