"""The pace desk: what the service knows of the fleet's pace, and how it changes it.

The pace travels over MQTT, not HTTP, because the robots are another process (or another
machine): ``POST /api/clock`` publishes a retained :class:`~contract.pace.Pace` on every site's
``factory/{site}/pace``; the robots follow it. The service subscribes to ``factory/#``, so it
hears that retained message back — and, after a restart, the one a previous run left — and
:meth:`PaceDesk.observe` keeps the newest as the current pace.

The service clock needs no pausing of its own: it is the newest simulated time ingested
(:mod:`api.live`), and while the robots are paused nothing new arrives, so it stands still.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from contract.codec import Rejected, encode
from contract.pace import Pace, decode_pace, is_pace_topic, pace_topic

log = logging.getLogger(__name__)

#: Publish ``(topic, payload, qos, retain)``; False if the client refused it outright.
Publish = Callable[[str, bytes, int, bool], bool]


class PaceUnknown(ValueError):
    """A change that needs a factor while none is known yet."""


class PaceDesk:
    """The current pace (``None`` until one is set or heard) and the way to change it."""

    def __init__(self, publish: Publish, sites: Iterable[str]) -> None:
        self._publish = publish
        self.sites = sorted(set(sites))
        self.current: Pace | None = None
        self.refused = 0

    def observe(self, topic: str, payload: bytes) -> bool:
        """Take a message heard on a pace topic of ours; True if it was one."""
        if not is_pace_topic(topic) or topic.split("/")[1] not in self.sites:
            return False
        if not payload:
            return True  # a cleared retained pace: keep what we know
        try:
            pace = decode_pace(payload)
        except Rejected as exc:
            self.refused += 1
            log.warning("ignored a pace on %s: %s", topic, exc)
            return True
        if self.current is None or pace.ts >= self.current.ts:
            self.current = pace
        return True

    def change(
        self, *, paused: bool | None, factor: float | None, by: str | None = None
    ) -> tuple[Pace, bool]:
        """Publish the new pace (what is not given stays); returns it and whether the broker
        client took it. Raises :class:`PaceUnknown` if no factor is given or known."""
        known = self.current
        if factor is None:
            if known is None:
                raise PaceUnknown(
                    "the service has not heard the robots' pace yet, so say the factor too, "
                    'e.g. {"paused": true, "factor": 3600}'
                )
            factor = known.factor
        if paused is None:
            paused = known.paused if known is not None else False
        pace = Pace(v=1, ts=time.time(), paused=paused, factor=float(factor), by=by)
        data = encode(pace)
        refused = [s for s in self.sites if not self._publish(pace_topic(s), data, 1, True)]
        sent = not refused
        if sent:
            self.current = pace
        return pace, sent
