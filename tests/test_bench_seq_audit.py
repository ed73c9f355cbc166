"""The scale benches' lost/duplicated counting (``bench/seq_audit.py``), on a real SQLite store.

The benches time things; this checks only what they count, which needs no timing: a reading
published and not stored is lost, a number the observer never saw is unseen, a row stored twice
is duplicated, and a store written by :class:`~api.store.sqlite.SqliteStore` is read back right.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

from api.store import Accepted
from api.store.sqlite import SqliteStore
from contract.payloads import Reading, Telemetry
from contract.topics import Channel, Topic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from seq_audit import audit, duplicated_rows, percentile, stored_keys


def test_counts_lost_unseen_and_extra() -> None:
    published = {
        ("r1", "b"): {1: "birth", 2: "state", 3: "telemetry", 4: "telemetry", 6: "event"},
        ("r2", "b"): {1: "birth", 2: "telemetry"},
    }
    stored = [("r1", "b", 3), ("r1", "b", 6), ("r2", "b", 2), ("r9", "b", 1)]
    assert audit(published, stored, duplicated_rows=2) == {
        "published_messages": 7,
        "stored_channel_messages": 4,
        "unseen": 1,  # r1's seq 5 never reached the observer
        "lost": 1,  # r1's seq 4
        "extra": 1,  # nobody published r9's
        "duplicated": 2,
    }


def test_nothing_lost_when_all_is_stored() -> None:
    published = {("r", "b"): dict.fromkeys(range(1, 11), "telemetry")}
    result = audit(published, [("r", "b", s) for s in range(1, 11)], 0)
    assert (result["lost"], result["unseen"], result["extra"]) == (0, 0, 0)


def telemetry(robot: str, seq: int) -> Accepted:
    ts = 1_767_592_800.0 + seq
    readings = [Reading(ts=ts + i / 10, temperature_c=40.0) for i in range(3)]
    payload = Telemetry(v=1, robot=robot, ts=ts, boot="boot-1", seq=seq, readings=readings)
    return Accepted(Topic("s", "a", "l", robot, Channel.TELEMETRY), payload, time.time())


def test_reads_keys_and_duplicates_from_a_real_store(tmp_path: Path) -> None:
    db = tmp_path / "audit.db"
    store = SqliteStore(db)
    store.write([telemetry("r", seq) for seq in (1, 2, 3)], [])
    store.write([telemetry("r", 2)], [])  # a replay: the store dedupes it
    store.close()
    with sqlite3.connect(db) as conn:
        assert sorted(stored_keys(conn)) == [("r", "boot-1", seq) for seq in (1, 2, 3)]
        assert duplicated_rows(conn) == 0
    # The stores' own keys forbid a duplicate; a table without them shows the count works.
    bare = sqlite3.connect(":memory:")
    bare.execute("CREATE TABLE telemetry (robot, boot, seq, idx)")
    rows = [("r", "boot-1", 1, 0), ("r", "boot-1", 1, 1), ("r", "boot-1", 1, 0)]
    bare.executemany("INSERT INTO telemetry VALUES (?, ?, ?, ?)", [*rows, rows[0]])
    assert duplicated_rows(bare) == 2


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 51.0
    assert percentile(values, 0.99) == 100.0
    assert percentile([], 0.5) is None
