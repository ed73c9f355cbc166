"""The embedded store: one SQLite file in WAL mode, written in batches by a single writer.

One transaction per batch (``BEGIN IMMEDIATE`` … ``COMMIT``) keeps ingest cheap; WAL lets the
routes read from their own connections (one per thread) while the writer commits. Duplicates are
stopped by UNIQUE keys on ``(robot, boot, seq)`` with ``INSERT OR IGNORE``; the row count of the
insert tells a new message from a duplicate. A telemetry message's key goes into
``telemetry_messages`` and, only if new, its readings into ``telemetry``, which is clustered by
``(robot, ts)`` so a history query is one sequential range scan (and a reading costs one B-tree
insert, not two).
"""

from __future__ import annotations

import functools
import operator
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from api.store import (
    Accepted,
    Outcome,
    Refused,
    StoreUnavailable,
    supersedes,
)
from api.store.dialect import SQLITE
from api.store.reads import StoreReads
from api.store.sqlite_clock import recent_pace, repair_robot_clock
from api.store.sqlite_maintenance import MAINTENANCE_SCHEMA, MaintenanceTables
from api.store.sqlite_schema import (
    INSERT_MESSAGE,
    INSERT_READING,
    METRIC_COLUMNS,
    SCHEMA,
)
from contract.payloads import Birth, Reading, State, Telemetry
from contract.topics import Channel

BUSY_TIMEOUT_MS = 10_000
_METRIC_VALUES = operator.attrgetter(*METRIC_COLUMNS)
_TS = operator.attrgetter("ts")
#: Columns of a ``telemetry`` row, in ``INSERT_READING``'s order.
_READING_COLUMNS = INSERT_READING.count("?")
#: Readings per multi-row INSERT (1,000 parameters, well under SQLite's 32,766).
READINGS_PER_INSERT = 100


