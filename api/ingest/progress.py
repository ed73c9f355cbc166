"""The service's side of the flow control: publish how far ingest got, per site.

QoS 1 acknowledgements come from the broker, so a publisher cannot tell from them whether the
service keeps up; the broker's queue for the service's session fills until it drops messages
(Mosquitto: ``max_queued_messages``, "Outgoing messages are being dropped"). After every commit
:meth:`ProgressReport.committed` notes, per site, the newest simulated time in the batch and how
many of the site's messages were taken off the broker; :meth:`ProgressReport.run` publishes that
(:class:`~contract.ingest.IngestProgress`, retained, QoS 0) at most every ``interval_s`` while
something changed, and every :data:`IDLE_EVERY_S` anyway so that a reader can tell a quiet
service from one that is gone. ``factory simulate`` holds its clock within a window of it
(:mod:`simulator.devices.flow`).

``through`` is the newest time in the *newest batch* that had messages of the site, not the
newest time ever stored: a store holding a previous, later run would otherwise tell the publisher
that everything it sends now is already in.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from api.ingest.pipeline import BatchResult
from api.lag import IngestLag
from contract.codec import encode
from contract.ingest import IngestProgress, ingest_topic

#: A report goes out at least this often, even with nothing new (wall seconds).
IDLE_EVERY_S = 4.0
#: Publish ``(topic, payload, qos, retain)``; False if the client refused it outright.
Publish = Callable[[str, bytes, int, bool], bool]


@dataclass(slots=True)
class _Site:
    through: float | None = None
    committed: int = 0


class ProgressReport:
    """Per-site ingest progress of one worker, and the task that publishes it."""

    def __init__(
        self,
        worker: str,
        sites: Iterable[str],
        publish: Publish,
        lag: IngestLag,
        waiting: Callable[[], int],
    ) -> None:
        self.worker = worker
        self._sites = {site: _Site() for site in sites}
        self._publish = publish
        self._lag = lag
        self._waiting = waiting
        self._changed = True

    def committed(self, result: BatchResult) -> None:
        """On the event loop, after a commit: note what the batch took off the broker."""
        newest: dict[str, float] = {}
        for group in (result.new, result.duplicates, result.stale):
            for message in group:
                site, ts = message.topic.site, message.payload.ts
                if ts > newest.get(site, -1.0):
                    newest[site] = ts
                self._site(site).committed += 1
        for refused in result.refused:
            parts = refused.topic.split("/")
            if len(parts) > 2 and parts[1] in self._sites:
                self._sites[parts[1]].committed += 1
        for site, ts in newest.items():
            self._sites[site].through = ts
        if newest or result.refused:  # not for a batch of ignored ones: our own report, heard back
            self._changed = True

    def reports(self, now: float) -> list[tuple[str, IngestProgress]]:
        """Every site's topic and report as of ``now`` (wall time)."""
        waiting, lag = self._waiting(), self._lag.seconds()
        return [
            (
                ingest_topic(site),
                IngestProgress(
                    v=1,
                    ts=now,
                    worker=self.worker,
                    through=state.through,
                    committed=state.committed,
                    waiting=waiting,
                    lag_s=lag,
                ),
            )
            for site, state in sorted(self._sites.items())
        ]

    async def run(self, interval_s: float) -> None:
        """Publish while anything changed, at most every ``interval_s``; every
        :data:`IDLE_EVERY_S` regardless."""
        last = 0.0
        while True:
            now = time.time()
            if self._changed or now - last >= IDLE_EVERY_S:
                self._changed = False
                last = now
                for topic, report in self.reports(now):
                    self._publish(topic, encode(report), 0, True)
            await asyncio.sleep(interval_s)

    def _site(self, site: str) -> _Site:
        """A site's progress; a site not in the scenario is reported once it sends."""
        state = self._sites.get(site)
        if state is None:
            state = self._sites[site] = _Site()
        return state
