"""What the store returns and the read endpoints serve: robots, telemetry points, dead letters.

These are plain pydantic models so a store implementation builds them and a route returns them
as its documented response model without a second copy.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contract.payloads import MetricName, RobotStateName, VibrationClass


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LatestReading(_Record):
    """A robot's newest reading: simulated time and the metrics it carried."""

    ts: float = Field(description="Simulated time of the reading, Unix epoch seconds.")
    values: dict[MetricName, float]


class Robot(_Record):
    """One robot as the service last heard of it."""

    id: str
    kind: str | None = Field(description="From the robot's birth; null until one arrived.")
    model: str | None = None
    site: str
    area: str
    line: str
    state: RobotStateName | None = Field(description="Null until a state message arrived.")
    state_since: float | None = Field(description="Simulated time the state began.")
    state_reason: str | None = None
    last_seen: float | None = Field(description="Simulated time of its newest message.")
    last_received_at: float | None = Field(
        description="Wall-clock time the service received its newest message, Unix seconds."
    )
    latest: LatestReading | None = None
    vibration_class: VibrationClass | None = Field(
        default=None,
        description="From the birth: the ISO 10816-1 machine class whose zones scale vibration.",
    )
    sample_interval_s: float | None = Field(
        default=None, description="From the birth: simulated seconds between readings."
    )
    boot: str | None = Field(
        default=None, description="Boot id of its newest birth: a new one means it restarted."
    )


class TelemetryPoint(_Record):
    """One reading, or with ``every`` the average of a bucket starting at ``ts``."""

    ts: float
    n: int = Field(description="Readings in the point: 1, or the bucket's count.")
    values: dict[MetricName, float]


class TelemetrySeries(_Record):
    robot: str
    metric: MetricName | None = Field(description="The one metric asked for, or null for all.")
    since: float
    until: float
    every: float | None = Field(description="Bucket width in seconds when downsampled.")
    points: list[TelemetryPoint]


class DeadLetter(_Record):
    """A refused message as kept in the dead-letter table (payload truncated)."""

    id: int
    received_at: float = Field(description="Wall-clock receive time, Unix seconds.")
    topic: str
    reason: str
    detail: str
    size: int = Field(description="Size of the original payload in bytes.")
    payload: str = Field(
        description="The first bytes of the payload, decoded as UTF-8 with replacement."
    )


class Rejects(_Record):
    counts: dict[str, int] = Field(description="Refused messages per reason since the db began.")
    total: int
    recent: list[DeadLetter] = Field(description="Newest first.")
