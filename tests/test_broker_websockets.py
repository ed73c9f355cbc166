"""Browser clients: both brokers accept MQTT over WebSockets when given a ``ws_port``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from brokers import any_site_prefixes, require_broker
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from broker_config.credentials import load_credentials
from broker_config.embedded import BrokerProcess, free_port, start_broker

pytestmark = pytest.mark.integration


@pytest.fixture(
    params=[(i, s) for s in ("acl", "tls") for i in ("mosquitto", "amqtt")],
    ids="-".join,
)
def ws_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerProcess]:
    """A broker with a WebSocket listener: plain (``acl``) or over TLS (``tls``)."""
    impl, security = request.param
    require_broker(impl)
    broker = start_broker(
        impl,
        free_port(),
        tmp_path / "state",
        ws_port=free_port(),
        robot_prefixes=any_site_prefixes(),
        security=security,
    )
    yield broker
    broker.stop()


def _connected(client: mqtt.Client, host: str, port: int) -> mqtt.Client:
    ready = threading.Event()
    client.on_connect = lambda c, u, f, reason, p: ready.set() if not reason.is_failure else None
    client.connect(host, port)
    client.loop_start()
    assert ready.wait(5), "no CONNACK"
    return client


def test_websocket_subscriber_sees_a_tcp_publish(ws_broker: BrokerProcess) -> None:
    assert ws_broker.ws_port is not None
    received: list[tuple[str, bytes]] = []
    got = threading.Event()
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        received.append((message.topic, bytes(message.payload)))
        got.set()

    browser = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        transport="websockets",
        protocol=MQTTProtocolVersion.MQTTv311,
    )
    browser.on_message = on_message
    browser.on_subscribe = lambda c, u, mid, reasons, p: subscribed.set()
    robot = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311)
    credentials = load_credentials(ws_broker.state_dir)
    assert credentials is not None
    robot.username_pw_set(*credentials.get("weld-01"))
    context = ws_broker.tls_context()  # wss:// and mqtts:// on the tls profile
    if context is not None:
        browser.tls_set_context(context)
        robot.tls_set_context(context)
    try:
        _connected(browser, ws_broker.host, ws_broker.ws_port)  # anonymous, like a browser
        browser.subscribe("factory/#", qos=1)
        assert subscribed.wait(5)
        _connected(robot, ws_broker.host, ws_broker.port)
        topic = "factory/ws-site/a/l/weld-01/telemetry"
        robot.publish(topic, b"over tcp", qos=1).wait_for_publish(5)
        assert got.wait(5)
        assert received == [(topic, b"over tcp")]
    finally:
        for client in (browser, robot):
            client.disconnect()
            client.loop_stop()
