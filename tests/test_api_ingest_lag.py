"""The service's ingest lag: the pure bookkeeping, and the real service on Mosquitto reporting a
commit that hangs as lag on /metrics and as a /readyz problem, then ready again once it catches
up."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from brokers import BrokerHandle, robot_topic
from test_api_ingest import (
    T0,
    eventually,
    metric,
    running,
    service_settings,
    telemetry,
    wait_rows,
)

from api.lag import IngestLag
from api.store.sqlite import SqliteStore
from contract.topics import Channel


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_lag_grows_while_a_batch_is_in_commit_and_clears_when_caught_up() -> None:
    clock = FakeClock(100.0)
    lag = IngestLag(max_s=5.0, clock=clock)
    assert lag.seconds() == 0.0
    assert lag.problem() is None
    lag.taken(oldest_received_at=99.0)
    clock.now = 103.0
    assert lag.seconds() == 4.0
    assert lag.problem() is None
    clock.now = 107.0
    assert lag.seconds() == 8.0
    problem = lag.problem()
    assert problem is not None
    assert "8.0 s behind" in problem
    assert "INGEST_LAG_MAX_S=5" in problem
    lag.committed(committed_at=107.5, backlog=3)  # still messages queued behind: still behind
    assert lag.seconds() == 8.5
    assert lag.problem() is not None
    lag.taken(oldest_received_at=106.0)
    lag.committed(committed_at=107.6, backlog=0)  # caught up
    assert lag.seconds() == 0.0
    assert lag.problem() is None


def test_no_bound_is_never_a_problem() -> None:
    clock = FakeClock(0.0)
    lag = IngestLag(max_s=None, clock=clock)
    lag.taken(0.0)
    clock.now = 1e6
    assert lag.seconds() == 1e6
    assert lag.problem() is None


@pytest.mark.integration
def test_a_hanging_commit_is_lag_on_metrics_and_readyz_until_it_catches_up(
    mosquitto_broker: BrokerHandle,
    topic_site: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = mosquitto_broker
    robot = broker.robot_ids[0]
    settings = service_settings(broker, topic_site, tmp_path / "f.db", ingest_lag_max_s=0.5)
    release = threading.Event()
    real_write = SqliteStore.write

    def slow(self: SqliteStore, accepted: Any, refused: Any) -> Any:
        release.wait(30.0)
        return real_write(self, accepted, refused)

    monkeypatch.setattr(SqliteStore, "write", slow)
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    try:
        with running(settings) as client:
            assert metric(client, "factory_ingest_lag_max_seconds") == 0.5
            broker.publish(publisher, topic, telemetry(robot, 1, 40.0))
            ready = eventually(
                lambda: (r := client.get("/readyz")).status_code == 503 and r.json(),
                "/readyz reporting the lag",
            )
            assert any("ingest is" in p and "behind" in p for p in ready["problems"])
            assert metric(client, "factory_ingest_lag_seconds") > 0.5
            release.set()
            eventually(lambda: client.get("/readyz").status_code == 200, "ready after catching up")
            assert metric(client, "factory_ingest_lag_seconds") < 0.5
            assert [r["ts"] for r in wait_rows(client, robot, 1)] == [T0 + 1]
    finally:
        release.set()
