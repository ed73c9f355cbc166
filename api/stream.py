"""Fan-out of live events to stream clients, each with a bounded queue.

The ingest path publishes an event once it is committed; every subscribed client whose filter
admits it gets it in its own queue. A client whose queue is full is too slow: it is dropped (its
stream ends with a comment saying so) rather than allowed to grow the service's memory.
Everything here runs on the event loop.

Channels: the robots' ``birth``, ``state``, ``telemetry`` and ``event``; the maintenance loop's
``alarm`` and ``work_order``; and ``raw``, the message inspector — every message the service
receives, valid or not, as it came off the wire. ``raw`` is heavy, so a client gets it only when
it names it (``?channel=raw``), never by default, and it is built only while such a client is
connected. A raw message that carries ground truth (:mod:`api.private_truth`) is marked, and only
a client holding the API key gets it. ``mqtt`` is the protocol inspector (:mod:`api.protocol_log`):
connections, sessions, wills and every PUBLISH with its flags and sender, as the broker logs them;
opt-in too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import orjson

from api.inbound import Inbound
from api.private_truth import carries_truth
from api.store import Accepted
from contract.topics import Channel

#: Robot channels that reach the stream (truth is hidden, cmd is not the robots').
STREAM_CHANNELS = (Channel.BIRTH, Channel.STATE, Channel.TELEMETRY, Channel.EVENT)
ALARM, WORK_ORDER, RAW, MQTT = "alarm", "work_order", "raw", "mqtt"
#: Every channel a client may ask for.
ALL_CHANNELS = (*(c.value for c in STREAM_CHANNELS), ALARM, WORK_ORDER, RAW, MQTT)
#: Channels a client gets only when it names them.
OPT_IN_CHANNELS = frozenset({RAW, MQTT})
#: Payload text kept in a raw event.
RAW_PAYLOAD_BYTES = 2048


@dataclass(frozen=True, slots=True)
class StreamEvent:
    channel: str
    robot: str
    line: str
    data: str  # JSON, serialised once for every client
    truth: bool = False  # carries ground truth: only for clients holding the API key

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

    @classmethod
    def raw(cls, inbound: Inbound, rejected: str | None) -> StreamEvent:
        """The inspector's view of a received message (payload text cut at 2 KiB)."""
        parts = inbound.topic.split("/")
        line, robot = (parts[3], parts[4]) if len(parts) == 6 else ("", "")
        body = {
            "topic": inbound.topic,
            "qos": inbound.qos,
            "retain": inbound.retain,
            "payload": inbound.payload[:RAW_PAYLOAD_BYTES].decode("utf-8", errors="replace"),
            "size": len(inbound.payload),
            "truncated": len(inbound.payload) > RAW_PAYLOAD_BYTES,
            "received_at": inbound.received_at,
            "rejected": rejected,
        }
        truth = carries_truth(inbound.topic, inbound.payload)
        return cls(RAW, robot, line, orjson.dumps(body).decode(), truth)


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """Which events a client wants; ``None`` for a field admits every value. ``truth``: the
    client holds the API key, so events carrying ground truth may reach it."""

    lines: frozenset[str] | None = None
    robots: frozenset[str] | None = None
    channels: frozenset[str] | None = None
    truth: bool = False

    @classmethod
    def of(
        cls,
        lines: Iterable[str] | None,
        robots: Iterable[str] | None,
        channels: Iterable[str] | None,
        truth: bool = False,
    ) -> StreamFilter:
        def norm(values: Iterable[str] | None) -> frozenset[str] | None:
            return frozenset(values) if values else None

        return cls(norm(lines), norm(robots), norm(channels), truth)

    def admits(self, event: StreamEvent) -> bool:
        if event.truth and not self.truth:
            return False
        if self.channels is None:
            wanted = event.channel not in OPT_IN_CHANNELS
        else:
            wanted = event.channel in self.channels
        return (
            wanted
            and (self.lines is None or event.line in self.lines)
            and (self.robots is None or event.robot in self.robots)
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
        self._raw: set[Subscription] = set()
        self._closed = False

    @property
    def clients(self) -> int:
        return len(self._subscriptions)

    @property
    def wants_mqtt(self) -> bool:
        """Whether a connected client asked for the protocol inspector's channel."""
        return any(
            s.filter.channels is not None and MQTT in s.filter.channels for s in self._subscriptions
        )

    @property
    def wants_raw(self) -> bool:
        """Whether a connected client asked for the raw channel (only then is it built)."""
        return bool(self._raw)

    def subscribe(self, wanted: StreamFilter) -> Subscription:
        subscription = Subscription(wanted, self._max_queue)
        if self._closed:
            subscription.end("the service is shutting down")
            return subscription
        self._subscriptions.add(subscription)
        if wanted.channels is not None and RAW in wanted.channels:
            self._raw.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscriptions.discard(subscription)
        self._raw.discard(subscription)

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
        """End every stream, and any opened later (the service is shutting down)."""
        self._closed = True
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
