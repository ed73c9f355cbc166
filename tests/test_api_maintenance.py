"""The maintenance endpoints with no broker reachable: the real app and lifespan on a real SQLite
file seeded as ingest would have left it; the engine follows the default scenario.

Commands still go to the service's MQTT client, which queues them until it connects; that is
what "dispatched" means here.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from test_api_endpoints import settings_for

from api.app import create_app
from api.settings import Settings, load_settings
from api.store import Accepted
from api.store.sqlite import SqliteStore
from contract.payloads import Reading, State, Telemetry
from contract.topics import Channel, Topic
from simulator.model.scenario import load_scenario

with warnings.catch_warnings():
    # Starlette 1.x wants httpx2 for its TestClient and warns on import; httpx behaves the same.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

#: Monday 2026-01-05 06:00 UTC, the default scenario's start.
T0 = 1_767_592_800.0
ROBOT = "weld-01"
KEY = {"X-API-Key": "s3cret-key"}
SAMPLE_S = 300.0


def seed(db: Path, hours: float = 4.0, vibration: float = 0.45) -> float:
    """A welder running since T0 with healthy, noisy readings; returns the newest time."""
    rng = random.Random(7)
    topic = Topic("plant-1", "body-shop", "line-1", ROBOT, Channel.TELEMETRY)
    state = State(v=1, robot=ROBOT, ts=T0, boot="boot-1", seq=1, state="RUNNING", since=T0)
    messages = [Accepted(topic.with_channel(Channel.STATE), state, 1.0)]
    ts = T0
    for i in range(int(hours * 3600 / SAMPLE_S)):
        ts = T0 + i * SAMPLE_S
        reading = Reading(
            ts=ts,
            vibration_rms_mm_s=vibration + rng.gauss(0.0, 0.02),
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
    return ts


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    seed(tmp_path / "f.db")
    with TestClient(create_app(settings_for(tmp_path))) as test_client:
        yield test_client


def order(client: TestClient, **body: Any) -> Any:
    return client.post("/api/work-orders", json={"robot": ROBOT, **body}, headers=KEY)


def test_health_reports_each_component_and_the_policy(client: TestClient) -> None:
    health = client.get(f"/api/robots/{ROBOT}/health").json()
    assert health["robot"] == ROBOT
    assert health["policy"] == "predictive"
    assert health["ts"] == T0 + (4 * 3600 / SAMPLE_S - 1) * SAMPLE_S  # the newest reading
    parts = {c["name"]: c for c in health["components"]}
    welder = load_scenario().kinds["welder"]
    assert set(parts) == {c.name for c in welder.components}
    reducer = parts["reducer-j2"]
    assert reducer["indicator"] == "vibration_rms_mm_s"
    assert reducer["value"] == pytest.approx(0.45, abs=0.01)  # warmed up from the store
    assert reducer["zone"] == "A"
    assert reducer["health_index"] == pytest.approx(1.0, abs=0.05)
    assert reducer["rul_h"] is None  # healthy: no trend, no estimate
    assert reducer["alarms"] == []
    assert parts["servo-j1"]["indicator"] == "temperature_c"
    assert parts["gripper"]["indicator"] == "cycle_time_s"


def test_health_of_a_robot_outside_the_scenario_is_a_404_naming_the_scenario(
    client: TestClient,
) -> None:
    response = client.get("/api/robots/nobody-here/health")
    assert response.status_code == 404
    assert "scenario 'default'" in response.json()["detail"]
    assert "weld-01" in response.json()["detail"]


def test_the_policy_comes_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(tmp_path / "f.db")
    monkeypatch.setenv("FACTORY_POLICY", "reactive")
    values = settings_for(tmp_path).model_dump(exclude={"policy"})
    settings = load_settings(**values)
    assert settings.policy == "reactive"
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/api/robots/{ROBOT}/health").json()["policy"] == "reactive"
        metrics = client.get("/metrics").text
        assert 'factory_maintenance_policy{policy="reactive"} 1.0' in metrics
    with pytest.raises(ValidationError, match="policy"):
        Settings(policy="hopeful")  # type: ignore[arg-type]


def test_writes_need_the_api_key(client: TestClient) -> None:
    body = {"robot": ROBOT, "component": "gripper"}
    missing = client.post("/api/work-orders", json=body)
    assert missing.status_code == 401
    assert "X-API-Key" in missing.json()["detail"]
    wrong = client.post("/api/work-orders", json=body, headers={"X-API-Key": "nope"})
    assert wrong.status_code == 403
    fault = {"fault": "overheat"}
    assert client.post(f"/api/robots/{ROBOT}/faults", json=fault).status_code == 401
    assert client.get("/api/work-orders").json() == []  # nothing was booked


def test_a_manual_work_order_goes_through_the_scheduler_and_is_sent(client: TestClient) -> None:
    response = order(client, component="gripper", note="squeaks")
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["id"] == "wo-000001"
    assert created["source"] == "manual"
    assert created["status"] == "dispatched"
    assert [h["status"] for h in created["history"]] == ["planned", "dispatched"]
    assert created["history"][0]["from_status"] is None
    assert created["requested_by"] == "api"
    assert created["note"] == "squeaks"
    # The scheduler put it in the first planned-downtime window: Monday 22:00–24:00.
    assert created["placement"] == "window"
    assert created["start_ts"] == T0 + 16 * 3600
    assert created["duration_s"] == 3600.0  # the gripper's planned repair time
    assert "manual request by api (squeaks)" in created["reason"]
    assert created["expires_ts"] == created["start_ts"] + 3600.0
    # The store has it, with the same lifecycle.
    assert client.get(f"/api/work-orders/{created['id']}").json() == created
    assert client.get("/api/work-orders", params={"status": "dispatched"}).json() == [created]
    assert client.get("/api/work-orders", params={"active": False}).json() == []
    assert client.get("/api/work-orders", params={"robot": "weld-02"}).json() == []
    # One schedule command went to the MQTT client.
    metrics = client.get("/metrics").text
    assert 'factory_commands_sent_total{type="schedule_maintenance"} 1.0' in metrics
    assert 'factory_work_orders{source="manual",status="dispatched"} 1.0' in metrics
    # A second job on the same component is refused: it already has one.
    again = order(client, component="gripper")
    assert again.status_code == 409
    assert "wo-000001 already plans work" in again.json()["detail"]


def test_manual_work_orders_that_cannot_be_placed_say_why(client: TestClient) -> None:
    past = order(client, component="gripper", start_ts=T0)
    assert past.status_code == 409
    assert "in the past" in past.json()["detail"]
    exact = order(client, component="servo-j1", start_ts=T0 + 20 * 3600, duration_s=1800.0)
    assert exact.status_code == 201
    assert (exact.json()["placement"], exact.json()["start_ts"]) == ("requested", T0 + 20 * 3600)
    # The same robot cannot have two jobs at once.
    clash = order(client, component="gripper", start_ts=T0 + 20 * 3600)
    assert clash.status_code == 409
    assert "choose another time" in clash.json()["detail"]


def test_bad_work_order_requests_are_4xx_with_the_reason(client: TestClient) -> None:
    unknown = order(client, robot="weld-99", component="gripper")
    assert unknown.status_code == 404
    assert "not in scenario 'default'" in unknown.json()["detail"]
    part = order(client, component="wheel")
    assert part.status_code == 422
    assert "its components are reducer-j2, servo-j1, gripper" in str(part.json()["detail"])
    assert order(client, component="gripper", duration_s=-5).status_code == 422
    assert order(client, component="gripper", colour="red").status_code == 422
    missing = client.get("/api/work-orders/wo-999999")
    assert missing.status_code == 404
    assert "GET /api/work-orders" in missing.json()["detail"]


def test_a_fault_is_sent_as_an_inject_fault_command(client: TestClient) -> None:
    response = client.post(
        f"/api/robots/{ROBOT}/faults",
        json={"fault": "accelerated_wear", "component": "reducer-j2", "magnitude": 8},
        headers=KEY,
    )
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["robot"] == ROBOT
    assert accepted["fault"] == "accelerated_wear"
    assert accepted["command_id"].startswith("fault-svc-")
    assert accepted["topic"] == f"factory/plant-1/body-shop/line-1/{ROBOT}/cmd"
    newest = T0 + (4 * 3600 / SAMPLE_S - 1) * SAMPLE_S
    assert accepted["expires_ts"] == newest + 6 * 3600  # the default expiry, simulated
    metrics = client.get("/metrics").text
    assert 'factory_commands_sent_total{type="inject_fault"} 1.0' in metrics


def test_bad_faults_are_refused_with_what_the_robot_would_say(client: TestClient) -> None:
    def fault(robot: str = ROBOT, **body: Any) -> Any:
        return client.post(f"/api/robots/{robot}/faults", json=body, headers=KEY)

    needs_part = fault(fault="accelerated_wear")
    assert needs_part.status_code == 422
    assert "accelerated_wear needs a component" in str(needs_part.json()["detail"])
    wrong_part = fault(fault="accelerated_wear", component="wheel")
    assert "unknown component 'wheel'" in str(wrong_part.json()["detail"])
    assert fault(fault="spike").status_code == 422  # needs a sensor
    assert fault(fault="melt").status_code == 422
    assert fault(fault="overheat", magnitude=0).status_code == 422
    assert fault(robot="weld-99", fault="overheat").status_code == 404


def test_no_simulated_time_yet_is_a_409(tmp_path: Path) -> None:
    with TestClient(create_app(settings_for(tmp_path))) as client:  # an empty store
        response = order(client, component="gripper")
        assert response.status_code == 409
        assert "no simulated time" in response.json()["detail"]
        assert client.get(f"/api/robots/{ROBOT}/health").json()["ts"] is None
        assert client.get("/api/alarms").json() == []
