"""The paho-mqtt boundary both sides share: broker URLs and correctly configured clients.

Every MQTT client of the project is made by :func:`new_client`, so each one gets the same care:
paho 2.x callbacks (``CallbackAPIVersion.VERSION2``), ``TCP_NODELAY`` on its socket (without it
small messages stall ~40 ms behind Nagle's algorithm, measured), the protocol chosen on purpose,
and a last will set before connecting.

``mqtts://HOST:PORT`` (default port 8883) means MQTT over TLS with the broker's certificate
verified against a CA file (:func:`resolve_cafile`: a flag or setting, ``FACTORY_MQTT_CAFILE``,
else ``STATE_DIR/tls/ca.pem`` when it exists, else the system's CAs).
"""

from __future__ import annotations

import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
CAFILE_ENV = "FACTORY_MQTT_CAFILE"
SCHEMES = {"mqtt": False, "tcp": False, "mqtts": True, "ssl": True}
PROTOCOLS = {"3.1.1": MQTTProtocolVersion.MQTTv311, "5": MQTTProtocolVersion.MQTTv5}


@dataclass(frozen=True, slots=True)
class Will:
    """The message the broker publishes for a client whose connection dies uncleanly."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port``, ``mqtts://host:port`` (or ``host:port``) → ``(host, port)``; the
    port defaults to 1883 (8883 for ``mqtts``). :func:`broker_tls` says whether it is TLS."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    tls = SCHEMES.get(parts.scheme)
    try:
        port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
    except ValueError:
        port = -1
    if tls is None or not parts.hostname or not 0 < port < 65536:
        raise ValueError(
            f"broker {url!r} is not mqtt://HOST:PORT or mqtts://HOST:PORT (TLS), "
            "e.g. mqtt://127.0.0.1:1883"
        )
    return parts.hostname, port


def broker_tls(url: str) -> bool:
    """Is ``url`` (valid for :func:`parse_broker_url`) MQTT over TLS?"""
    return "://" in url and SCHEMES.get(url.split("://", 1)[0]) is True


def resolve_cafile(cafile: str | Path | None, state_dir: Path | None) -> str | None:
    """The CA file to verify the broker with: ``cafile``, else ``$FACTORY_MQTT_CAFILE``, else
    ``STATE_DIR/tls/ca.pem`` if it exists, else ``None`` (the system's CAs)."""
    chosen = cafile or os.environ.get(CAFILE_ENV)
    if chosen:
        if not Path(chosen).is_file():
            raise ValueError(f"CA file {chosen} does not exist (--cafile / {CAFILE_ENV})")
        return str(chosen)
    local = state_dir / "tls" / "ca.pem" if state_dir is not None else None
    return str(local) if local is not None and local.is_file() else None


class _ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails: paho 2.1 drops it unclosed,
    so a client retrying against a broker it cannot verify would leak one per attempt."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def use_tls(client: mqtt.Client, cafile: str | None) -> None:
    """Connect ``client`` over TLS, verifying the broker's certificate and host name against
    ``cafile`` (``None``: the system's CAs)."""
    context = ssl.create_default_context(cafile=cafile)
    context.sslsocket_class = _ClosingSSLSocket
    client.tls_set_context(context)


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
    tls: bool = False,
    cafile: str | None = None,
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
    if tls:
        use_tls(client, cafile)
    if username is not None:
        client.username_pw_set(username, password)
    if will is not None:
        client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)
    return client
