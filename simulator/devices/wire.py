"""What a robot puts on the wire: payload bytes of the model's records, which channels are
retained, and the last will."""

from __future__ import annotations

from typing import Any

import orjson

from contract.codec import encode
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
