"""The stream's maintenance and inspector channels over real HTTP, fed by a real broker:
``alarm`` and ``work_order`` events as the engine acts, and ``raw`` (every message received, valid
or not) only for a client that asks for it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from brokers import BrokerHandle, robot_topic
from test_api_stream import sse

from api.app import create_app
from api.serve import BackgroundServer
from api.settings import Settings
from contract.codec import encode
from contract.payloads import Reading, Telemetry
from contract.topics import Channel

pytestmark = pytest.mark.integration

T0 = 1_767_592_800.0
WAIT_S = 10.0
KEY = {"X-API-Key": "stream-key"}


@pytest.fixture
def server(broker: BrokerHandle, topic_site: str, tmp_path: Path) -> Iterator[BackgroundServer]:
    settings = Settings(
        mqtt_topic_filter=f"factory/{topic_site}/#",
        state_dir=broker.state_dir,
        db_path=tmp_path / "f.db",
        broker_url=broker.url,
        mqtt_protocol="mqtt5" if broker.impl == "mosquitto" else "mqtt311",
        mqtt_client_id=f"svc-{os.urandom(4).hex()}",
        stream_heartbeat_s=0.3,
        api_key=KEY["X-API-Key"],
    )
    with BackgroundServer(create_app(settings)) as running:
        deadline = time.monotonic() + WAIT_S
        while httpx.get(f"{running.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.05)
        yield running


def telemetry(robot: str, seq: int, temperature_c: float) -> bytes:
    reading = Reading(ts=T0 + 300 * seq, temperature_c=temperature_c)
    return encode(
        Telemetry(v=1, robot=robot, ts=T0 + 300 * seq, boot="boot-1", seq=seq, readings=[reading])
    )


def events_until(
    items: Iterator[dict[str, Any]], done: Any, timeout_s: float = WAIT_S
) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    for item in items:
        if "event" in item:
            got.append(item)
            if done(got):
                return got
        assert time.monotonic() < deadline, f"stream ended the wait with {got}"
    raise AssertionError(f"the stream ended early after {got}")


def test_raw_shows_every_message_received_only_to_clients_that_ask(
    broker: BrokerHandle, server: BackgroundServer, topic_site: str
) -> None:
    robot = broker.robot_ids[0]
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    with (
        httpx.Client(timeout=WAIT_S) as http,
        http.stream("GET", f"{server.url}/api/stream", params={"channel": "raw"}) as inspector,
        http.stream("GET", f"{server.url}/api/stream", params={"robot": robot}) as plain,
    ):
        raw, everything = sse(inspector.iter_lines()), sse(plain.iter_lines())
        assert next(raw) == {"comment": "connected"}
        assert next(everything) == {"comment": "connected"}
        broker.publish(publisher, topic, telemetry(robot, 1, 40.0))
        broker.publish(publisher, topic, b'{"v": 1, "robot": "' + robot.encode() + b'", "ts": NaN}')
        seen = events_until(raw, lambda got: len(got) >= 2)
        plain_events = events_until(everything, lambda got: len(got) >= 1)
    assert {e["event"] for e in seen} == {"raw"}
    good, bad = (e["data"] for e in seen[:2])
    assert good["topic"] == topic
    assert (good["qos"], good["retain"], good["rejected"]) == (1, False, None)
    assert '"temperature_c":40.0' in good["payload"]
    assert good["size"] == len(telemetry(robot, 1, 40.0))
    assert bad["rejected"] == "non_finite"
    assert bad["payload"].endswith("NaN}")
    # The client that named no channel got the reading, not the inspector's copy.
    assert [e["event"] for e in plain_events] == ["telemetry"]


def test_work_orders_and_alarms_are_streamed_as_the_engine_acts(
    broker: BrokerHandle, server: BackgroundServer, topic_site: str
) -> None:
    robot = "weld-01"  # a welder of the default scenario, which the engine follows
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    params = {"channel": ["work_order", "alarm"]}
    with (
        httpx.Client(timeout=WAIT_S) as http,
        http.stream("GET", f"{server.url}/api/stream", params=params) as response,
    ):
        items = sse(response.iter_lines())
        assert next(items) == {"comment": "connected"}
        # A temperature sensor that repeats itself exactly is stuck: a warning alarm.
        for seq in range(1, 9):
            broker.publish(publisher, topic, telemetry(robot, seq, 41.5))
        alarm = events_until(items, lambda got: any(e["event"] == "alarm" for e in got))[-1]
        order = httpx.post(
            f"{server.url}/api/work-orders",
            json={"robot": robot, "component": "servo-j1", "note": "check the sensor"},
            headers=KEY,
        )
        assert order.status_code == 201, order.text
        streamed = events_until(
            items,
            lambda got: any(
                e["event"] == "work_order" and e["data"]["status"] == "dispatched" for e in got
            ),
        )
    assert alarm["data"]["signal"] == "temperature_c"
    assert (alarm["data"]["severity"], alarm["data"]["limit"]) == ("warning", "stuck")
    assert alarm["data"]["cleared_ts"] is None
    # Every change is streamed: stored as planned before its command leaves, then dispatched.
    changes = [e["data"] for e in streamed if e["event"] == "work_order"]
    assert [c["status"] for c in changes] == ["planned", "dispatched"]
    assert {c["id"] for c in changes} == {order.json()["id"]}
    assert changes[-1] == order.json()
    assert changes[-1]["note"] == "check the sensor"
