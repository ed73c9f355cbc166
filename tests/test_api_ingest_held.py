"""Messages ahead of the fleet's clock are held, not refused, until another robot confirms
their time (api/ingest/held.py): the pipeline on a real SQLite file, the consumer on an event
loop, no broker."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.inbound import Inbound
from api.ingest.clock_guard import ClockGuard, ClockRule
from api.ingest.consumer import Consumer
from api.ingest.inbox import Inbox
from api.ingest.metrics import Metrics
from api.ingest.pipeline import Pipeline
from api.live import LiveState
from api.store import StoreUnavailable
from api.store.sqlite import SqliteStore
from api.stream import StreamHub
from contract.codec import encode
from contract.payloads import Reading, Telemetry

T0 = 1_767_592_800.0
YEAR_S = 365 * 86400.0
PREFIX = "factory/plant-1/body-shop/line-1"
#: Lead: 300 s (the floor; no sample interval known, no pace measured on a still wall clock).
RULE = ClockRule(hold_s=30.0, hold_max=100)


class Wall:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def message(robot: str, seq: int, ts: float) -> Inbound:
    payload = Telemetry(
        v=1,
        robot=robot,
        ts=ts,
        boot="boot-1",
        seq=seq,
        readings=[Reading(ts=ts, temperature_c=40.0)],
    )
    return Inbound(f"{PREFIX}/{robot}/telemetry", encode(payload), received_at=1.0, qos=1, mid=seq)


def stored(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as con:
        return [(r, int(s)) for r, s in con.execute("SELECT robot, seq FROM telemetry ORDER BY ts")]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "f.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(db)
    yield store
    store.close()


def pipeline(store: SqliteStore, rule: ClockRule = RULE) -> tuple[Pipeline, Wall]:
    wall = Wall()
    guard = ClockGuard(rule)
    guard.wall = wall
    return Pipeline(store, guard), wall


def test_a_robot_ahead_of_the_others_is_held_and_lands_in_order_once_they_catch_up(
    store: SqliteStore, db: Path
) -> None:
    p, _ = pipeline(store)
    p.write([message("a", 1, T0), message("b", 1, T0)])
    # a's burst arrives first (its own in-flight window), 2,000 s past b: beyond the 300 s lead.
    burst = [message("a", seq, T0 + ts) for seq, ts in ((2, 200.0), (3, 1000.0), (4, 2000.0))]
    first = p.write(burst)
    assert first.held == 2
    assert first.decided == [burst[0]]  # within the lead: stored; the rest are not acknowledged
    assert first.refused == []
    assert stored(db) == [("a", 1), ("b", 1), ("a", 2)]
    # b catches up (held too at first: a's claim, not a's stored time, is its reference); each
    # confirms the other, and a's land in a's order.
    catching_up = message("b", 2, T0 + 2000.0)
    second = p.write([catching_up])
    assert second.held == 0
    assert sorted(second.decided, key=lambda m: (m.topic, m.mid)) == [*burst[1:], catching_up]
    a_landed = [m.payload.seq for m in second.new if m.payload.robot == "a"]
    assert a_landed == [3, 4]
    assert store.reject_counts() == {}
    assert sorted(stored(db)) == [("a", 1), ("a", 2), ("a", 3), ("a", 4), ("b", 1), ("b", 2)]


def test_a_time_no_other_robot_confirms_is_refused_after_the_hold_and_never_moves_the_clock(
    store: SqliteStore,
) -> None:
    p, wall = pipeline(store)
    p.write([message("a", 1, T0), message("b", 1, T0)])
    poisoned = message("a", 2, T0 + YEAR_S)
    assert p.write([poisoned]).held == 1
    later = message("a", 3, T0 + 60.0)  # a genuine one, after it: not held back by it
    landed = p.write([later])
    assert (landed.held, landed.decided) == (1, [later])
    assert p.hold_deadline() == wall.now + RULE.hold_s
    wall.now += RULE.hold_s - 1.0
    assert p.write([]).held == 1  # not yet
    wall.now += 1.0
    decided = p.write([])
    assert decided.held == 0
    assert decided.decided == [poisoned]
    assert decided.rejections() == {0: "clock"}
    assert "held 30.0 s, no other robot confirmed it" in decided.refused[0].detail
    assert store.clock() == T0 + 60.0
    assert p.hold_deadline() is None


def test_past_the_most_held_the_longest_held_is_refused_first(store: SqliteStore) -> None:
    p, wall = pipeline(store, ClockRule(hold_s=30.0, hold_max=2))
    p.write([message("a", 1, T0), message("b", 1, T0)])
    for seq in (2, 3):
        p.write([message("a", seq, T0 + YEAR_S + seq)])
        wall.now += 1.0
    result = p.write([message("a", 4, T0 + YEAR_S + 4)])
    assert result.held == 2
    assert [r.detail.startswith("held 2.0 s") for r in result.refused] == [True]
    assert "more than 2 messages were held" in result.refused[0].detail
    assert [w.accepted.payload.seq for w in p.held] == [3, 4]


class _AwayOnce(SqliteStore):
    """A real store that is unavailable for exactly one commit."""

    away = False

    def write(self, accepted: Any, refused: Any) -> Any:
        if self.away:
            self.away = False
            raise StoreUnavailable("database is locked")
        return super().write(accepted, refused)


def test_a_batch_the_store_cannot_take_leaves_the_held_messages_as_they_were(db: Path) -> None:
    store = _AwayOnce(db)
    try:
        p, _ = pipeline(store)
        p.write([message("a", 1, T0), message("b", 1, T0)])
        p.write([message("a", 2, T0 + 2000.0)])
        confirming = [message("b", 2, T0 + 2000.0)]
        store.away = True
        with pytest.raises(StoreUnavailable):
            p.write(confirming)
        assert len(p.held) == 1  # the release was not committed: still held, not lost
        retried = p.write(confirming)  # the consumer's retry
        assert [(m.payload.robot, m.payload.seq) for m in retried.new] == [("b", 2), ("a", 2)]
        assert len(p.held) == 0
    finally:
        store.close()


def test_the_consumer_acknowledges_a_held_message_only_once_decided_even_if_nothing_else_comes(
    store: SqliteStore,
) -> None:
    acked: list[int] = []

    async def scenario() -> None:
        live = LiveState()
        inbox = Inbox(100)
        metrics = Metrics(live, inbox)
        guard = ClockGuard(ClockRule(hold_s=0.3, hold_max=100))
        consumer = Consumer(
            inbox,
            Pipeline(store, guard),
            live,
            StreamHub(10),
            metrics,
            lambda messages: acked.extend(m.mid for m in messages),
            max_messages=10,
            max_wait_s=0.0,
        )
        task = asyncio.create_task(consumer.run())
        try:
            inbox.put_all([message("a", 1, T0), message("b", 2, T0)])
            inbox.put_all([message("a", 3, T0 + YEAR_S)])
            deadline = time.monotonic() + 10.0
            while metrics.registry.get_sample_value("factory_ingest_held") != 1:
                assert time.monotonic() < deadline, "the message was never held"
                await asyncio.sleep(0.01)
            assert sorted(acked) == [1, 2]  # the held one is the broker's to keep meanwhile
            # Nothing else comes: the consumer wakes by the deadline and refuses it.
            while 3 not in acked:
                assert time.monotonic() < deadline, "the held message was never decided"
                await asyncio.sleep(0.01)
            assert metrics.registry.get_sample_value("factory_ingest_held") == 0
            assert store.reject_counts() == {"clock": 1}
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
