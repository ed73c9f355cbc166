"""Fan-out of live events to stream clients, each with a bounded queue.

The ingest path publishes an event once it is committed; every subscribed client whose filter
admits it gets it in its own queue. A client whose queue is full is too slow: it is dropped (its
stream ends with a comment saying so) rather than allowed to grow the service's memory.
Everything here runs on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import orjson

from api.store import Accepted
from contract.topics import Channel

#: Channels that reach the stream (truth is hidden, cmd is not the robots').
STREAM_CHANNELS = (Channel.BIRTH, Channel.STATE, Channel.TELEMETRY, Channel.EVENT)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    channel: str
    robot: str
    line: str
    data: str  # JSON, serialised once for every client

    @classmethod
    def of(cls, message: Accepted) -> StreamEvent:
        topic = message.topic
        body = {
            "channel": topic.channel.value,
            "site": topic.site,
            "area": topic.area,
            "line": topic.line,
            "robot": topic.robot,
            "payload": message.payload.model_dump(exclude_none=True),
        }
        return cls(topic.channel.value, topic.robot, topic.line, orjson.dumps(body).decode())


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which events a client wants; ``None`` for a field admits every value."""

    lines: frozenset[str] | None = None
    robots: frozenset[str] | None = None
    channels: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        lines: Iterable[str] | None,
        robots: Iterable[str] | None,
        channels: Iterable[str] | None,
    ) -> StreamFilter:
        def norm(values: Iterable[str] | None) -> frozenset[str] | None:
            return frozenset(values) if values else None

        return cls(norm(lines), norm(robots), norm(channels))

    def admits(self, event: StreamEvent) -> bool:
        return (
            (self.lines is None or event.line in self.lines)
            and (self.robots is None or event.robot in self.robots)
            and (self.channels is None or event.channel in self.channels)
        )


class _End:
    """Put in a client's queue to end its stream, with the reason as the last comment."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class Subscription:
    def __init__(self, wanted: StreamFilter, max_queue: int) -> None:
        self.filter = wanted
        self.queue: asyncio.Queue[StreamEvent | _End] = asyncio.Queue(max_queue)

    def end(self, reason: str) -> None:
        while not self.queue.empty():  # make room: what is queued will not be read
            self.queue.get_nowait()
        self.queue.put_nowait(_End(reason))


class StreamHub:
    """The set of live stream clients."""

    def __init__(self, max_queue: int, on_drop: Callable[[], None] = lambda: None) -> None:
        self._max_queue = max_queue
        self._on_drop = on_drop
        self._subscriptions: set[Subscription] = set()

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    def subscribe(self, wanted: StreamFilter) -> Subscription:
        subscription = Subscription(wanted, self._max_queue)
        self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)

    def publish(self, event: StreamEvent) -> None:
        for subscription in list(self._subscriptions):
            if not subscription.filter.admits(event):
                continue
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.unsubscribe(subscription)
                subscription.end("dropped: this client read too slowly; reconnect to resume")
                self._on_drop()

    def close(self) -> None:
        """End every stream (the service is shutting down)."""
        for subscription in list(self._subscriptions):
            self.unsubscribe(subscription)
            subscription.end("the service is shutting down")

    @staticmethod
    async def events(
        subscription: Subscription, heartbeat_s: float
    ) -> AsyncIterator[StreamEvent | str | None]:
        """A client's events; ``None`` after ``heartbeat_s`` of silence; a final ``str`` reason
        when the stream ends."""
        while True:
            try:
                item = await asyncio.wait_for(subscription.queue.get(), heartbeat_s)
            except TimeoutError:
                yield None
                continue
            if isinstance(item, _End):
                yield item.reason
                return
            yield item
