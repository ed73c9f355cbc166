"""The ingest pipeline without a broker: classification, batches, and the consumer's order of
commit → acknowledge → publish, on a real SQLite file."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from api.inbound import Inbound
from api.ingest.clock_guard import ClockGuard, ClockRule
from api.ingest.consumer import Consumer
from api.ingest.inbox import Inbox
from api.ingest.metrics import Metrics
from api.ingest.pipeline import INTERNAL_ERROR, Pipeline, classify
from api.live import LiveState
from api.store import Accepted, Refused, StoreUnavailable
from api.store.sqlite import SqliteStore
from api.stream import StreamFilter, StreamHub
from contract.codec import RejectReason, encode
from contract.payloads import Reading, State, Telemetry

T0 = 1_767_592_800.0
PREFIX = "factory/plant-1/body-shop/line-1"


def tele(robot: str = "r-1", seq: int = 1) -> bytes:
    reading = Reading(ts=T0 + seq, temperature_c=40.0)
    return encode(
        Telemetry(v=1, robot=robot, ts=T0 + seq, boot="boot-1", seq=seq, readings=[reading])
    )


def inbound(topic: str, payload: bytes, mid: int = 1) -> Inbound:
    return Inbound(topic, payload, received_at=1.0, qos=1, mid=mid)


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (f"{PREFIX}/r-1/telemetry", b"x" * 20_000, RejectReason.TOO_LARGE),
        (f"{PREFIX}/r-1/telemetry", b'{"v": 1, "robot": "\xff"}', RejectReason.BAD_UTF8),
        (f"{PREFIX}/r-1/telemetry", b"{not json", RejectReason.BAD_JSON),
        (f"{PREFIX}/r-1/telemetry", b'{"v": NaN}', RejectReason.NON_FINITE),
        (f"{PREFIX}/r-1/telemetry", b'{"a":' * 40 + b"1" + b"}" * 40, RejectReason.TOO_DEEP),
        (f"{PREFIX}/r-1/telemetry", b"[1, 2]", RejectReason.NOT_OBJECT),
        (f"{PREFIX}/r-1/telemetry", b'{"v": 2}', RejectReason.UNKNOWN_VERSION),
        (f"{PREFIX}/r-1/telemetry", b'{"v": 1, "robot": "r-1"}', RejectReason.INVALID),
        ("factory/PLANT/body-shop/line-1/r-1/telemetry", tele(), RejectReason.BAD_TOPIC),
        ("factory/plant-1/r-1/telemetry", tele(), RejectReason.BAD_TOPIC),
        (f"{PREFIX}/r-2/telemetry", tele("r-1"), RejectReason.ROBOT_MISMATCH),
    ],
)
def test_every_refusal_becomes_a_dead_letter_with_its_reason(
    topic: str, payload: bytes, reason: RejectReason
) -> None:
    verdict = classify(inbound(topic, payload))
    assert isinstance(verdict, Refused)
    assert verdict.reason == reason
    assert verdict.size == len(payload)
    assert verdict.payload == payload[:1024]


def test_commands_are_ignored_and_valid_messages_accepted() -> None:
    assert classify(inbound(f"{PREFIX}/r-1/cmd", b"anything")) is None
    verdict = classify(inbound(f"{PREFIX}/r-1/telemetry", tele()))
    assert isinstance(verdict, Accepted)
    assert verdict.topic.robot == "r-1"


def test_a_batch_sorts_into_new_duplicate_refused_and_ignored(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    try:
        pipeline = Pipeline(store)
        topic = f"{PREFIX}/r-1/telemetry"
        batch = [
            inbound(topic, tele(seq=1)),
            inbound(topic, tele(seq=1)),
            inbound(topic, b"{bad"),
            inbound(f"{PREFIX}/r-1/cmd", b"{}"),
            inbound(topic, tele(seq=2)),
        ]
        result = pipeline.write(batch)
        assert [m.payload.seq for m in result.new] == [1, 2]
        assert [m.payload.seq for m in result.duplicates] == [1]
        assert [r.reason for r in result.refused] == ["bad_json"]
        assert len(result.ignored) == 1
        assert store.reject_counts() == {"bad_json": 1}
    finally:
        store.close()


def test_a_time_the_clock_guard_refuses_is_a_dead_letter_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "f.db")
    try:
        pipeline = Pipeline(store, ClockGuard(ClockRule(hold_s=0.0)))  # refused, not held first
        topic = f"{PREFIX}/r-1/telemetry"
        ahead = Reading(ts=T0 + 365 * 86400.0, temperature_c=40.0)
        poisoned = Telemetry(v=1, robot="r-1", ts=ahead.ts, boot="boot-1", seq=5, readings=[ahead])
        batch = [inbound(topic, tele(seq=1)), inbound(topic, encode(poisoned))]
        result = pipeline.write(batch)
        assert [m.payload.seq for m in result.new] == [1]
        assert result.rejections() == {1: "clock"}  # what the inspector stream shows
        assert "ahead of the fleet's clock" in result.refused[0].detail
        assert store.reject_counts() == {"clock": 1}
        assert store.clock() == T0 + 1
        assert store.dead_letters(1)[0].reason == "clock"
    finally:
        store.close()


class _Poisoned(SqliteStore):
    """A real store that cannot take one particular message (as a driver bug might)."""

    def write(self, accepted: Any, refused: Any) -> Any:
        if any(m.payload.seq == 13 for m in accepted):
            raise TypeError("cannot bind parameter")
        return super().write(accepted, refused)


def test_one_message_the_store_cannot_take_costs_only_that_message(tmp_path: Path) -> None:
    store = _Poisoned(tmp_path / "f.db")
    try:
        topic = f"{PREFIX}/r-1/telemetry"
        result = Pipeline(store).write_each([inbound(topic, tele(seq=s)) for s in (12, 13, 14)])
        assert [m.payload.seq for m in result.new] == [12, 14]
        assert [r.reason for r in result.refused] == [INTERNAL_ERROR]
        assert store.reject_counts() == {INTERNAL_ERROR: 1}
    finally:
        store.close()


def test_the_inbox_hands_out_batches_and_counts_what_did_not_fit() -> None:
    async def scenario() -> tuple[list[int], list[int], int, bool, bool]:
        inbox = Inbox(max_messages=7)
        inbox.put_all(inbound("t", b"", mid) for mid in range(9))
        first = await inbox.take_batch(5, 0.0)
        second = await inbox.take_batch(5, 0.0)
        return (
            [m.mid for m in first],
            [m.mid for m in second],
            inbox.overflow_total,
            inbox.take_overflow(),
            inbox.take_overflow(),
        )

    assert asyncio.run(scenario()) == ([0, 1, 2, 3, 4], [5, 6], 2, True, False)


class _Flaky(SqliteStore):
    """A real store that is unavailable for its first ``failures`` writes, then gated."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures
        self.committed = threading.Event()

    def write(self, accepted: Any, refused: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("locked (test)")
        result = super().write(accepted, refused)
        self.committed.set()
        return result


def test_consumer_acknowledges_only_after_commit_and_retries_when_unavailable(
    tmp_path: Path,
) -> None:
    store = _Flaky(tmp_path / "f.db", failures=2)
    events: list[str] = []

    async def scenario() -> None:
        live = LiveState()
        inbox = Inbox(100)
        metrics = Metrics(live, inbox)
        hub = StreamHub(10)
        subscription = hub.subscribe(StreamFilter())

        def ack(messages: Any) -> None:
            events.append(f"ack committed={store.committed.is_set()} n={len(list(messages))}")

        consumer = Consumer(
            inbox, Pipeline(store), live, hub, metrics, ack, max_messages=10, max_wait_s=0.0
        )
        task = asyncio.create_task(consumer.run())
        inbox.put_all([inbound(f"{PREFIX}/r-1/telemetry", tele(seq=1))])
        state = State(v=1, robot="r-1", ts=T0 + 2, boot="boot-1", seq=2, state="IDLE", since=T0)
        inbox.put_all([inbound(f"{PREFIX}/r-1/state", encode(state))])
        first = await asyncio.wait_for(subscription.queue.get(), 5.0)
        assert await consumer.drain(5.0)
        events.append(f"streamed {getattr(first, 'channel', first)}")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert live.robots["r-1"].state == "IDLE"
        assert live.clock == T0 + 2
        assert metrics.registry.get_sample_value("factory_store_errors_total") == 2
        assert live.store_problem is None

    try:
        asyncio.run(scenario())
    finally:
        store.close()
    assert events == ["ack committed=True n=2", "streamed telemetry"]
