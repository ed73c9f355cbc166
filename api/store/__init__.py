"""The narrow interface between the service and its storage, and the rules every store follows.

:class:`Store` is what the ingest pipeline and the routes call; :mod:`api.store.sqlite` is the
embedded implementation and a PostgreSQL one can take its place. The pure parts a store needs —
which retained message supersedes which (:func:`supersedes`) and whether a history query is
small enough to serve (:func:`plan_query`) — live here so they are tested without I/O.

Delivery rules (the contract's ``(robot, boot, seq)`` identity):

- ``telemetry``, ``event`` and ``truth`` are rows; a second message with the same identity is a
  duplicate and never becomes a row.
- ``birth`` and ``state`` are latest values (they are retained, so the broker re-sends them on
  every reconnect). The same identity again is a duplicate; an older one is stale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

from api.records import DeadLetter, Robot, TelemetryPoint
from api.records.maintenance import Alarm, WorkOrder
from contract.codec import Payload
from contract.payloads import WILL_SEQ
from contract.topics import Topic
from engine.kpis import StoredEvent

#: Payload bytes kept per dead letter.
DEAD_LETTER_PAYLOAD_BYTES = 1024
#: Topic characters kept per dead letter (a hostile topic can be 64 KiB).
DEAD_LETTER_TOPIC_CHARS = 256


class Outcome(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message that passed the contract, waiting to be written."""

    topic: Topic
    payload: Payload
    received_at: float  # wall clock, Unix seconds


@dataclass(frozen=True, slots=True)
class Refused:
    """A message the contract refused, as it goes into the dead-letter table."""

    topic: str
    reason: str
    detail: str
    payload: bytes  # at most DEAD_LETTER_PAYLOAD_BYTES
    size: int  # of the original payload
    received_at: float

    @classmethod
    def of(cls, topic: str, reason: str, detail: str, data: bytes, received_at: float) -> Refused:
        return cls(
            topic[:DEAD_LETTER_TOPIC_CHARS],
            reason,
            detail[:500],
            bytes(data[:DEAD_LETTER_PAYLOAD_BYTES]),
            len(data),
            received_at,
        )


def supersedes(current: tuple[str, int] | None, incoming: tuple[str, int]) -> Outcome:
    """Does a retained message ``(boot, seq)`` replace the one held, ``current``?

    Within a boot a higher ``seq`` is newer. The last will (``seq`` 0) is the last word of its
    boot, whatever its number; a message after the will, same boot, is the robot reconnecting.
    Across boots there is no order in the ids, and simulated time may restart with the
    simulator, so arrival order decides — MQTT keeps one publisher's order on a topic.
    """
    if current is None:
        return Outcome.NEW
    if incoming == current:
        return Outcome.DUPLICATE
    boot, seq = current
    new_boot, new_seq = incoming
    if new_boot != boot or WILL_SEQ in (seq, new_seq) or new_seq > seq:
        return Outcome.NEW
    return Outcome.STALE


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """A stored reading (``data``: metric → value) or event (``data``: its JSON body), for the
    maintenance engine's warm-up after a restart."""

    ts: float
    kind: Literal["reading", "event"]
    data: dict[str, Any]


class StoreUnavailable(Exception):
    """The store cannot take writes right now (locked, disk full, connection lost): retry later."""


class QueryRefused(ValueError):
    """A history query over a documented cap; the message says the cap and how to narrow it."""


@dataclass(frozen=True, slots=True)
class TelemetryQuery:
    robot: str
    metric: str | None
    since: float
    until: float
    every: float | None
    max_points: int
    max_scan_rows: int


