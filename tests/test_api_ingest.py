"""The service against real brokers: readings in, duplicates out, nothing lost across restarts.

Publishers are plain paho clients logged in as robots (``tests/brokers.py``); the service is the
real app with its lifespan (``TestClient``), its own SQLite file, and a client id of its own so
each test has its own persistent session on the session broker.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from brokers import BrokerHandle, robot_topic
from paho.mqtt.enums import MQTTProtocolVersion

from api.app import create_app
from api.inbound import Inbound
from api.ingest.mqtt_client import IngestClient
from api.settings import Settings
from api.store import StoreUnavailable
from api.store.sqlite import SqliteStore
from contract.codec import encode
from contract.payloads import Reading, State, Telemetry
from contract.topics import Channel

with warnings.catch_warnings():
    # Starlette 1.x wants httpx2 for its TestClient and warns on import; httpx behaves the same.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

T0 = 1_767_592_800.0
WAIT_S = 10.0
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout_s: float = WAIT_S) -> T:
    """Poll ``probe`` until it returns something truthy; fail saying ``what`` did not happen."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout_s} s: {what}")
        time.sleep(0.02)


def service_settings(broker: BrokerHandle, site: str, db: Path, **overrides: Any) -> Settings:
    """The service for one test: its own database, session and site (the session broker holds
    other tests' retained messages, which a whole-factory subscription would ingest too)."""
    values: dict[str, Any] = {
        "mqtt_topic_filter": f"factory/{site}/#",
        "state_dir": broker.state_dir,
        "db_path": db,
        "broker_url": broker.url,
        "mqtt_protocol": "mqtt5" if broker.impl == "mosquitto" else "mqtt311",
        "mqtt_client_id": f"svc-{os.urandom(4).hex()}",
        "mqtt_reconnect_min_s": 0.1,
        "mqtt_reconnect_max_s": 1.0,
    }
    return Settings(**(values | overrides))


