"""The fleet's pace: one retained message per site saying whether the factory runs, and how fast.

``factory/{site}/pace`` is the only topic under ``factory/`` that is not a robot's: three levels,
so no robot filter (``factory/+/+/+/+/…``) matches it and no robot id can collide with it. The
service publishes it (``POST /api/clock``), retained at QoS 1, so a robot that connects later
learns the pace at once; robots only read it. ``factor`` is simulated seconds per wall second
(60 = a simulated minute each second); ``paused`` stops the robots' clock without re-timing
anything. ``ts`` is the *wall* time it was decided (the simulated clock may be stopped), ``by``
who decided it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contract.codec import Rejected, RejectReason, explain, load_object
from contract.payloads import Name, Text, Timestamp
from contract.topics import ROOT, is_site_topic, site_topic

PACE_LEVEL = "pace"
#: Every site's pace, for a subscriber that follows them all.
PACE_FILTER = f"{ROOT}/+/{PACE_LEVEL}"
#: Fastest pace a client may ask for: a simulated year in under a wall hour.
FACTOR_MAX = 1e6


class Pace(BaseModel):
    """The payload on ``factory/{site}/pace``, as strict as the robots' payloads."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)

    v: Literal[1] = Field(description="Schema version.")
    ts: Timestamp = Field(description="Wall-clock time the pace was set, Unix epoch seconds.")
    paused: bool = Field(description="True: robots stop sampling and their clock stands still.")
    factor: float = Field(
        gt=0.0, le=FACTOR_MAX, description="Simulated seconds per wall second when running."
    )
    by: Name | None = Field(default=None, description="Who set it (a login), if known.")
    note: Text | None = Field(default=None, description="Free text for people watching.")


def pace_topic(site: str) -> str:
    """The pace topic of ``site``."""
    return site_topic(site, PACE_LEVEL)


def is_pace_topic(topic: str) -> bool:
    """True for ``factory/{site}/pace`` with a valid site name."""
    return is_site_topic(topic, PACE_LEVEL)


def decode_pace(data: bytes) -> Pace:
    """Decode and validate a pace payload; raise :class:`~contract.codec.Rejected` if refused."""
    obj = load_object(data)
    try:
        return Pace.model_validate(obj)
    except ValidationError as exc:
        raise Rejected(RejectReason.INVALID, explain(exc)) from None
