"""A robot's current simulated time, as its broker holds it: the ``ts`` of its retained state.

Messages carry simulated time and the service refuses one far from the robot's own clock, so
an example publish printed for a user (``factory credentials``) must be stamped with the
robot's simulated time, never the wall clock. The robot keeps its state retained (and re-sends
it as a heartbeat when idle), so an anonymous read of that one topic says where its clock is.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from contract.mqtt import new_client

#: Bound of the whole read: connect, subscribe, and the retained message after the SUBACK.
READ_TIMEOUT_S = 5.0


def robot_now_ts(host: str, port: int, state_topic: str, cafile: str | None = None) -> float | None:
    """The ``ts`` of the retained state on ``state_topic``, or ``None`` if the broker does not
    answer or holds none (a robot that never ran). With ``cafile``, over TLS verified by it."""
    found: list[float] = []
    done = threading.Event()
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            done.set()
        else:
            c.subscribe(state_topic, qos=1)

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
        subscribed.set()

    def on_message(c: mqtt.Client, u: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic != state_topic or not message.retain:
            return  # amqtt also pushes retained messages of other clients' filters
        try:
            ts = orjson.loads(message.payload)["ts"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if isinstance(ts, int | float):
            found.append(float(ts))
            done.set()

    client = new_client(f"clock-{os.urandom(4).hex()}", tls=cafile is not None, cafile=cafile)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    try:
        client.connect(host, port, keepalive=10)
    except OSError:
        return None
    client.loop_start()
    try:
        # A retained message follows the SUBACK at once; a broker holding none sends nothing,
        # so after the SUBACK the wait is short, and the whole read is bounded.
        if subscribed.wait(READ_TIMEOUT_S):
            done.wait(READ_TIMEOUT_S / 5)
        else:
            done.wait(0)
    finally:
        client.disconnect()
        client.loop_stop()
    return found[-1] if found else None
