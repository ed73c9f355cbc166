"""The protocol inspector: Mosquitto's log read into MQTT events (pure), and end to end — a real
Mosquitto logging every packet, the service following its log, ``/api/stream?channel=mqtt``
showing a clean disconnect apart from a will firing, and a session resumed with queued messages.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from brokers import any_site_prefixes, require_broker
from paho.mqtt.enums import CallbackAPIVersion
from test_api_stream import sse

from api.app import create_app
from api.protocol_feed import ProtocolFeed
from api.protocol_log import parse_line
from api.serve import BackgroundServer
from api.settings import Settings
from api.stream import StreamHub
from broker_config.credentials import load_credentials
from broker_config.embedded import BrokerProcess, free_port, start_broker

# Mosquitto 2.0.11's own lines (log_type all) for: connect with a will, publish, clean
# disconnect, reconnect with the session present, then the connection dropped.
LOG = """\
1796304458: New connection from 127.0.0.1:53353 on port 18914.
1796304458: New client connected from 127.0.0.1:53353 as robot-x (p2, c0, k60, u'weld-01').
1796304458: Will message specified (3 bytes) (r1, q1).
1796304458: \tfactory/s/a/l/r/state
1796304458: Sending CONNACK to robot-x (0, 0)
1796304458: Received PUBLISH from robot-x (d0, q1, r1, m1, 'workshop/p01/hello', ... (2 bytes))
1796304458: Sending PUBACK to robot-x (m1, rc0)
1796304458: Received DISCONNECT from robot-x
1796304458: Client robot-x disconnected.
1796304458: New client connected from 127.0.0.1:57105 as robot-x (p2, c0, k60).
1796304458: Will message specified (3 bytes) (r1, q1).
1796304458: \tfactory/s/a/l/r/state
1796304458: Sending CONNACK to robot-x (1, 0)
1796304458: Sending PUBLISH to robot-x (d1, q1, r0, m7, 'factory/s/a/l/r/cmd', ... (40 bytes))
1796304458: Received PUBLISH from robot-x (d0, q0, r0, m0, 'factory/s/a/l/r/event', ... (9 bytes))
1796304458: Sending PUBLISH to robot-x (d0, q1, r0, m8, 'factory/s/a/l/r/cmd', ... (40 bytes))
1796304459: Client robot-x closed its connection.
"""


def test_log_lines_become_events() -> None:
    assert parse_line("1796304458: Sending PUBACK to robot-x (m1, rc0)") is None
    connect = parse_line(LOG.splitlines()[1])
    assert connect == {
        "kind": "connect",
        "client": "robot-x",
        "user": "weld-01",
        "peer": "127.0.0.1:53353",
        "protocol": "3.1.1",
        "clean_session": False,
        "keepalive_s": 60,
    }
    publish = parse_line(LOG.splitlines()[5])
    assert publish is not None
    assert (publish["direction"], publish["client"], publish["topic"]) == (
        "in",
        "robot-x",
        "workshop/p01/hello",
    )
    assert (publish["dup"], publish["qos"], publish["retain"], publish["size"]) == (
        False,
        1,
        True,
        2,
    )


def test_the_feed_tells_a_clean_disconnect_from_a_will_and_marks_queued_deliveries() -> None:
    feed = ProtocolFeed(Path("/nonexistent"), StreamHub(10))
    events = feed.events(LOG.splitlines())
    kinds = [e["kind"] for e in events]
    assert kinds == [
        "connect", "will", "connack", "publish", "disconnect",
        "connect", "will", "connack", "publish", "publish", "publish", "lost",
    ]  # fmt: skip
    assert events[1] == {
        "kind": "will",
        "client": "robot-x",
        "topic": "factory/s/a/l/r/state",
        "size": 3,
        "retain": True,
        "qos": 1,
        "ts": 1796304458.0,
    }
    assert events[2]["session_present"] is False
    assert events[4] == {
        "kind": "disconnect",
        "client": "robot-x",
        "clean": True,
        "will_topic": None,
        "ts": 1796304458.0,
    }
    assert events[7]["session_present"] is True
    # Sent before the client published anything: queued while it was away (one re-sent, DUP).
    assert (events[8]["queued"], events[8]["dup"]) == (True, True)
    assert events[10]["queued"] is False
    assert events[11]["clean"] is False
    assert events[11]["reason"] == "connection closed"
    assert events[11]["will_topic"] == "factory/s/a/l/r/state"


# --- end to end ------------------------------------------------------------------------------

WAIT_S = 15.0
ROBOT = "weld-01"


@pytest.fixture
def logging_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    """A Mosquitto of its own, logging every packet (its own process group, stopped by pid)."""
    require_broker("mosquitto")
    broker = start_broker(
        "mosquitto",
        free_port(),
        tmp_path / "state",
        protocol_log=True,
        robot_prefixes=any_site_prefixes(),
    )
    try:
        yield broker
    finally:
        broker.stop()


class Events:
    """The ``mqtt`` stream, read in a thread; waits are bounded."""

    def __init__(self, url: str) -> None:
        self.items: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._open = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._read, args=(url,), daemon=True)
        self._thread.start()
        assert self._open.wait(WAIT_S), "the stream did not open"

    def _read(self, url: str) -> None:
        with (
            httpx.Client(timeout=None) as http,
            http.stream("GET", url, params={"channel": "mqtt"}) as response,
        ):
            for item in sse(response.iter_lines()):
                self._open.set()
                if self._stop:
                    return
                if item.get("event") == "mqtt":
                    with self._cond:
                        self.items.append(item["data"])
                        self._cond.notify_all()

    def wait_for(self, what: str, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        with self._cond:
            while True:
                found = next((e for e in self.items if match(e)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {what} within {WAIT_S} s; saw {self.items[-10:]}")
                self._cond.wait(left)

    def close(self) -> None:
        self._stop = True


def client(broker: BrokerProcess, who: str, client_id: str) -> mqtt.Client:
    credentials = load_credentials(broker.state_dir)
    assert credentials is not None
    username, password = credentials.get(who)
    made = mqtt.Client(CallbackAPIVersion.VERSION2, client_id, clean_session=False)
    made.username_pw_set(username, password)
    return made


def connect(made: mqtt.Client, broker: BrokerProcess) -> None:
    connected = threading.Event()
    made.on_connect = lambda *args: connected.set()
    made.connect(broker.host, broker.port)
    made.loop_start()
    assert connected.wait(WAIT_S), "no CONNACK"


def test_inspector_shows_will_apart_from_clean_offline_and_a_resumed_session(
    logging_broker: BrokerProcess, tmp_path: Path
) -> None:
    site = "t-inspect"
    prefix = f"factory/{site}/a/l/{ROBOT}"
    settings = Settings(
        state_dir=logging_broker.state_dir,
        db_path=tmp_path / "f.db",
        broker_url=logging_broker.url,
        mqtt_client_id=f"svc-{os.urandom(4).hex()}",
        mqtt_topic_filter=f"factory/{site}/#",
        broker_log_path=logging_broker.files.log_file,
        stream_heartbeat_s=0.3,
    )
    robot_id = f"robot-{ROBOT}"
    with BackgroundServer(create_app(settings)) as server:
        events = Events(f"{server.url}/api/stream")
        try:
            robot = client(logging_broker, ROBOT, robot_id)
            robot.will_set(f"{prefix}/state", b"{}", qos=1, retain=True)
            connect(robot, logging_broker)
            robot.subscribe(f"{prefix}/cmd", qos=1)
            seen = events.wait_for("the robot's connect", lambda e: e["kind"] == "connect")
            assert (seen["client"], seen["clean_session"]) == (robot_id, False)
            events.wait_for("its will", lambda e: e["kind"] == "will" and e["client"] == robot_id)
            events.wait_for(
                "its subscription taking effect",
                lambda e: e["kind"] == "connack" and e["client"] == robot_id,
            )
            robot.publish(f"{prefix}/event", b"hello", qos=1).wait_for_publish(WAIT_S)
            sent = events.wait_for(
                "its publish, with flags and sender",
                lambda e: (
                    e["kind"] == "publish" and e["direction"] == "in" and e["client"] == robot_id
                ),
            )
            assert (sent["qos"], sent["retain"], sent["dup"], sent["size"]) == (1, False, False, 5)

            robot.disconnect()
            robot.loop_stop()
            clean = events.wait_for("a clean disconnect", lambda e: e["kind"] == "disconnect")
            assert (clean["client"], clean["clean"], clean["will_topic"]) == (robot_id, True, None)

            # Commands while it is away wait in its persistent session.
            sender = client(logging_broker, "service", f"svc-cmd-{os.urandom(3).hex()}")
            connect(sender, logging_broker)
            for n in range(2):
                sender.publish(f"{prefix}/cmd", f"cmd {n}".encode(), qos=1).wait_for_publish(WAIT_S)
            sender.disconnect()
            sender.loop_stop()

            again = client(logging_broker, ROBOT, robot_id)
            again.will_set(f"{prefix}/state", b"{}", qos=1, retain=True)
            connect(again, logging_broker)
            resumed = events.wait_for(
                "a resumed session",
                lambda e: e["kind"] == "connack" and e["session_present"],
            )
            assert resumed["client"] == robot_id
            queued = [
                events.wait_for(
                    f"queued command {n}",
                    lambda e, n=n: (
                        e["kind"] == "publish"
                        and e["direction"] == "out"
                        and e["client"] == robot_id
                        and e["queued"]
                        and e["size"] == len(f"cmd {n}")
                    ),
                )
                for n in range(2)
            ]
            assert all(q["topic"] == f"{prefix}/cmd" for q in queued)

            # Pulled plug: no DISCONNECT, the broker publishes the will.
            sock = again.socket()
            assert isinstance(sock, socket.socket)
            sock.shutdown(socket.SHUT_RDWR)
            lost = events.wait_for("the will firing", lambda e: e["kind"] == "lost")
            assert (lost["client"], lost["clean"]) == (robot_id, False)
            assert lost["will_topic"] == f"{prefix}/state"
            again.loop_stop()
        finally:
            events.close()
