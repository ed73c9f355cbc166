"""The fleet's ear for the service's ingest progress: one small MQTT client per site.

One subscriber per site, not one per robot: the broker then sends each report once instead of
once per robot (a 1,000-robot fleet would otherwise receive four thousand reports a second), and
a robot's simulated network drop does not blind the flow control. The client logs in as one of
the site's robots — a robot may read its site's ``factory/{site}/ingest`` and nothing else new
(:mod:`broker_config.acl`) — under a client id of its own, derived from the robot's session id
(so a broker that reserves ids per login, amqtt here, lets it in) and without a persistent
session: a report missed while away is replaced by the next one. It rides the process's one
network thread with the robots (:mod:`.net_loop`; reconnects with the same back-off).
"""

from __future__ import annotations

import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion

from broker_config.sessions import robot_client_id, session_client_id
from contract.codec import Rejected
from contract.ingest import decode_progress, ingest_topic
from contract.mqtt import new_client
from simulator.devices.flow import FlowGate
from simulator.devices.net_loop import NetworkLoop

log = logging.getLogger(__name__)

KEEPALIVE_S = 15
SUFFIX = "-flow"
#: How long a stop waits for the DISCONNECT to be written.
CLOSE_TIMEOUT_S = 2.0


class IngestWatch:
    """Subscribes to one site's ingest progress and hands each report to the gate."""

    def __init__(
        self,
        gate: FlowGate,
        site: str,
        *,
        robot: str,
        host: str,
        port: int,
        username: str,
        password: str,
        network: NetworkLoop,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
        tls: bool = False,
        cafile: str | None = None,
    ) -> None:
        self._gate = gate
        self.site = site
        self._topic = ingest_topic(site)
        self.refused = 0
        client_id = session_client_id(robot_client_id(robot), password) + SUFFIX
        self._client = new_client(
            client_id,
            protocol=protocol,
            username=username,
            password=password,
            tls=tls,
            cafile=cafile,
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._link = network.link(
            self._client, host, port, keepalive_s=KEEPALIVE_S, name=f"{site}{SUFFIX}"
        )

    def start(self) -> None:
        self._link.start()

    def stop(self) -> None:
        """Disconnect cleanly (bounded wait); the loop's own stop cuts it otherwise."""
        self._link.close()
        self._link.wait_closed(CLOSE_TIMEOUT_S)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.warning("ingest watch for %s: the broker refused: %s", self.site, reason)
            return
        client.subscribe(self._topic, qos=0)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic != self._topic or not message.payload:
            return  # amqtt also pushes retained messages of other clients' subscriptions
        try:
            report = decode_progress(bytes(message.payload))
        except Rejected as exc:
            self.refused += 1
            log.warning("ingest watch for %s: refused a report: %s", self.site, exc)
            return
        self._gate.observe(self.site, report, bool(message.retain))
