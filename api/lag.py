"""The service's ingest lag: how long, in wall seconds, the oldest message received and not yet
committed has been waiting. Zero when everything received is committed.

The consumer marks a batch as taken (its oldest receive time) and as committed; between the two
the lag grows with the clock, so a store that hangs or a commit that crawls shows up while it
happens, not only after. The lag is exported as ``factory_ingest_lag_seconds`` and, past a
configured bound (``FACTORY_INGEST_LAG_MAX_S``), is a ``/readyz`` problem until ingest catches up.

What waits at the broker (beyond the service's receive window) is not seen here: that backlog
shows as the broker's queue and as ``factory_sim_clock_behind_wall_seconds`` at factor 1; the
publishers learn how far ingest got from its progress reports (:mod:`api.ingest.progress`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class IngestLag:
    #: Past this many wall seconds the lag is a readiness problem; ``None``: never.
    max_s: float | None = None
    clock: Callable[[], float] = field(default=time.time, repr=False)
    #: Receive time of the oldest message in the batch being committed; ``None`` when idle.
    _pending_since: float | None = None
    #: The worst wait in the last committed batch (receive to commit), wall seconds.
    last_batch_s: float = 0.0

    def taken(self, oldest_received_at: float) -> None:
        """A batch was taken off the queue; its oldest message arrived at ``oldest_received_at``."""
        self._pending_since = oldest_received_at

    def committed(self, committed_at: float, backlog: int) -> None:
        """The batch is committed; ``backlog`` messages are still queued behind it."""
        if self._pending_since is not None:
            self.last_batch_s = max(0.0, committed_at - self._pending_since)
        self._pending_since = None
        if not backlog:
            # Caught up: nothing received is waiting any more.
            self.last_batch_s = 0.0

    def seconds(self) -> float:
        """The lag now: the batch in commit's oldest wait so far, else the last batch's."""
        if self._pending_since is not None:
            return max(self.last_batch_s, self.clock() - self._pending_since)
        return self.last_batch_s

    def problem(self) -> str | None:
        """Why the lag makes the service not ready, or ``None``."""
        if self.max_s is None:
            return None
        lag = self.seconds()
        if lag <= self.max_s:
            return None
        return (
            f"ingest is {lag:.1f} s behind (the oldest message waiting to be committed), "
            f"more than FACTORY_INGEST_LAG_MAX_S={self.max_s:g}"
        )
