"""The HTTP endpoints with no broker reachable: reads from a real SQLite file, caps, API keys,
readiness, metrics and the documented schema."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends

from api.app import create_app
from api.auth import require_api_key
from api.settings import Settings
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


def unreachable_broker() -> str:
    """A local port nothing listens on (bound then closed), so connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"mqtt://127.0.0.1:{sock.getsockname()[1]}"


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "state_dir": tmp_path,
        "db_path": tmp_path / "f.db",
        "broker_url": unreachable_broker(),
        "mqtt_username": "nobody",
        "mqtt_password": "nothing",
        "mqtt_reconnect_min_s": 0.1,
        "api_key": "s3cret-key",
        "telemetry_max_points": 50,
        "telemetry_max_range_s": 86400.0,
    }
    return Settings(**(values | overrides))


def seed(db: Path, readings: int = 120) -> None:
    """Write a robot with a state and one reading per second, as ingest would have."""
    topic = Topic("plant-1", "body-shop", "line-1", ROBOT, Channel.TELEMETRY)
    store = SqliteStore(db)
    try:
        state = State(v=1, robot=ROBOT, ts=T0, boot="boot-1", seq=1, state="RUNNING", since=T0)
        messages = [Accepted(topic.with_channel(Channel.STATE), state, 1.0)]
        for i in range(readings):
            reading = Reading(ts=T0 + i, temperature_c=40.0 + i % 10, vibration_rms_mm_s=0.5)
            payload = Telemetry(
                v=1, robot=ROBOT, ts=T0 + i, boot="boot-1", seq=i + 2, readings=[reading]
            )
            messages.append(Accepted(topic, payload, 1.0))
        store.write(messages, [])
    finally:
        store.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    seed(tmp_path / "f.db")
    with TestClient(create_app(settings_for(tmp_path))) as test_client:
        yield test_client


def test_liveness_and_readiness_without_a_broker(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert any("broker" in problem for problem in body["problems"])


def test_robots_are_served_from_the_store(client: TestClient) -> None:
    robots = client.get("/api/robots").json()
    assert [r["id"] for r in robots] == [ROBOT]
    assert robots[0]["state"] == "RUNNING"
    assert robots[0]["latest"] == {
        "ts": T0 + 119,
        "values": {"temperature_c": 49.0, "vibration_rms_mm_s": 0.5},
    }
    assert client.get(f"/api/robots/{ROBOT}").json() == robots[0]


def test_an_unknown_robot_is_a_404_that_says_what_to_do(client: TestClient) -> None:
    response = client.get("/api/robots/nobody-here")
    assert response.status_code == 404
    assert "GET /api/robots lists the known ones" in response.json()["detail"]
    assert client.get("/api/robots/nobody-here/telemetry").status_code == 404


def test_history_defaults_to_the_window_before_the_simulated_clock(client: TestClient) -> None:
    series = client.get(f"/api/robots/{ROBOT}/telemetry", params={"metric": "temperature_c"})
    body = series.json()
    assert series.status_code == 400  # 120 readings in the default hour: over the cap of 50
    assert "cap of 50 points" in body["detail"]
    assert "every=SECONDS" in body["detail"]
    body = client.get(f"/api/robots/{ROBOT}/telemetry", params={"every": 100}).json()
    assert (body["since"], body["until"]) == (T0 + 119 - 3600, T0 + 119)
    assert sum(p["n"] for p in body["points"]) == 120


def test_downsampling_averages_each_bucket(client: TestClient) -> None:
    body = client.get(
        f"/api/robots/{ROBOT}/telemetry",
        params={"metric": "temperature_c", "every": 10, "since": T0, "until": T0 + 119},
    ).json()
    assert [p["ts"] for p in body["points"]] == [T0 + 10 * k for k in range(12)]
    assert [p["n"] for p in body["points"]] == [10] * 12
    assert {p["values"]["temperature_c"] for p in body["points"]} == {44.5}  # 40..49 averaged


def test_a_range_over_the_cap_is_refused_with_400(client: TestClient) -> None:
    response = client.get(
        f"/api/robots/{ROBOT}/telemetry", params={"since": 0, "until": T0, "every": 3600}
    )
    assert response.status_code == 400
    assert "over the cap of 86400 s; narrow since/until" in response.json()["detail"]


def test_raw_readings_in_a_small_range(client: TestClient) -> None:
    response = client.get(
        f"/api/robots/{ROBOT}/telemetry",
        params={"since": T0 + 10, "until": T0 + 12, "metric": "vibration_rms_mm_s"},
    )
    assert response.json()["points"] == [
        {"ts": T0 + s, "n": 1, "values": {"vibration_rms_mm_s": 0.5}} for s in (10, 11, 12)
    ]
    bad = client.get(f"/api/robots/{ROBOT}/telemetry", params={"metric": "pressure_bar"})
    assert bad.status_code == 422


def test_rejects_endpoint_starts_empty(client: TestClient) -> None:
    assert client.get("/api/rejects").json() == {"counts": {}, "total": 0, "recent": []}


def test_write_endpoints_need_the_api_key(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path))

    @app.post("/api/test-only-write", dependencies=[Depends(require_api_key)])
    def write() -> dict[str, bool]:
        return {"written": True}

    with TestClient(app) as client:
        missing = client.post("/api/test-only-write")
        assert missing.status_code == 401
        assert "X-API-Key" in missing.json()["detail"]
        wrong = client.post("/api/test-only-write", headers={"X-API-Key": "s3cret-kez"})
        assert wrong.status_code == 403
        right = client.post("/api/test-only-write", headers={"X-API-Key": "s3cret-key"})
        assert right.json() == {"written": True}
        assert client.get("/api/robots").status_code == 200  # reads stay open by default


