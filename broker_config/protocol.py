"""Which MQTT version a broker speaks, asked on the wire: MQTT 5 if it accepts an MQTT 5 CONNECT.

Mosquitto speaks MQTT 5; amqtt and NATS speak 3.1.1 only and answer an MQTT 5 CONNECT with
"unacceptable protocol version" (or close the connection). The service and the simulator pick
their version from this, so nobody has to set ``FACTORY_MQTT_PROTOCOL`` by hand.
"""

from __future__ import annotations

import os
import socket
import struct
import time

_CONNECT = 0x10
_CONNACK = 0x20
_DISCONNECT_V5 = b"\xe0\x00"
_CLEAN_START = 0x02
_KEEPALIVE_S = 10


def _connect_v5(client_id: str) -> bytes:
    cid = client_id.encode()
    body = (
        struct.pack("!H", 4)
        + b"MQTT"
        + bytes([5, _CLEAN_START])
        + struct.pack("!H", _KEEPALIVE_S)
        + b"\x00"  # no CONNECT properties
        + struct.pack("!H", len(cid))
        + cid
    )
    return bytes([_CONNECT, len(body)]) + body  # body < 128 bytes: one length byte


def speaks_mqtt5(host: str, port: int, timeout_s: float = 2.0) -> bool | None:
    """True if the broker accepts an anonymous MQTT 5 CONNECT, False if it refuses the version
    (or hangs up on it), ``None`` if nothing answered at all (down, or not MQTT)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            sock.sendall(_connect_v5(f"probe5-{os.getpid()}-{time.monotonic_ns() % 10**9}"))
            try:
                reply = sock.recv(4)
            except (TimeoutError, ConnectionResetError):
                return False
            if len(reply) < 4 or reply[0] != _CONNACK:
                return False  # hung up on an MQTT 5 CONNECT: a 3.1.1 broker
            if reply[3] == 0:
                sock.sendall(_DISCONNECT_V5)
                return True
            # 3.1.1 return code 1 is "unacceptable protocol version" (so is v5's 0x84); any
            # other v5 reason code (>= 0x80: not authorized, …) still came from an MQTT 5 broker.
            return reply[3] >= 0x80 and reply[3] != 0x84
    except OSError:
        return None
