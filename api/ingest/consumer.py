"""The consumer task: take batches off the ingest queue, commit them, then acknowledge and publish.

Order matters for the delivery guarantee: a batch is committed (in a worker thread, so the event
loop keeps serving HTTP), and only then are its messages acknowledged to the broker, folded into
live state, counted and streamed, and the new ones handed to the maintenance loop (``on_new``).
If the store is unavailable the batch is retried with back-off and nothing is acknowledged
meanwhile, so the broker holds the messages. A message the clock guard holds (ahead of the
fleet's clock, :mod:`api.ingest.held`) is acknowledged only by the batch that decides it; while
one is held the consumer wakes by its deadline even when nothing else comes. Nothing a sender
does ends this task, nor does a failing maintenance step (it is logged and counted); only
cancellation does.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence

from api.inbound import Inbound
from api.ingest.inbox import Inbox
from api.ingest.metrics import Metrics
from api.ingest.pipeline import BatchResult, Pipeline
from api.live import LiveState
from api.store import Accepted, StoreUnavailable
from api.stream import STREAM_CHANNELS, StreamEvent, StreamHub
from contract.ingest import is_ingest_topic

log = logging.getLogger(__name__)

RETRY_MIN_S = 0.1
RETRY_MAX_S = 5.0
DRAIN_POLL_S = 0.01
#: Past a held message's deadline before the consumer decides it (so that it is due by then).
HELD_GRACE_S = 0.01

Acker = Callable[[Iterable[Inbound]], object]
#: Called with the batch's new messages and the simulated clock after they are committed.
OnNew = Callable[[Sequence[Accepted], float | None], Awaitable[None]]
#: Offered every ignored message's topic and payload (the pace desk takes the fleet's pace).
OnIgnored = Callable[[str, bytes], object]
#: Told of every committed batch (the ingest progress report, :mod:`api.ingest.progress`).
OnCommitted = Callable[[BatchResult], None]


class Consumer:
    def __init__(
        self,
        inbox: Inbox,
        pipeline: Pipeline,
        live: LiveState,
        hub: StreamHub,
        metrics: Metrics,
        ack: Acker,
        on_idle: Callable[[], None] = lambda: None,
        *,
        max_messages: int,
        max_wait_s: float,
        on_new: OnNew | None = None,
        on_ignored: OnIgnored | None = None,
        on_committed: OnCommitted | None = None,
        live_and_stream: bool = True,
    ) -> None:
        self._inbox = inbox
        self._pipeline = pipeline
        self._live = live
        self._hub = hub
        self._metrics = metrics
        self._ack = ack
        self._on_idle = on_idle
        self._max_messages = max_messages
        self._max_wait_s = max_wait_s
        self._on_new = on_new
        self._on_ignored = on_ignored
        self._on_committed = on_committed
        #: False where a view (:mod:`api.ingest.view`) applies live state and streams instead.
        self._live_and_stream = live_and_stream
        self._busy = False

    async def run(self) -> None:
        while True:
            batch = await self._inbox.take_batch(
                self._max_messages, self._max_wait_s, self._until_held_due()
            )
            self._busy = True
            if batch:
                self._live.lag.taken(min(inbound.received_at for inbound in batch))
            result = await self._commit(batch)  # an empty batch decides what was held too long
            self._live.lag.committed(result.committed_at, self._inbox.depth)
            self._ack(result.decided)
            if self._on_committed is not None:
                self._on_committed(result)
            self._after_commit(result)
            if self._on_new is not None and result.new:
                try:
                    await self._on_new(result.new, self._live.clock)
                except Exception:
                    self._metrics.maintenance_errors.inc()
                    log.exception("the maintenance step failed on a batch; ingest goes on")
            self._busy = False
            if not self._inbox.depth:
                self._on_idle()

    async def drain(self, timeout_s: float) -> bool:
        """Wait (bounded) until everything received is committed and acknowledged.

        Before a clean stop: a broker that drops unacknowledged in-flight messages when the
        connection ends (amqtt 0.12) would otherwise lose what was still in the queue.
        """
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self._busy or self._inbox.depth:
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(DRAIN_POLL_S)
        return True

    async def _commit(self, batch: list[Inbound]) -> BatchResult:
        write = self._pipeline.write
        delay_s = RETRY_MIN_S
        while True:
            try:
                result = await asyncio.to_thread(write, batch)
            except StoreUnavailable as exc:
                self._metrics.store_errors.inc()
                self._live.store_problem = f"the store cannot commit: {exc}"
                log.warning("store unavailable, retrying in %.1f s: %s", delay_s, exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, RETRY_MAX_S)
                continue
            except Exception:
                # Not the store being away: something in this batch it cannot take. Commit
                # message by message so only that one becomes a dead letter.
                self._metrics.store_errors.inc()
                log.exception("batch of %d failed; committing one by one", len(batch))
                write = self._pipeline.write_each
                continue
            self._live.store_problem = None
            return result

    def _until_held_due(self) -> float | None:
        """Seconds until the longest-held message must be decided; ``None`` if none is held."""
        deadline = self._pipeline.hold_deadline()
        if deadline is None:
            return None
        return max(0.0, deadline - self._pipeline.guard.wall()) + HELD_GRACE_S

    def _after_commit(self, result: BatchResult) -> None:
        m = self._metrics
        m.held.set(result.held)
        batch = result.decided
        m.batch_size.observe(len(batch))
        for inbound in batch:
            m.commit_latency.observe(max(0.0, result.committed_at - inbound.received_at))
        # Counted per batch, not per message: a label lookup costs more than the increment.
        for counter, labels in (
            (m.rejected, Counter(r.reason for r in result.refused)),
            (m.duplicates, Counter(a.topic.channel.value for a in result.duplicates)),
            (m.stale, Counter(a.topic.channel.value for a in result.stale)),
            (m.ignored, Counter(i.topic.rsplit("/", 1)[-1] for i in result.ignored)),
            (m.messages, Counter(a.topic.channel.value for a in result.new)),
        ):
            for label, count in labels.items():
                counter.labels(label).inc(count)
        if self._on_ignored is not None:
            for inbound in result.ignored:
                self._on_ignored(inbound.topic, inbound.payload)
        hub = self._hub
        if hub.wants_raw:
            rejected = result.rejections()
            for position, inbound in enumerate(batch):
                if is_ingest_topic(inbound.topic):
                    continue  # our own progress report, a few a second: noise in the inspector
                hub.publish(StreamEvent.raw(inbound, rejected.get(position)))
        if not self._live_and_stream:
            return
        streaming = hub.clients > 0
        for message in result.new:
            self._live.apply(message)
            if streaming and message.topic.channel in STREAM_CHANNELS:
                self._hub.publish(StreamEvent.of(message))
