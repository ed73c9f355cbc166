"""A message as the MQTT thread hands it to the service: what ingest, the inspector stream and
the inbox all speak of."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Inbound:
    """A message as the MQTT thread handed it over."""

    topic: str
    payload: bytes
    received_at: float  # wall clock, Unix seconds
    qos: int = 1
    mid: int = 0
    generation: int = 0  # which broker connection delivered it; acks go back on that one only
    retain: bool = False
