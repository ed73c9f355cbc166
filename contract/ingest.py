"""The service's ingest progress: one retained message per site and worker saying how far it got.

``factory/{site}/ingest`` is, like the pace (:mod:`contract.pace`), a three-level topic no robot
filter matches. The service publishes it a few times a second while it commits (and every few
seconds when idle), retained at QoS 0: each copy replaces the last, so a lost one costs nothing.
Robots and participants only read it.

It is the consumer's end of the flow control (docs/contract.md): QoS 1 acknowledgements come from
the broker, not from the service, so a publisher paced to the broker alone still fills the
broker's queue for a slow service's session until the broker drops messages. ``factory simulate``
keeps what it has published past ``through`` — the newest simulated time this worker has
committed for the site — within a bounded window (:mod:`simulator.devices.flow`).

``ts`` is the *wall* time of the report (a reader takes a report older than a few seconds for a
service that is gone); ``worker`` tells several ingest workers sharing the telemetry apart (a
reader follows the slowest of them).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from contract.codec import Rejected, RejectReason, explain, load_object
from contract.payloads import Timestamp
from contract.topics import ROOT, is_site_topic, site_topic

INGEST_LEVEL = "ingest"
#: Every site's ingest progress, for a subscriber that follows them all.
INGEST_FILTER = f"{ROOT}/+/{INGEST_LEVEL}"

#: A worker's name: the service's MQTT client id (``factory-service``, ``factory-service-w2``).
Worker = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
]


class IngestProgress(BaseModel):
    """The payload on ``factory/{site}/ingest``, as strict as the robots' payloads."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)

    v: Literal[1] = Field(description="Schema version.")
    ts: Timestamp = Field(description="Wall-clock time of this report, Unix epoch seconds.")
    worker: Worker = Field(description="The ingest worker reporting (its MQTT client id's name).")
    through: Timestamp | None = Field(
        default=None,
        description="Newest simulated time of this site's messages in the newest batch this "
        "worker committed; absent before its first.",
    )
    committed: int = Field(
        ge=0, description="This site's messages committed by this worker since it started."
    )
    waiting: int = Field(ge=0, description="Messages received by the worker, not yet committed.")
    lag_s: float = Field(ge=0.0, description="The worker's ingest lag, wall seconds.")


def ingest_topic(site: str) -> str:
    """The ingest-progress topic of ``site``."""
    return site_topic(site, INGEST_LEVEL)


def is_ingest_topic(topic: str) -> bool:
    """True for ``factory/{site}/ingest`` with a valid site name."""
    return is_site_topic(topic, INGEST_LEVEL)


def decode_progress(data: bytes) -> IngestProgress:
    """Decode and validate a progress payload; raise :class:`~contract.codec.Rejected` if
    refused."""
    obj = load_object(data)
    try:
        return IngestProgress.model_validate(obj)
    except ValidationError as exc:
        raise Rejected(RejectReason.INVALID, explain(exc)) from None
