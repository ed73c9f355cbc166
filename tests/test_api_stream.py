"""``/api/stream`` over real HTTP (uvicorn on an ephemeral port) fed by a real broker."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from brokers import BrokerHandle, robot_topic

from api.app import create_app
from api.serve import BackgroundServer
from api.settings import Settings
from contract.codec import encode
from contract.payloads import ComponentTruth, Reading, State, Telemetry, Truth
from contract.topics import Channel

pytestmark = pytest.mark.integration

T0 = 1_767_592_800.0
WAIT_S = 10.0
API_KEY = "stream-test-key"


def settings_for(broker: BrokerHandle, site: str, tmp_path: Path) -> Settings:
    return Settings(
        mqtt_topic_filter=f"factory/{site}/#",
        state_dir=broker.state_dir,
        db_path=tmp_path / "f.db",
        broker_url=broker.url,
        mqtt_protocol="mqtt5" if broker.impl == "mosquitto" else "mqtt311",
        mqtt_client_id=f"svc-{os.urandom(4).hex()}",
        stream_heartbeat_s=0.3,
        api_key=API_KEY,
    )


@pytest.fixture
def server(broker: BrokerHandle, topic_site: str, tmp_path: Path) -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(settings_for(broker, topic_site, tmp_path))) as running:
        deadline = time.monotonic() + WAIT_S
        while httpx.get(f"{running.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.05)
        yield running


def sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Parse an event stream into dicts: ``event``/``data`` for events, ``comment`` otherwise."""
    current: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":"):
            yield {"comment": line[1:].strip()}
        elif line.startswith("event: "):
            current["event"] = line[len("event: ") :]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[len("data: ") :])
        elif line == "" and current:
            yield current
            current = {}


def telemetry(robot: str, seq: int) -> bytes:
    reading = Reading(ts=T0 + seq, temperature_c=40.0 + seq)
    return encode(
        Telemetry(v=1, robot=robot, ts=T0 + seq, boot="boot-1", seq=seq, readings=[reading])
    )


