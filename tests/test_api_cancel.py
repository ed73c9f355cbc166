"""``POST /api/work-orders/{id}/cancel``: the engine's lifecycle, a cancel command to the robot,
and clear refusals — on the real app with no broker reachable (commands wait in the client)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_api_endpoints import settings_for
from test_api_maintenance import KEY, order, seed

from api.app import create_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    seed(tmp_path / "f.db")
    with TestClient(create_app(settings_for(tmp_path))) as test_client:
        yield test_client


def test_cancel_goes_through_the_lifecycle_and_sends_the_cancel_command(
    client: TestClient,
) -> None:
    created = order(client, component="gripper").json()
    url = f"/api/work-orders/{created['id']}/cancel"
    assert client.post(url).status_code == 401
    answer = client.post(url, json={"reason": "not needed"}, headers=KEY)
    assert answer.status_code == 200, answer.text
    cancelled = answer.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["active"] is False
    assert [h["status"] for h in cancelled["history"]] == ["planned", "dispatched", "cancelled"]
    assert cancelled["history"][-1]["reason"] == "cancelled by api (not needed)"
    assert client.get(f"/api/work-orders/{created['id']}").json() == cancelled
    metrics = client.get("/metrics").text
    assert 'factory_commands_sent_total{type="cancel_maintenance"} 1.0' in metrics
    # Twice is refused, saying why; the component is free for a new job.
    again = client.post(url, headers=KEY)
    assert again.status_code == 409
    assert "cancelled; it cannot become cancelled" in again.json()["detail"]
    assert order(client, component="gripper").status_code == 201


def test_cancelling_an_unknown_work_order_is_a_404(client: TestClient) -> None:
    answer = client.post("/api/work-orders/wo-999999/cancel", headers=KEY)
    assert answer.status_code == 404
    assert "GET /api/work-orders" in answer.json()["detail"]
    bad = client.post("/api/work-orders/wo-1/cancel", json={"reason": 5}, headers=KEY)
    assert bad.status_code == 422
