"""The service's MQTT session against real brokers: a takeover is noticed, deafness is cured.

A second connection with the service's client id (its public name plus the tag from its
password, made with the service's own login, so the test holds however the broker guards ids)
ends the service's connection on Mosquitto, which the service counts and logs, then reconnects;
on amqtt it leaves the service deaf. A client subscribed but deaf (also: its subscription dropped
under it) is caught by the hearing probe: ``/readyz`` says so, the client resubscribes and
ingests again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from brokers import BrokerHandle, robot_topic
from test_api_ingest import (
    eventually,
    metric,
    running,
    service_settings,
    telemetry,
    wait_rows,
)

from api.ingest.hearing import probe_topic
from api.ingest.mqtt_client import IngestClient
from broker_config.sessions import session_client_id
from contract.topics import Channel

pytestmark = pytest.mark.integration


def test_the_probe_topic_lies_inside_the_subscription() -> None:
    assert probe_topic("factory/#") == "factory/probe/probe/probe/_svc-probe/cmd"
    assert probe_topic("factory/site-1/#") == "factory/site-1/probe/probe/_svc-probe/cmd"
    assert probe_topic("factory/+/+/+/+/cmd") == "factory/probe/probe/probe/_svc-probe/cmd"
    assert (
        probe_topic("factory/#", "_svc-probe-1a2b")
        == "factory/probe/probe/probe/_svc-probe-1a2b/cmd"
    )
    assert probe_topic("factory/+/+/+/+/telemetry") is None
    assert probe_topic("factory/site-1/area-1/line-1/weld-01/#") is None  # a real robot


def test_a_takeover_of_the_services_session_is_counted_and_survived(
    broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    """Mosquitto ends the service's connection (counted as a takeover); amqtt 0.12 keeps both
    connections and delivers the session's messages to the newer one, so the service goes deaf:
    the hearing probe catches that and resubscribes. Either way nothing published after the
    intruder has gone is lost."""
    robot = broker.robot_ids[0]
    settings = service_settings(
        broker, topic_site, tmp_path / "f.db", mqtt_probe_interval_s=0.2, mqtt_probe_timeout_s=1.0
    )
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    noticed = (
        "factory_mqtt_session_takeovers_total"
        if broker.impl == "mosquitto"
        else "factory_mqtt_deaf_reconnects_total"
    )
    with running(settings) as client:
        _, password = broker.credentials("service")
        own_id = session_client_id(settings.mqtt_client_id, password)
        intruder = broker.client("service", client_id=own_id)
        eventually(lambda: metric(client, noticed) >= 1, f"the takeover noticed ({noticed})")
        broker.disconnect(intruder)
        eventually(lambda: client.get("/readyz").status_code == 200, "ready again")
        for seq in range(1, 6):
            broker.publish(publisher, topic, telemetry(robot, seq, 40.0))
        wait_rows(client, robot, 5)


def test_a_deaf_ingest_client_is_reported_and_resubscribes(
    broker: BrokerHandle,
    topic_site: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clients: list[IngestClient] = []
    original = IngestClient.__init__

    def keep(self: IngestClient, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        clients.append(self)

    monkeypatch.setattr(IngestClient, "__init__", keep)
    robot = broker.robot_ids[0]
    settings = service_settings(
        broker, topic_site, tmp_path / "f.db", mqtt_probe_interval_s=0.2, mqtt_probe_timeout_s=1.0
    )
    publisher = broker.client(robot)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    with running(settings) as client:
        broker.publish(publisher, topic, telemetry(robot, 1, 40.0))
        wait_rows(client, robot, 1)
        # The fault: the broker stops delivering to the service (its subscription is gone).
        clients[0]._client.unsubscribe(settings.subscription)
        eventually(lambda: client.get("/readyz").status_code == 503, "/readyz reports it")
        assert any("not even the service's own probe" in r.message for r in caplog.records)
        eventually(lambda: client.get("/readyz").status_code == 200, "resubscribed and ready")
        assert metric(client, "factory_mqtt_deaf_reconnects_total") >= 1
        for seq in range(2, 5):
            broker.publish(publisher, topic, telemetry(robot, seq, 40.0))
        wait_rows(client, robot, 4)