def test_readings_and_state_changes_reach_a_filtered_stream(
    broker: BrokerHandle, server: BackgroundServer, topic_site: str
) -> None:
    robot, other = broker.robot_ids[:2]
    ours, theirs = broker.client(robot), broker.client(other)
    params = {"robot": robot, "channel": ["telemetry", "state"]}
    with (
        httpx.Client(timeout=WAIT_S) as http,
        http.stream("GET", f"{server.url}/api/stream", params=params) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        items = sse(response.iter_lines())
        assert next(items) == {"comment": "connected"}
        # Another robot, and our robot on a channel we did not ask for: both filtered out.
        broker.publish(
            theirs, robot_topic(topic_site, other, Channel.TELEMETRY), telemetry(other, 1)
        )
        broker.publish(ours, robot_topic(topic_site, robot, Channel.TELEMETRY), telemetry(robot, 2))
        state = State(v=1, robot=robot, ts=T0 + 3, boot="boot-1", seq=3, state="BROKEN", since=T0)
        broker.publish(ours, robot_topic(topic_site, robot, Channel.STATE), encode(state))
        events = [item for item in _until(items, count=2) if "event" in item]
        assert _stream_clients(server) == 1
    deadline = time.monotonic() + WAIT_S
    while _stream_clients(server) != 0:  # the client left: its subscription is gone
        assert time.monotonic() < deadline, "the stream subscription outlived its client"
        time.sleep(0.05)
    assert [e["event"] for e in events] == ["telemetry", "state"]
    first, second = (e["data"] for e in events)
    assert first["robot"] == robot
    assert first["site"] == topic_site
    assert first["payload"]["readings"][0]["temperature_c"] == 42.0
    assert second["payload"]["state"] == "BROKEN"


def truth(robot: str, seq: int) -> bytes:
    component = ComponentTruth(name="gearbox", wear=0.42, threshold=1.0, rul_s=86_400.0)
    return encode(
        Truth(v=1, robot=robot, ts=T0 + seq, boot="boot-1", seq=seq, components=[component])
    )


def test_ground_truth_reaches_only_the_stream_clients_holding_the_api_key(
    broker: BrokerHandle, server: BackgroundServer, topic_site: str
) -> None:
    """Three inspectors on the raw channel while the robot publishes truth then telemetry: the
    one without the key sees the telemetry but never the truth; with the key (as a header, or
    as ?api_key= the way a browser's EventSource sends it) both arrive."""
    robot = broker.robot_ids[0]
    ours = broker.client(robot)
    url = f"{server.url}/api/stream"
    raw = {"robot": robot, "channel": "raw"}
    with (
        httpx.Client(timeout=WAIT_S) as http,
        http.stream("GET", url, params=raw) as anonymous,
        http.stream("GET", url, params=raw, headers={"X-API-Key": API_KEY}) as by_header,
        http.stream("GET", url, params={**raw, "api_key": API_KEY}) as by_query,
    ):
        streams = [sse(r.iter_lines()) for r in (anonymous, by_header, by_query)]
        for items in streams:
            assert next(items) == {"comment": "connected"}
        truth_topic = robot_topic(topic_site, robot, Channel.TRUTH)
        broker.publish(ours, truth_topic, truth(robot, 1))
        broker.publish(ours, robot_topic(topic_site, robot, Channel.TELEMETRY), telemetry(robot, 2))
        seen = [[e["data"]["topic"] for e in _until(items, 2) if "event" in e] for items in streams]
    telemetry_topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    assert telemetry_topic in seen[0]  # the keyless client was served: the truth came first
    assert truth_topic not in seen[0]
    assert seen[1] == [truth_topic, telemetry_topic]
    assert seen[2] == [truth_topic, telemetry_topic]


def test_a_wrong_key_on_the_stream_is_refused(server: BackgroundServer) -> None:
    for how in ({"headers": {"X-API-Key": "wrong"}}, {"params": {"api_key": "wrong"}}):
        assert httpx.get(f"{server.url}/api/stream", timeout=WAIT_S, **how).status_code == 403


def test_truth_in_the_dead_letters_is_shown_only_with_the_api_key(
    broker: BrokerHandle, server: BackgroundServer, topic_site: str
) -> None:
    robot = broker.robot_ids[0]
    secret = b'{"v":1,"components":[{"name":"gearbox","wear":0.42,"rul_s":"soon"}]}'
    broker.publish(broker.client(robot), robot_topic(topic_site, robot, Channel.TRUTH), secret)
    deadline = time.monotonic() + WAIT_S
    while not (letters := httpx.get(f"{server.url}/api/rejects").json()["recent"]):
        assert time.monotonic() < deadline, "the malformed truth message was not dead-lettered"
        time.sleep(0.05)
    assert "0.42" not in letters[0]["payload"]
    assert "ground truth" in letters[0]["payload"]
    keyed = httpx.get(f"{server.url}/api/rejects", headers={"X-API-Key": API_KEY}).json()
    assert keyed["recent"][0]["payload"] == secret.decode()


def test_an_idle_stream_gets_heartbeat_comments(server: BackgroundServer) -> None:
    with (
        httpx.Client(timeout=WAIT_S) as http,
        http.stream("GET", f"{server.url}/api/stream", params={"robot": "nobody"}) as response,
    ):
        items = sse(response.iter_lines())
        assert next(items) == {"comment": "connected"}
        assert next(items) == {"comment": "heartbeat"}
        assert next(items) == {"comment": "heartbeat"}


def _stream_clients(server: BackgroundServer) -> float:
    for line in httpx.get(f"{server.url}/metrics").text.splitlines():
        if line.startswith("factory_stream_clients "):
            return float(line.split()[1])
    raise AssertionError("no factory_stream_clients in /metrics")


def _until(items: Iterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    """Read until ``count`` events arrived (heartbeats skipped); bounded by the client timeout."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT_S
    for item in items:
        got.append(item)
        if sum("event" in i for i in got) >= count or time.monotonic() > deadline:
            break
    return got