def plan_query(
    robot: str,
    metric: str | None,
    since: float | None,
    until: float | None,
    every: float | None,
    *,
    clock: float | None,
    default_window_s: float,
    max_range_s: float,
    max_points: int,
    max_scan_rows: int,
) -> TelemetryQuery:
    """Resolve defaults (until = the simulated clock, since = until − default window) and refuse
    a range or a bucket count past the caps, before any row is read."""
    if until is None:
        until = clock if clock is not None else 0.0
    if since is None:
        since = until - default_window_s
    for name, value in (("since", since), ("until", until), ("every", every)):
        if value is not None and not math.isfinite(value):
            raise QueryRefused(f"{name} must be a finite number of seconds")
    if until < since:
        raise QueryRefused(f"until ({until}) is before since ({since}); swap them")
    span_s = until - since
    if span_s > max_range_s:
        raise QueryRefused(
            f"the range spans {span_s:.0f} s, over the cap of {max_range_s:.0f} s; "
            "narrow since/until"
        )
    if every is not None:
        if every <= 0:
            raise QueryRefused("every must be a positive number of seconds")
        # Buckets are floor(span / every) + 1 (both ends are inclusive); compared as a float
        # so an absurd ratio is refused instead of overflowing.
        if span_s / every >= max_points:
            raise QueryRefused(
                f"{span_s / every + 1:.4g} buckets of {every:g} s is over the cap of "
                f"{max_points} points; use every > {span_s / max_points:.6g} or a shorter range"
            )
    return TelemetryQuery(robot, metric, since, until, every, max_points, max_scan_rows)


class Store(Protocol):
    """Storage of robots, readings, events, ground truth and dead letters.

    ``write`` is called by one consumer at a time and commits everything it is given in one
    transaction; the read methods may be called from several threads at once.
    """

    def write(self, accepted: Sequence[Accepted], refused: Sequence[Refused]) -> list[Outcome]:
        """Commit a batch; return the outcome of each accepted message, in order.

        Raises :class:`StoreUnavailable` for a failure worth retrying; nothing is committed then.
        """
        ...

    def robots(self) -> list[Robot]: ...

    def robot(self, robot_id: str) -> Robot | None: ...

    def telemetry(self, query: TelemetryQuery) -> list[TelemetryPoint]:
        """Readings in ``[since, until]`` in time order; :class:`QueryRefused` past the caps."""
        ...

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters, newest first."""
        ...

    def reject_counts(self) -> dict[str, int]: ...

    def clock(self) -> float | None:
        """The newest simulated time in any stored message, ``None`` when empty."""
        ...

    def kpi_events(self, since: float, until: float) -> dict[str, list[StoredEvent]]:
        """Per robot, its failure, repair, maintenance and parts events in ``[since, until)``,
        in time order (the live KPIs' input)."""
        ...

    def first_ts(self) -> float | None:
        """The earliest simulated time of any stored reading or event, ``None`` when empty."""
        ...

    def recent_pace(self) -> float | None:
        """Simulated seconds per wall second over the newest stored events (``None``: too
        few to tell)."""
        ...

    def repair_clock(self, robot: str, bound_ts: float) -> int:
        """Drop ``robot``'s messages after ``bound_ts`` (counted as ``clock`` rejects) and
        recompute its newest time and latest reading; return how many were dropped."""
        ...

    # --- maintenance ---------------------------------------------------------------------------

    def save_maintenance(self, work_orders: Sequence[WorkOrder], alarms: Sequence[Alarm]) -> None:
        """Insert or replace work orders (appending their new transitions) and alarms, in one
        transaction; :class:`StoreUnavailable` for a failure worth retrying."""
        ...

    def work_orders(
        self,
        robot: str | None = None,
        status: str | None = None,
        active: bool | None = None,
        limit: int | None = None,
    ) -> list[WorkOrder]:
        """Newest first; every one without filters or limit."""
        ...

    def work_order(self, work_order_id: str) -> WorkOrder | None: ...

    def alarms(
        self, active: bool | None = None, robot: str | None = None, limit: int | None = None
    ) -> list[Alarm]:
        """Newest raised first."""
        ...

    def recent_history(self, robot: str, since_ts: float, max_rows: int) -> list[HistoryRow]:
        """A robot's readings (the newest ``max_rows``) and events since ``since_ts``, in time
        order."""
        ...

    def close(self) -> None: ...
