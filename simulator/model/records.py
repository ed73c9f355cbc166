"""What the factory model emits: small immutable records, one sink for all of them.

The model never builds contract payloads (no pydantic in the hot path). Records are immutable
(the two built per sample by convention only, see :class:`Sample`). Each record carries the
robot id, the simulated time ``ts`` (Unix seconds) and exactly the non-envelope fields of one
contract payload; :meth:`fields` returns them as a dict, so an adapter makes the payload with
``Model.model_validate({"v": 1, "robot": r.robot, "ts": r.ts, "boot": …, "seq": …, **r.fields()})``
where ``Model`` is the payload class of ``r.CHANNEL`` (``None`` for :class:`NetworkDrop`, which is
an instruction to the transport, not a message).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from contract.topics import Channel


@dataclass(frozen=True, slots=True)
class BirthRecord:
    """A robot's metadata; ``body`` holds the fields of ``contract.payloads.Birth``."""

    CHANNEL: ClassVar[Channel | None] = Channel.BIRTH
    robot: str
    ts: float
    body: dict[str, Any]

    def fields(self) -> dict[str, Any]:
        return dict(self.body)


@dataclass(slots=True)
class Sample:
    """One telemetry reading taken while RUNNING; a sensor that gave no value is absent.

    Read-only by convention, not ``frozen``: a frozen dataclass sets each field through
    ``object.__setattr__``, and a 90-day experiment run builds ~140 k of these (and as many
    :class:`TruthRecord`); the plain constructor is three times cheaper."""

    CHANNEL: ClassVar[Channel | None] = Channel.TELEMETRY
    robot: str
    ts: float
    values: dict[str, float]

    def reading(self) -> dict[str, float]:
        """One entry of ``Telemetry.readings``."""
        return {"ts": self.ts, **self.values}

    def fields(self) -> dict[str, Any]:
        return {"readings": [self.reading()]}


@dataclass(frozen=True, slots=True)
class StateChange:
    """The robot entered ``state`` at ``ts`` (RUNNING / IDLE / MAINTENANCE / BROKEN)."""

    CHANNEL: ClassVar[Channel | None] = Channel.STATE
    robot: str
    ts: float
    state: str
    reason: str | None

    def fields(self) -> dict[str, Any]:
        return {"state": self.state, "since": self.ts, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event; ``body`` holds the non-envelope fields of the contract's event model, e.g.
    ``{"kind": "failure", "component": "gripper", "mode": "wear-out"}``."""

    CHANNEL: ClassVar[Channel | None] = Channel.EVENT
    robot: str
    ts: float
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    def fields(self) -> dict[str, Any]:
        return dict(self.body)


class ComponentTruthRecord(NamedTuple):
    """Fields of ``contract.payloads.ComponentTruth``: the true state of one component.

    ``rul_op_s``: operating seconds until wear reaches ``threshold``. ``rul_s``: calendar seconds
    until then if the robot runs every production second from ``ts`` (``None`` if never). An
    immutable named tuple rather than a dataclass: three are made per sample, and this is twice
    as fast to build.
    """

    name: str
    wear: float
    threshold: float
    rul_s: float | None
    rul_op_s: float | None

    def fields(self) -> dict[str, Any]:
        return self._asdict()


@dataclass(slots=True)
class TruthRecord:
    """Hidden ground truth of every component of a robot (for scoring; detectors never read it).
    Read-only by convention, not ``frozen``, for speed, as :class:`Sample`."""

    CHANNEL: ClassVar[Channel | None] = Channel.TRUTH
    robot: str
    ts: float
    components: tuple[ComponentTruthRecord, ...]

    def fields(self) -> dict[str, Any]:
        return {"components": [c.fields() for c in self.components]}


@dataclass(frozen=True, slots=True)
class NetworkDrop:
    """Ask the transport to drop the robot's connection (no clean close) for ``duration_s``.

    Not a message: an in-memory sink ignores it; the MQTT agent kills its socket so the broker
    fires the last will, and reconnects after ``duration_s`` simulated seconds.
    """

    CHANNEL: ClassVar[Channel | None] = None
    robot: str
    ts: float
    duration_s: float

    def fields(self) -> dict[str, Any]:
        return {"duration_s": self.duration_s}


Record = BirthRecord | Sample | StateChange | EventRecord | TruthRecord | NetworkDrop
Sink = Callable[[Record], None]
