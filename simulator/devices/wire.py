"""What a robot puts on the wire: its client, payload bytes of the model's records, which
channels are retained, the last will, and the wait for an acknowledgement."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTProtocolVersion

from broker_config.sessions import robot_client_id, session_client_id
from contract.codec import encode
from contract.mqtt import new_client
from contract.payloads import WILL_SEQ, State
from contract.topics import Channel

#: Birth and state are retained: a late subscriber learns each robot's at once.
RETAINED = frozenset({Channel.BIRTH, Channel.STATE})


def encode_fields(payload: dict[str, Any]) -> bytes:
    """JSON bytes of a payload built from a model record; top-level ``None`` fields are left out,
    as :func:`contract.codec.encode` does. The model's records are built to the contract (its
    tests validate every kind), so the hot path does not validate again."""
    return orjson.dumps({k: v for k, v in payload.items() if v is not None})


def offline_will(robot: str, boot: str, ts: float) -> bytes:
    """The retained OFFLINE state the broker publishes when the robot's connection dies; it
    carries the reserved ``seq = 0`` (:mod:`contract.payloads`) and the time of the connect."""
    will = State(
        v=1,
        robot=robot,
        ts=ts,
        boot=boot,
        seq=WILL_SEQ,
        state="OFFLINE",
        since=ts,
        reason="connection lost",
    )
    return encode(will)


def robot_client(
    robot: str,
    username: str,
    password: str,
    protocol: MQTTProtocolVersion,
    tls: bool,
    cafile: str | None,
) -> mqtt.Client:
    """The robot's paho client, not connected yet."""
    return new_client(
        # A tag from the password: no one without it can name (and take over) this session.
        session_client_id(robot_client_id(robot), password),
        protocol=protocol,
        clean_session=False,  # commands sent while we are away wait for us at the broker
        username=username,
        password=password,
        tls=tls,
        cafile=cafile,
    )


def await_ack(info: mqtt.MQTTMessageInfo | None, timeout_s: float) -> None:
    """Wait (bounded) for the broker to acknowledge a publish (``None``: nothing to wait for)."""
    if info is not None and timeout_s > 0:
        # Not connected any more (RuntimeError/ValueError): the will reports OFFLINE instead.
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(timeout=timeout_s)
