"""Is the service's MQTT client still hearing, and is its session still its own?

Never deaf: every ``mqtt_probe_interval_s`` the service publishes a small QoS 0 probe on a
command topic inside its own subscription (``…/_svc-probe/cmd``: ``_svc-probe`` is not a valid
robot id, so no robot ever gets it); it comes straight back and is taken out before ingest.
:class:`Hearing` keeps the times (anything heard, probe sent, subscribed); when neither the probe
nor anything else has arrived within ``mqtt_probe_timeout_s`` while subscribed, the client is
deaf (a subscription lost in a takeover: on amqtt the service once stayed "ready" and ingested
nothing). :func:`watch_hearing` then reports it on ``/readyz`` and cycles the connection, which
resubscribes. In a shared subscription a message goes to one member, so each worker probes a
topic of its own, subscribed outside the group.

Takeovers: the broker ends the connection because another one used the service's client id.
Brokers say so (MQTT 5 reason "Session taken over") or just close the socket (Mosquitto 2.0), so a
connection the broker ended that is accepted again within ``TAKEOVER_WINDOW_S`` (the broker
stayed up) counts as one too; each is counted and logged. (amqtt 0.12 keeps both connections and
delivers to the newer one: there a takeover shows as deafness.)

The times are written from paho's network thread and read on the event loop: each is one float
(an atomic store), and a stale read only delays a verdict by one probe interval. ``on_takeover``
runs on the network thread (a Prometheus counter's ``inc`` is thread-safe).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from api.ingest.metrics import Metrics
from api.live import LiveState
from api.settings import Settings
from contract.topics import matches

log = logging.getLogger(__name__)

#: MQTT 5 DISCONNECT reason: another connection with the same client id took the session.
SESSION_TAKEN_OVER = 0x8E
#: A connection the broker ended and accepted again this soon is taken to be a takeover.
TAKEOVER_WINDOW_S = 5.0
#: The robot id of the service's probe topic (not a valid robot id: never a real robot's).
PROBE_ROBOT = "_svc-probe"
PROBE_PAYLOAD = b'{"probe": true}'


def probe_topic(topic_filter: str, robot: str = PROBE_ROBOT) -> str | None:
    """A command topic inside ``topic_filter`` for the service's hearing probe (``None`` if the
    filter does not take the form ``factory/…`` down to a robot's topics)."""
    levels = topic_filter.split("/")
    wanted = ["factory", "probe", "probe", "probe", robot, "cmd"]
    topic: list[str] = []
    for i, level in enumerate(levels):
        if level == "#":
            topic += wanted[i:]
            break
        if i >= len(wanted):
            return None
        topic.append(wanted[i] if level == "+" else level)
    if len(topic) != len(wanted) or topic[4] != robot or topic[5] != "cmd":
        return None  # never a real robot's topic, and never a channel the service ingests
    candidate = "/".join(topic)
    return candidate if matches(topic_filter, candidate) else None


class Hearing:
    """The probe's topic and the times that tell a deaf client; takeovers counted."""

    def __init__(
        self,
        settings: Settings,
        client_id: str,
        publish: Callable[[str, bytes], object],
        on_takeover: Callable[[], None],
    ) -> None:
        self._publish = publish
        self.client_id = client_id
        self.shared = settings.mqtt_shared_group is not None
        robot = PROBE_ROBOT
        if self.shared:
            robot += "-" + hashlib.sha256(self.client_id.encode()).hexdigest()[:8]
        self.topic = probe_topic(settings.mqtt_topic_filter, robot)
        #: Wall time of the newest message of any kind, of the newest probe, of the subscription.
        self.last_heard = 0.0
        self.probe_sent_at: float | None = None
        self.subscribed_at: float | None = None
        self.takeovers = 0
        self.on_takeover = on_takeover
        self._dropped_at: float | None = None

    def probe(self) -> bool:
        """Publish the probe (QoS 0) if subscribed; False if there is nothing to do."""
        if self.topic is None or self.subscribed_at is None:
            return False
        self.probe_sent_at = time.time()
        self._publish(self.topic, PROBE_PAYLOAD)
        return True

    def deaf_for(self, now: float, timeout_s: float) -> float | None:
        """Seconds the client has heard nothing while subscribed, if a probe sent more than
        ``timeout_s`` ago has not come back and nothing else arrived since; else ``None``."""
        sent = self.probe_sent_at
        if sent is None or self.subscribed_at is None or self.last_heard >= sent:
            return None
        if now - sent < timeout_s:
            return None
        return now - max(self.last_heard, self.subscribed_at)

    def awaiting_probe(self) -> bool:
        return self.probe_sent_at is not None and self.last_heard < self.probe_sent_at

    def subscribed(self) -> None:
        self.subscribed_at = time.time()
        self.probe_sent_at = None

    def lost(self, reason_code: Any, ours: bool) -> None:
        """The connection ended (``ours``: the service ended it on purpose)."""
        self.subscribed_at = None
        if reason_code == SESSION_TAKEN_OVER:
            self._taken_over("the broker said: session taken over")
        elif not ours:
            self._dropped_at = time.time()

    def connected(self) -> None:
        dropped_at, self._dropped_at = self._dropped_at, None
        if dropped_at is not None and time.time() - dropped_at < TAKEOVER_WINDOW_S:
            self._taken_over("the broker ended the connection and at once accepted it again")

    def _taken_over(self, how: str) -> None:
        self.takeovers += 1
        self.on_takeover()
        log.warning(
            "another connection with the client id %r took over the service's MQTT session "
            "(%s): a takeover attempt, a second service with the same id, or a broker restart; "
            "reconnecting",
            self.client_id,
            how,
        )


class Probed(Protocol):
    """What :func:`watch_hearing` needs of the MQTT client."""

    hearing: Hearing

    async def reconnect(self) -> None: ...


async def watch_hearing(
    client: Probed, live: LiveState, metrics: Metrics, settings: Settings
) -> None:
    """Probe every ``mqtt_probe_interval_s``; a client subscribed but deaf is reported on
    ``/readyz`` and reconnected, which resubscribes (and clears the problem once subscribed)."""
    hearing = client.hearing
    while True:
        await asyncio.sleep(settings.mqtt_probe_interval_s)
        deaf_s = hearing.deaf_for(time.time(), settings.mqtt_probe_timeout_s)
        if deaf_s is not None and live.broker_problem is None:
            live.broker_problem = (
                f"subscribed to {settings.subscription} but nothing arrived for {deaf_s:.0f} s, "
                "not even the service's own probe; resubscribing"
            )
            log.warning("%s", live.broker_problem)
            metrics.deaf_reconnects.inc()
            await client.reconnect()
        elif not hearing.awaiting_probe():
            hearing.probe()
