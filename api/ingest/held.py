"""Messages ahead of the fleet's clock, held until another robot's time confirms them.

Robots' messages do not reach the service in simulated-time order across robots: each client
has its own in-flight window, and the broker reads one connection's burst before the next. So
in a fleet started with ``--factor 0`` one robot's messages can arrive several samples before
the others' messages of the same simulated minutes, before the pace that would widen the lead
is known. The clock guard would refuse them as ahead (:mod:`api.ingest.clock_guard`), and a
genuine reading would be lost. So the pipeline holds such a message instead: not stored and
not acknowledged (the broker keeps it: a crash or a restart gets it delivered again), and asks
the guard again after every batch. It lands as soon as the fleet's clock reaches it (held
messages are asked in arrival order, so a robot's land in its own order), and is refused only
when it has waited ``hold_s`` wall seconds, or when more than ``hold_max`` wait (the
longest-held first). A wrong time costs a bounded wait, never moves the clock, and does not
hold back its robot's messages that are not ahead.

:class:`Held` is a value the pipeline copies, changes and keeps only once the batch is
committed, so a batch the store could not take leaves it as it was.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from api.inbound import Inbound
from api.store import Accepted


@dataclass(frozen=True, slots=True)
class Waiting:
    """One held message: as received, as decoded, and since when (wall clock)."""

    inbound: Inbound
    accepted: Accepted
    since: float


class Held(deque[Waiting]):
    """Held messages in arrival order (so the longest-held is first)."""

    def copy(self) -> Held:
        return Held(self)

    def since(self) -> float | None:
        """When the longest-held message was held (wall clock), ``None`` if none is."""
        return self[0].since if self else None