class SqliteStore(MaintenanceTables, StoreReads):
    """:class:`api.store.Store` on a SQLite file (work orders and alarms:
    :class:`~api.store.sqlite_maintenance.MaintenanceTables`; the reads:
    :class:`~api.store.reads.StoreReads`)."""

    dialect = SQLITE

    def __init__(
        self,
        path: Path,
        *,
        dead_letter_max_rows: int = 10_000,
        alarm_history_max_rows: int = 10_000,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._dead_letter_max_rows = dead_letter_max_rows
        self._alarm_history_max_rows = alarm_history_max_rows
        self._writer = self._connect()
        self._writer.executescript(SCHEMA + MAINTENANCE_SCHEMA)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit; check_same_thread=False because the
        # writer runs in worker threads (one at a time) and close() may run on another.
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1e3
        )
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a power cut can lose the last commits, never corrupt the file.
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        with self._write_lock:
            self._writer.close()

    # --- writing -------------------------------------------------------------------------------

    def write(self, accepted: Sequence[Accepted], refused: Sequence[Refused]) -> list[Outcome]:
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                self._touch_robots(conn, accepted)
                readings: list[Any] = []
                outcomes = [self._write_one(conn, message, readings) for message in accepted]
                _insert_readings(conn, readings)
                if refused:
                    self._write_refused(conn, refused)
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreUnavailable(f"{self.path}: {exc}") from exc
                raise
        return outcomes

    @staticmethod
    def _touch_robots(conn: sqlite3.Connection, accepted: Sequence[Accepted]) -> None:
        """Create robots first heard of; advance last seen and the latest reading."""
        seen: dict[str, Accepted] = {}
        newest: dict[str, Reading] = {}
        for message in accepted:
            robot = message.payload.robot
            held = seen.get(robot)
            if held is None or message.payload.ts >= held.payload.ts:
                seen[robot] = message
            if isinstance(message.payload, Telemetry):
                reading = max(message.payload.readings, key=_TS)
                if robot not in newest or reading.ts >= newest[robot].ts:
                    newest[robot] = reading
        conn.executemany(
            "INSERT INTO robots (robot, site, area, line, last_seen, last_received_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (robot) DO UPDATE SET "
            "site = excluded.site, area = excluded.area, line = excluded.line, "
            "last_seen = max(coalesce(last_seen, excluded.last_seen), excluded.last_seen), "
            "last_received_at = excluded.last_received_at",
            [
                (r, m.topic.site, m.topic.area, m.topic.line, m.payload.ts, m.received_at)
                for r, m in seen.items()
            ],
        )
        conn.executemany(
            "UPDATE robots SET latest_ts = ?, latest = ? "
            "WHERE robot = ? AND (latest_ts IS NULL OR latest_ts <= ?)",
            [(r.ts, orjson.dumps(r.values()), robot, r.ts) for robot, r in newest.items()],
        )

    def _write_one(
        self, conn: sqlite3.Connection, message: Accepted, readings: list[Any]
    ) -> Outcome:
        """Write one message; a new telemetry message's readings are added to ``readings`` as
        flat column values (inserted together, once per batch: :func:`_insert_readings`)."""
        payload = message.payload
        channel = message.topic.channel
        if isinstance(payload, Telemetry):
            key = (payload.robot, payload.boot, payload.seq, payload.ts)
            if conn.execute(INSERT_MESSAGE, key).rowcount == 0:
                return Outcome.DUPLICATE
            _add_readings(readings, payload)
            return Outcome.NEW
        if isinstance(payload, Birth):
            return self._replace_latest(conn, "birth", payload.boot, payload.seq, payload)
        if isinstance(payload, State):
            return self._replace_latest(conn, "state", payload.boot, payload.seq, payload)
        body = orjson.dumps(payload.model_dump(exclude_none=True)).decode()
        key = (payload.robot, payload.boot, payload.seq, payload.ts)
        if channel is Channel.EVENT:
            kind: str = getattr(payload, "kind", "")
            cursor = conn.execute(
                "INSERT OR IGNORE INTO events (robot, boot, seq, ts, kind, body, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*key, kind, body, message.received_at),
            )
        else:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO truth (robot, boot, seq, ts, body) VALUES (?, ?, ?, ?, ?)",
                (*key, body),
            )
        return Outcome.NEW if cursor.rowcount else Outcome.DUPLICATE

    @staticmethod
    def _replace_latest(
        conn: sqlite3.Connection, what: str, boot: str, seq: int, payload: Birth | State
    ) -> Outcome:
        row = conn.execute(
            f"SELECT {what}_boot, {what}_seq FROM robots WHERE robot = ?", (payload.robot,)
        ).fetchone()
        held = None if row is None or row[0] is None else (row[0], row[1])
        outcome = supersedes(held, (boot, seq))
        if outcome is not Outcome.NEW:
            return outcome
        if isinstance(payload, Birth):
            conn.execute(
                "UPDATE robots SET kind = ?, model = ?, birth = ?, birth_boot = ?, birth_seq = ? "
                "WHERE robot = ?",
                (
                    payload.kind,
                    payload.model,
                    orjson.dumps(payload.model_dump()).decode(),
                    boot,
                    seq,
                    payload.robot,
                ),
            )
        else:
            conn.execute(
                "UPDATE robots SET state = ?, state_since = ?, state_reason = ?, state_boot = ?, "
                "state_seq = ? WHERE robot = ?",
                (payload.state, payload.since, payload.reason, boot, seq, payload.robot),
            )
        return outcome

    def _write_refused(self, conn: sqlite3.Connection, refused: Sequence[Refused]) -> None:
        conn.executemany(
            "INSERT INTO dead_letters (received_at, topic, reason, detail, size, payload) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(r.received_at, r.topic, r.reason, r.detail, r.size, r.payload) for r in refused],
        )
        counts: dict[str, int] = {}
        for r in refused:
            counts[r.reason] = counts.get(r.reason, 0) + 1
        conn.executemany(
            "INSERT INTO reject_counts (reason, count) VALUES (?, ?) "
            "ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count",
            counts.items(),
        )
        conn.execute(
            "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - ?",
            (self._dead_letter_max_rows,),
        )

    def recent_pace(self) -> float | None:
        return recent_pace(self._reader())

    def repair_clock(self, robot: str, bound_ts: float) -> int:
        with self._write_lock:
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                dropped = repair_robot_clock(conn, robot, bound_ts)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return dropped


def _add_readings(values: list[Any], payload: Telemetry) -> None:
    """Append the ``telemetry`` rows of a message's readings to ``values``, column after column.

    Flat, because :func:`_insert_readings` binds many rows to one statement (and a tuple per
    reading kept alive until the commit only fed the garbage collector)."""
    robot, boot, seq, historical = payload.robot, payload.boot, payload.seq, payload.historical
    for idx, reading in enumerate(payload.readings):
        values += (robot, reading.ts, boot, seq, idx, historical, *_METRIC_VALUES(reading))


def _insert_readings(conn: sqlite3.Connection, values: Sequence[Any]) -> None:
    """Insert rows given as flat column values, ``READINGS_PER_INSERT`` rows per statement.

    One multi-row INSERT instead of ``executemany``'s statement per reading: SQLite is entered
    (and the GIL released for it) once per chunk rather than once per reading, which cut the
    cost of a stored reading by about a quarter."""
    chunk = READINGS_PER_INSERT * _READING_COLUMNS
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        conn.execute(_insert_rows(len(part) // _READING_COLUMNS), part)


@functools.cache
def _insert_rows(rows: int) -> str:
    """``INSERT_READING`` taking ``rows`` rows (at most ``READINGS_PER_INSERT`` distinct texts)."""
    head, values = INSERT_READING.split(" VALUES ")
    return f"{head} VALUES {', '.join([values] * rows)}"