def test_without_a_configured_key_writes_are_refused_saying_how(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, api_key=None))

    @app.post("/api/test-only-write", dependencies=[Depends(require_api_key)])
    def write() -> dict[str, bool]:
        return {"written": True}

    with TestClient(app) as client:
        response = client.post("/api/test-only-write", headers={"X-API-Key": "anything"})
        assert response.status_code == 403
        assert "FACTORY_API_KEY" in response.json()["detail"]


def test_reads_can_require_the_key_too(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, require_key_for_reads=True))
    with TestClient(app) as client:
        assert client.get("/api/robots").status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/api/robots", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        assert client.get("/healthz").status_code == 200  # probes never need it


def test_each_app_has_its_own_metrics_registry(tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    seed(first_dir / "f.db")
    with (
        TestClient(create_app(settings_for(first_dir))) as first,
        TestClient(create_app(settings_for(second_dir))) as second,
    ):
        text_first, text_second = first.get("/metrics").text, second.get("/metrics").text
    assert 'factory_robot_state{line="line-1",robot="weld-01",state="RUNNING"} 1.0' in text_first
    assert 'factory_robot_state{line="line-1",robot="weld-01",state="IDLE"} 0.0' in text_first
    assert "factory_robot_state{" not in text_second
    for text in (text_first, text_second):  # both count from zero, side by side in one process
        assert 'factory_ingest_rejected_total{reason="bad_json"} 0.0' in text
        assert "factory_broker_connected 0.0" in text


def test_every_api_response_is_documented_with_a_model(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path in ("/api/robots", "/api/robots/{robot_id}", "/api/robots/{robot_id}/telemetry"):
        ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
        assert ok["schema"], path
    telemetry = schema["paths"]["/api/robots/{robot_id}/telemetry"]["get"]["responses"]
    assert {"200", "400", "404", "422"} <= set(telemetry)
    assert (
        "text/event-stream" in schema["paths"]["/api/stream"]["get"]["responses"]["200"]["content"]
    )


def test_kpis_are_served_documented_and_exported_to_prometheus(client: TestClient) -> None:
    # The seeded robot ran 119 s of production without a stop and reported no parts.
    body = client.get("/api/kpis").json()
    assert (body["since"], body["until"]) == (T0, T0 + 119)
    weld = next(r for r in body["robots"] if r["robot"] == ROBOT)
    assert weld["availability"] == 1.0
    assert weld["planned_h"] == pytest.approx(119 / 3600)
    assert weld["mtbf_h"] is None
    assert {ln["line"] for ln in body["lines"]} >= {"line-1"}
    assert client.get("/api/kpis", params={"hours": 0.01}).json()["since"] == pytest.approx(
        T0 + 119 - 36
    )
    # Both: the shorter window; a since before the first message starts at the first message.
    both = client.get("/api/kpis", params={"hours": 1, "since": T0 + 100}).json()
    assert both["since"] == T0 + 100
    assert client.get("/api/kpis", params={"since": T0 - 9999}).json()["since"] == T0
    assert client.get("/api/kpis", params={"hours": -1}).status_code == 422
    text = client.get("/metrics").text
    assert 'factory_robot_availability{line="line-1",robot="weld-01"} 1.0' in text
    assert 'factory_line_availability{line="line-1"}' in text
    kpis = client.get("/openapi.json").json()["paths"]["/api/kpis"]["get"]
    assert {"200", "400", "422"} <= set(kpis["responses"])  # 400: a non-finite since