@contextmanager
def running(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        eventually(lambda: client.get("/readyz").status_code == 200, "the service became ready")
        yield client


def telemetry(robot: str, seq: int, temperature_c: float, boot: str = "boot-1") -> bytes:
    ts = T0 + seq
    reading = Reading(ts=ts, temperature_c=temperature_c, vibration_rms_mm_s=0.5)
    return encode(Telemetry(v=1, robot=robot, ts=ts, boot=boot, seq=seq, readings=[reading]))


def history(client: TestClient, robot: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/robots/{robot}/telemetry", params={"since": T0, "until": T0 + 1e4})
    if response.status_code == 404:
        return []
    assert response.status_code == 200, response.text
    points: list[dict[str, Any]] = response.json()["points"]
    return points


def wait_rows(client: TestClient, robot: str, count: int) -> list[dict[str, Any]]:
    return eventually(
        lambda: (rows := history(client, robot)) and len(rows) >= count and rows,
        f"{count} readings of {robot} stored",
    )


def metric(client: TestClient, name: str) -> float:
    """Sum of a metric's samples in /metrics (all label values)."""
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name) and line[len(name)] in "{ ":
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def robot(broker: BrokerHandle) -> str:
    return broker.robot_ids[0]


def test_readings_published_by_a_robot_are_served(
    broker: BrokerHandle, topic_site: str, robot: str, tmp_path: Path
) -> None:
    publisher = broker.client(robot)
    with running(service_settings(broker, topic_site, tmp_path / "f.db")) as client:
        state = State(v=1, robot=robot, ts=T0, boot="boot-1", seq=1, state="RUNNING", since=T0)
        broker.publish(publisher, robot_topic(topic_site, robot, Channel.STATE), encode(state))
        for seq in range(2, 12):
            payload = telemetry(robot, seq, 40.0 + seq)
            broker.publish(publisher, robot_topic(topic_site, robot, Channel.TELEMETRY), payload)
        rows = wait_rows(client, robot, 10)
        assert [r["values"]["temperature_c"] for r in rows] == [40.0 + s for s in range(2, 12)]
        listed = {r["id"]: r for r in client.get("/api/robots").json()}
        assert listed[robot]["state"] == "RUNNING"
        assert listed[robot]["latest"]["values"]["temperature_c"] == 51.0
        assert listed[robot]["last_seen"] == T0 + 11
        assert metric(client, "factory_ingest_messages_total") == 11
        assert metric(client, "factory_robot_state") == 1  # one state is 1, the others 0


def test_a_redelivered_duplicate_adds_no_row(
    broker: BrokerHandle, topic_site: str, robot: str, tmp_path: Path
) -> None:
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    with running(service_settings(broker, topic_site, tmp_path / "f.db")) as client:
        for seq in (1, 2, 2, 3, 1):  # the repeats are what a store-and-forward replay sends
            broker.publish(publisher, topic, telemetry(robot, seq, 40.0))
        eventually(
            lambda: metric(client, "factory_ingest_duplicates_total") == 2, "2 duplicates counted"
        )
        assert [r["ts"] for r in history(client, robot)] == [T0 + 1, T0 + 2, T0 + 3]


def test_committed_but_unacknowledged_messages_come_back_as_duplicates(
    broker: BrokerHandle,
    topic_site: str,
    robot: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A crash between commit and PUBACK: Mosquitto redelivers, and the store says 'seen'.

    amqtt 0.12 drops a session's unacknowledged in-flight messages when the connection ends
    (``amqtt/mqtt/protocol/handler.py``: the PUBACK waiter is cancelled and the message popped),
    so nothing comes back there — harmless here, because everything was committed."""
    settings = service_settings(broker, topic_site, tmp_path / "f.db")
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    with monkeypatch.context() as patch:
        patch.setattr(IngestClient, "ack", lambda self, messages: 0)
        with running(settings) as client:
            for seq in range(1, 6):
                broker.publish(publisher, topic, telemetry(robot, seq, 40.0))
            wait_rows(client, robot, 5)
    with running(settings) as client:
        broker.publish(publisher, topic, telemetry(robot, 6, 40.0))  # a marker, after the queue
        wait_rows(client, robot, 6)
        redelivered = 5 if broker.impl == "mosquitto" else 0
        eventually(
            lambda: metric(client, "factory_ingest_duplicates_total") == redelivered,
            f"{redelivered} unacknowledged messages redelivered and counted as duplicates",
        )
        assert len(history(client, robot)) == 6


def test_nothing_is_acknowledged_before_it_is_committed(
    broker: BrokerHandle,
    topic_site: str,
    robot: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While the store cannot commit, the service holds back its PUBACKs, so after a restart
    Mosquitto delivers everything again. amqtt 0.12 drops unacknowledged in-flight messages
    (after 5 s without a PUBACK, or when the connection ends): on amqtt they are lost, which
    is the broker's limit, pinned here so an amqtt upgrade that fixes it shows up."""
    settings = service_settings(broker, topic_site, tmp_path / "f.db")
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    acked: list[Inbound] = []

    def unavailable(self: SqliteStore, accepted: Any, refused: Any) -> Any:
        raise StoreUnavailable("disk unplugged (test)")

    with monkeypatch.context() as patch:
        patch.setattr(SqliteStore, "write", unavailable)
        real_ack = IngestClient.ack
        patch.setattr(IngestClient, "ack", lambda self, m: acked.extend(m) or real_ack(self, m))
        with running(settings) as client:
            for seq in range(1, 4):
                broker.publish(publisher, topic, telemetry(robot, seq, 40.0))
            ready = eventually(
                lambda: (r := client.get("/readyz")).status_code == 503 and r.json(),
                "/readyz reporting the store",
            )
            assert "store cannot commit" in ready["problems"][0]
            assert metric(client, "factory_store_errors_total") >= 1
            assert history(client, robot) == []
    assert acked == []
    with running(settings) as client:
        broker.publish(publisher, topic, telemetry(robot, 4, 40.0))  # a marker, after the queue
        expected = [T0 + 4] if broker.impl == "amqtt" else [T0 + s for s in range(1, 5)]
        rows = wait_rows(client, robot, len(expected))
        assert [r["ts"] for r in rows] == expected


def test_restart_keeps_history_and_ingests_what_came_while_down(
    broker: BrokerHandle, topic_site: str, robot: str, tmp_path: Path
) -> None:
    settings = service_settings(broker, topic_site, tmp_path / "f.db")
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    with running(settings) as client:
        for seq in range(1, 6):
            broker.publish(publisher, topic, telemetry(robot, seq, 40.0))
        broker.publish(publisher, topic, b"{not json")
        wait_rows(client, robot, 5)
        eventually(lambda: client.get("/api/rejects").json()["total"] == 1, "the reject kept")
    for seq in range(6, 11):  # the service is down: the broker queues for its session
        broker.publish(publisher, topic, telemetry(robot, seq, 41.0))
    with running(settings) as client:
        rows = wait_rows(client, robot, 10)
        assert [r["ts"] for r in rows] == [T0 + s for s in range(1, 11)]
        rejects = client.get("/api/rejects").json()
        assert rejects["counts"] == {"bad_json": 1}
        assert rejects["recent"][0]["payload"] == "{not json"
        assert client.get(f"/api/robots/{robot}").json()["last_seen"] == T0 + 10


@pytest.mark.parametrize("protocol", ["mqtt5", "mqtt311"])
def test_a_full_ingest_queue_is_counted_and_loses_nothing(
    mosquitto_broker: BrokerHandle, topic_site: str, tmp_path: Path, protocol: str
) -> None:
    """Overflowed messages stay unacknowledged; the service reconnects and Mosquitto resends.

    Only reachable when the broker's in-flight window (MQTT 5 Receive Maximum, 1000 here; 3.1.1
    ``max_inflight_messages``, 20) is larger than the queue (4 here): with the defaults the
    queue holds more than the window and cannot overflow. On amqtt, which has no window and
    drops unacknowledged in-flight messages on reconnect, overflowed messages would be lost.
    """
    broker = mosquitto_broker
    robot = broker.robot_ids[0]
    settings = service_settings(broker, topic_site, tmp_path / "f.db", ingest_queue_max=4)
    settings = settings.model_copy(update={"mqtt_protocol": protocol})
    publisher = broker.client(robot, MQTTProtocolVersion.MQTTv311)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    with running(settings) as client:
        infos = [publisher.publish(topic, telemetry(robot, s, 40.0), qos=1) for s in range(1, 61)]
        for info in infos:
            info.wait_for_publish(WAIT_S)
        rows = wait_rows(client, robot, 60)
        assert sorted(r["ts"] for r in rows) == [T0 + s for s in range(1, 61)]
        assert metric(client, "factory_ingest_queue_overflow_total") > 0
        assert metric(client, "factory_ingest_messages_total") == 60


def test_a_shared_subscription_spreads_ingest_over_workers(
    mosquitto_broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    """Two services in one ``$share`` group: each message is ingested by exactly one of them.

    (amqtt 0.12 has no shared subscriptions; scale-out needs Mosquitto or another MQTT 5 broker.)
    """
    broker = mosquitto_broker
    robot = broker.robot_ids[0]
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    group = {"mqtt_shared_group": f"ingest-{os.urandom(3).hex()}"}
    first = service_settings(broker, topic_site, tmp_path / "a.db", **group)
    second = service_settings(broker, topic_site, tmp_path / "b.db", **group)
    with running(first) as one, running(second) as two:
        for seq in range(1, 41):
            broker.publish(publisher, topic, telemetry(robot, seq, 40.0))
        eventually(
            lambda: len(history(one, robot)) + len(history(two, robot)) == 40,
            "40 readings between the two workers",
        )
        mine, theirs = history(one, robot), history(two, robot)
    assert mine
    assert theirs
    assert sorted(r["ts"] for r in mine + theirs) == [T0 + s for s in range(1, 41)]


def test_retained_messages_of_other_sites_are_not_ingested(
    broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    """amqtt 0.12 sends a connecting client the retained messages matching *any* live client's
    filter; the service drops (and acknowledges) what its own filter does not cover, so another
    site's robot never moves into this service's view. On Mosquitto nothing stray arrives."""
    other_site = f"{topic_site}-x"
    robot, other = broker.robot_ids[:2]
    watcher = broker.capture(f"factory/{other_site}/#")  # keeps that filter live on the broker
    state = State(v=1, robot=other, ts=T0 + 500, boot="boot-1", seq=1, state="IDLE", since=T0)
    stray_topic = robot_topic(other_site, other, Channel.STATE)
    broker.publish(broker.client(other), stray_topic, encode(state), retain=True)
    watcher.wait_for(lambda m: m.topic == stray_topic)
    publisher = broker.client(robot)
    with running(service_settings(broker, topic_site, tmp_path / "f.db")) as client:
        broker.publish(
            publisher, robot_topic(topic_site, robot, Channel.TELEMETRY), telemetry(robot, 1, 40.0)
        )
        wait_rows(client, robot, 1)
        assert [r["id"] for r in client.get("/api/robots").json()] == [robot]
        assert client.get(f"/api/robots/{robot}").json()["site"] == topic_site
