"""Bytes on the wire ⇄ payload models, with one reason for every refusal.

:func:`decode` is the only way bytes from outside become a payload. It refuses, in this order:
oversize, bad UTF-8, bad JSON (NaN/Infinity named as such), too deep, not an object, an unknown
schema version, a payload that breaks its channel's model, and a robot id that is not the topic's.
Each refusal is a :class:`Rejected` whose ``reason`` is a :class:`RejectReason`, so consumers can
count per reason.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from contract.payloads import (
    SCHEMA_VERSION,
    Birth,
    Command,
    Event,
    State,
    Telemetry,
    Truth,
)
from contract.topics import Channel, Topic, TopicError

#: Largest payload accepted, in bytes (also Mosquitto's ``message_size_limit``).
MAX_PAYLOAD_BYTES = 16 * 1024
#: Deepest JSON nesting accepted; the deepest valid payload nests 4 levels.
MAX_DEPTH = 16

Payload = Birth | State | Telemetry | Event | Command | Truth

_ADAPTERS: dict[Channel, TypeAdapter[Any]] = {
    Channel.BIRTH: TypeAdapter(Birth),
    Channel.STATE: TypeAdapter(State),
    Channel.TELEMETRY: TypeAdapter(Telemetry),
    Channel.EVENT: TypeAdapter(Event),
    Channel.CMD: TypeAdapter(Command),
    Channel.TRUTH: TypeAdapter(Truth),
}
#: Topic text → parsed topic. A robot publishes on a handful of topics, and parsing one checks
#: five names against a pattern, for every message; bounded, so a sender inventing (valid) topics
#: only churns it. A refused topic raises, and is never kept.
_parse_topic = functools.lru_cache(maxsize=4096)(Topic.parse)
_NON_FINITE = re.compile(rb"(?<![\w\"])-?(?:NaN|Infinity)(?![\w\"])")


class RejectReason(StrEnum):
    TOO_LARGE = "too_large"
    BAD_UTF8 = "bad_utf8"
    BAD_JSON = "bad_json"
    NON_FINITE = "non_finite"
    TOO_DEEP = "too_deep"
    NOT_OBJECT = "not_object"
    UNKNOWN_VERSION = "unknown_version"
    INVALID = "invalid"
    BAD_TOPIC = "bad_topic"
    ROBOT_MISMATCH = "robot_mismatch"


class Rejected(ValueError):
    """A payload or topic refused by the contract; ``str()`` says why in one line."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def encode(payload: BaseModel) -> bytes:
    """Serialise a payload model to compact JSON bytes (fields left at ``None`` are omitted)."""
    return orjson.dumps(payload.model_dump(exclude_none=True))


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a decoded JSON object or array (a scalar inside counts as a level),
    giving up once past ``limit``.

    Walks level by level and keeps only the containers: visiting every scalar of every reading
    cost about as much as validating the whole payload."""
    level = [value]
    depth = 1
    while True:
        below = [
            child
            for node in level
            for child in (node.values() if type(node) is dict else node)
            if type(child) is dict or type(child) is list
        ]
        if not below:
            # The deepest containers add a level only through what they hold (scalars).
            return depth + 1 if any(level) else depth
        depth += 1
        if depth > limit:
            return depth
        level = below


def _may_be_deeper(data: bytes, limit: int) -> bool:
    """False when the raw bytes hold too few brackets for ``limit`` levels: n containers nest
    at most n deep, plus one level of scalars (brackets inside strings only make this count
    larger, so it never lets a deep document through). Spares the walk for ordinary payloads."""
    return data.count(b"{") + data.count(b"[") >= limit


def _load(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_PAYLOAD_BYTES:
        raise Rejected(
            RejectReason.TOO_LARGE, f"{len(data)} bytes is over the {MAX_PAYLOAD_BYTES}-byte limit"
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Rejected(RejectReason.BAD_UTF8, f"not UTF-8 at byte {exc.start}") from None
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        msg = str(exc)
        if "depth limit" in msg:
            raise Rejected(RejectReason.TOO_DEEP, f"nested deeper than {MAX_DEPTH}") from None
        if "infinity" in msg or _NON_FINITE.search(data):
            raise Rejected(
                RejectReason.NON_FINITE, "NaN and infinities are not numbers in this contract"
            ) from None
        raise Rejected(RejectReason.BAD_JSON, msg[:160]) from None
    if not isinstance(obj, dict):
        raise Rejected(RejectReason.NOT_OBJECT, f"payload is a JSON {type(obj).__name__}")
    if _may_be_deeper(data, MAX_DEPTH) and _depth(obj, MAX_DEPTH) > MAX_DEPTH:
        raise Rejected(RejectReason.TOO_DEEP, f"nested deeper than {MAX_DEPTH}")
    version = obj.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:  # not True, not 1.0
        raise Rejected(
            RejectReason.UNKNOWN_VERSION,
            f"schema version {version!r} is not {SCHEMA_VERSION}"
            if "v" in obj
            else "missing schema version 'v'",
        )
    return obj


def _explain(exc: ValidationError) -> str:
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


#: The checks every payload passes before its model (size, UTF-8, JSON, depth, version), for
#: payloads that are not a robot's channel (:mod:`contract.pace`).
load_object = _load
explain = _explain


def decode(channel: Channel | str, data: bytes) -> Payload:
    """Decode and validate a payload for ``channel``; raise :class:`Rejected` if refused."""
    obj = _load(data)
    try:
        result: Payload = _ADAPTERS[Channel(channel)].validate_python(obj)
    except ValidationError as exc:
        raise Rejected(RejectReason.INVALID, _explain(exc)) from None
    return result


def decode_message(topic: str, data: bytes) -> tuple[Topic, Payload]:
    """Parse the topic, decode the payload for its channel, and check the robot ids agree."""
    try:
        parsed = _parse_topic(topic)
    except TopicError as exc:
        raise Rejected(RejectReason.BAD_TOPIC, str(exc)) from None
    payload = decode(parsed.channel, data)
    if payload.robot != parsed.robot:
        raise Rejected(
            RejectReason.ROBOT_MISMATCH,
            f"payload robot {payload.robot!r} published on robot {parsed.robot!r}'s topic",
        )
    return parsed, payload


def json_schemas() -> dict[str, Any]:
    """JSON Schema of every channel's payload, generated from the models."""
    return {
        channel.value: adapter.json_schema(mode="validation")
        for channel, adapter in _ADAPTERS.items()
    }
