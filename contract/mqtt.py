"""The paho-mqtt boundary both sides share: broker URLs and correctly configured clients.

Every MQTT client of the project is made by :func:`new_client`, so each one gets the same care:
paho 2.x callbacks (``CallbackAPIVersion.VERSION2``), ``TCP_NODELAY`` on its socket (without it
small messages stall ~40 ms behind Nagle's algorithm, measured), the protocol chosen on purpose,
and a last will set before connecting.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

DEFAULT_PORT = 1883
PROTOCOLS = {"3.1.1": MQTTProtocolVersion.MQTTv311, "5": MQTTProtocolVersion.MQTTv5}


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for a client whose connection dies uncleanly."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` (or ``host:port``) → ``(host, port)``; the port defaults to 1883."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        port = -1
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname or not 0 < port < 65536:
        raise ValueError(f"broker {url!r} is not mqtt://HOST:PORT, e.g. mqtt://127.0.0.1:1883")
    return parts.hostname, port


def _nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    if hasattr(sock, "setsockopt"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def new_client(
    client_id: str,
    *,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    clean_session: bool = True,
    username: str | None = None,
    password: str | None = None,
    will: Will | None = None,
    manual_ack: bool = False,
) -> mqtt.Client:
    """A paho client, not yet connected. ``clean_session`` is ignored for MQTT 5 (the caller
    passes ``clean_start`` and a session expiry to ``connect``)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=None if protocol == MQTTProtocolVersion.MQTTv5 else clean_session,
        protocol=protocol,
        manual_ack=manual_ack,
    )
    client.on_socket_open = _nodelay
    if username is not None:
        client.username_pw_set(username, password)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    return client
