"""Is a broker up? Ask it with a real MQTT 3.1.1 CONNECT, not by sleeping or by opening a socket.

An open TCP port only says that something listens; a CONNACK says that an MQTT broker has read its
config and accepts sessions. The probe connects anonymously with a clean session, reads the
CONNACK, and sends DISCONNECT, so it leaves nothing behind on the broker. Both Mosquitto and amqtt
speak 3.1.1, so one probe serves both.
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import time

CONNACK = 0x20
_CONNECT_FIXED = 0x10
_DISCONNECT = b"\xe0\x00"
_KEEPALIVE_S = 10
_CLEAN_SESSION = 0x02


def _connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    body = (
        struct.pack("!H", 4)
        + b"MQTT"
        + bytes([4, _CLEAN_SESSION])
        + struct.pack("!H", _KEEPALIVE_S)
        + struct.pack("!H", len(cid))
        + cid
    )
    return bytes([_CONNECT_FIXED, len(body)]) + body  # body < 128 bytes: one length byte


def connack_code(
    host: str, port: int, timeout_s: float = 1.0, tls: ssl.SSLContext | None = None
) -> int | None:
    """CONNACK return code of an anonymous CONNECT (0 = accepted), ``None`` if no MQTT answer.

    With ``tls`` the CONNECT goes over TLS, verified with that context. A broker that refuses
    anonymous clients answers 5 (not authorised): it is up all the same.
    """
    try:
        raw = socket.create_connection((host, port), timeout=timeout_s)
        try:
            sock = raw if tls is None else tls.wrap_socket(raw, server_hostname=host)
        except OSError:
            raw.close()
            raise
        with sock:
            sock.settimeout(timeout_s)
            sock.sendall(_connect_packet(f"probe-{os.getpid()}-{time.monotonic_ns() % 10**9}"))
            reply = b""
            while len(reply) < 4:
                chunk = sock.recv(4 - len(reply))
                if not chunk:
                    return None
                reply += chunk
            if reply[0] != CONNACK or reply[1] != 2:
                return None
            if reply[3] == 0:
                sock.sendall(_DISCONNECT)
            return reply[3]
    except OSError:
        return None


def wait_for_broker(host: str, port: int, timeout_s: float, interval_s: float = 0.05) -> bool:
    """Probe until the broker accepts a CONNECT or ``timeout_s`` passes; True if it did."""
    deadline = time.monotonic() + timeout_s
    while True:
        if connack_code(host, port, timeout_s=min(1.0, timeout_s)) == 0:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)
