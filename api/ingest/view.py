"""What an ingest worker sees of the whole plant while it stores only its share.

With a shared subscription (``$share/GROUP/factory/#``) the broker hands each message to *one*
worker, which stores it; the store's unique ``(robot, boot, seq)`` keeps that exact however the
messages are spread. But live state, the ``/api/stream`` and the maintenance engine need every
message. So each worker also keeps a plain (non-shared) subscription: the *view*. It is not
stored from; it is classified against the contract, deduplicated in memory (a bounded window of
recent identities: a redelivery or a retained re-send is dropped), folded into live state,
streamed, and — on the engine leader only — handed to the maintenance loop (``on_new``).

The view's MQTT session does not outlive the connection (MQTT 5 session expiry 0), so a dead
worker leaves no queue growing on the broker; what a view misses while down is in the store, and
the engine warms up from the store when it takes over (:mod:`api.warmup`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from api.ingest.inbox import Inbox
from api.ingest.mqtt_client import IngestClient, StatusCallback
from api.ingest.pipeline import classify
from api.live import LiveState
from api.settings import Settings
from api.store import Accepted, Outcome, supersedes
from api.stream import STREAM_CHANNELS, StreamEvent, StreamHub
from contract.topics import Channel

log = logging.getLogger(__name__)

#: Identities remembered for dedupe (a redelivery comes within seconds, never 100 k later).
DEDUPE_WINDOW = 100_000
BATCH_MESSAGES = 1_000
BATCH_WAIT_S = 0.002

OnNew = Callable[[Sequence[Accepted], float | None], Awaitable[None]]
Key = tuple[str, str, str, int]


class RecentKeys:
    """The last ``size`` message identities, oldest forgotten first. A birth or state (retained,
    latest-value) is new when it supersedes the one held, the store's rule: so a last will
    (``seq`` 0) that fires again in the same boot, after a reconnect, still counts."""

    def __init__(self, size: int = DEDUPE_WINDOW) -> None:
        self.size = size
        self._keys: OrderedDict[Key, None] = OrderedDict()
        self._latest: dict[tuple[str, str], tuple[str, int]] = {}

    def first_time(self, message: Accepted) -> bool:
        p = message.payload
        channel = message.topic.channel
        if channel in (Channel.BIRTH, Channel.STATE):
            held = self._latest.get((channel.value, p.robot))
            if supersedes(held, (p.boot, p.seq)) is not Outcome.NEW:
                return False
            self._latest[(channel.value, p.robot)] = (p.boot, p.seq)
            return True
        key = (channel.value, p.robot, p.boot, p.seq)
        if key in self._keys:
            return False
        self._keys[key] = None
        if len(self._keys) > self.size:
            self._keys.popitem(last=False)
        return True


def view_settings(settings: Settings) -> Settings:
    """The ingest settings turned into the view's: not shared, own client id, no session kept."""
    return settings.model_copy(
        update={
            "mqtt_shared_group": None,
            "mqtt_client_id": f"{settings.mqtt_client_id}-view"[:64],
            "mqtt_session_expiry_s": 0,
        }
    )


class ViewFeed:
    """See the module docstring. ``on_new`` is read on every batch, so it can be switched as
    leadership comes and goes (``None``: nobody is fed)."""

    def __init__(
        self,
        settings: Settings,
        username: str | None,
        password: str | None,
        loop: asyncio.AbstractEventLoop,
        live: LiveState,
        hub: StreamHub,
        on_status: StatusCallback,
    ) -> None:
        self.inbox = Inbox(settings.ingest_queue_max)
        self.client = IngestClient(
            view_settings(settings), username, password, loop, self.inbox.put_all, on_status
        )
        self.live = live
        self.hub = hub
        self.seen = RecentKeys()
        self.on_new: OnNew | None = None
        self.messages = 0
        self.duplicates = 0

    async def run(self) -> None:
        """Take, dedupe, apply, stream and hand on batches until cancelled."""
        while True:
            batch = await self.inbox.take_batch(BATCH_MESSAGES, BATCH_WAIT_S)
            new: list[Accepted] = []
            for inbound in batch:
                verdict = classify(inbound)
                if not isinstance(verdict, Accepted):
                    continue  # refused ones are dead-lettered by whichever worker stores them
                if self.seen.first_time(verdict):
                    new.append(verdict)
                else:
                    self.duplicates += 1
            self.client.ack(batch)
            self.messages += len(new)
            streaming = self.hub.clients > 0
            for message in new:
                self.live.apply(message)
                if streaming and message.topic.channel in STREAM_CHANNELS:
                    self.hub.publish(StreamEvent.of(message))
            on_new = self.on_new
            if on_new is not None and new:
                try:
                    await on_new(new, self.live.clock)
                except Exception:
                    log.exception("the maintenance step failed on a view batch; the view goes on")
