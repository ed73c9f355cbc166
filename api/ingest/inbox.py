"""The bounded hand-off between the MQTT network thread and the consumer task.

Messages are acknowledged only after they are committed, so the broker never has more of them
in flight than its window allows (MQTT 5 Receive Maximum, Mosquitto's ``max_inflight_messages``
for 3.1.1). With the queue larger than that window it cannot overflow. If it does (a broker
without a window, or a window set larger than the queue), the message is counted and left
unacknowledged; once the consumer has caught up, the service reconnects and a broker that keeps
its session resends what was not acknowledged (Mosquitto does; amqtt 0.12 drops it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from api.inbound import Inbound


class Inbox:
    def __init__(self, max_messages: int) -> None:
        self.queue: asyncio.Queue[Inbound] = asyncio.Queue(max_messages)
        self.overflow_total = 0
        self._overflowed = False
        self._arrived = asyncio.Event()

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    def put_all(self, messages: Iterable[Inbound]) -> None:
        """On the event loop: queue what the network thread received; count what does not fit."""
        for message in messages:
            try:
                self.queue.put_nowait(message)
            except asyncio.QueueFull:
                self.overflow_total += 1
                self._overflowed = True
        self._arrived.set()

    def take_overflow(self) -> bool:
        """True once after messages were turned away: time to ask for redelivery."""
        overflowed, self._overflowed = self._overflowed, False
        return overflowed

    async def take_batch(
        self, max_messages: int, max_wait_s: float, timeout_s: float | None = None
    ) -> list[Inbound]:
        """Wait for one message, then take what else is queued, up to ``max_messages``; if that
        is fewer, wait ``max_wait_s`` once for more (a short wait buys much larger batches).
        With ``timeout_s``, an empty batch if no message came within it."""
        if timeout_s is not None and self.queue.empty():
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
            except TimeoutError:
                return []
        batch = [await self.queue.get()]
        self._drain(batch, max_messages)
        if len(batch) < max_messages and max_wait_s > 0:
            await asyncio.sleep(max_wait_s)
            self._drain(batch, max_messages)
        return batch

    def _drain(self, batch: list[Inbound], max_messages: int) -> None:
        while len(batch) < max_messages and not self.queue.empty():
            batch.append(self.queue.get_nowait())
