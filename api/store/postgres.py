"""The shared store: PostgreSQL, for several ingest workers and a larger plant.

The same :class:`api.store.Store` as the embedded SQLite file, on a server many ``factory serve``
processes can write at once. A batch is one transaction on the writer connection: robots are
touched first (in robot order, so concurrent workers lock rows in the same order and never
deadlock), then the batch's message identities go in with one multi-row
``INSERT … ON CONFLICT DO NOTHING RETURNING`` — the rows it returns are the new ones, whichever
worker got there first — and only the new messages' readings are copied in with ``COPY``.
Reads run on one autocommit connection per thread. A lost connection, a deadlock or a
serialization failure is :class:`~api.store.StoreUnavailable`: the consumer retries the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg
from psycopg import errors, sql

from api.store import (
    Accepted,
    Outcome,
    Refused,
    StoreUnavailable,
    supersedes,
)
from api.store.dialect import POSTGRES
from api.store.postgres_clock import recent_pace, repair_robot_clock
from api.store.postgres_maintenance import PostgresMaintenance
from api.store.postgres_schema import create_schema
from api.store.reads import StoreReads
from api.store.sqlite import _METRIC_VALUES, _TS
from api.store.sqlite_schema import METRIC_COLUMNS
from contract.payloads import Birth, Reading, State, Telemetry
from contract.topics import Channel

#: Failures worth retrying the batch for (the server or the network, not the data).
RETRYABLE = (
    psycopg.OperationalError,
    errors.DeadlockDetected,
    errors.SerializationFailure,
    errors.LockNotAvailable,
)
COPY_READINGS = (
    f"COPY telemetry (robot, ts, boot, seq, idx, historical, {', '.join(METRIC_COLUMNS)}) "
    "FROM STDIN"
)
Key = tuple[str, str, int]


class PostgresStore(PostgresMaintenance, StoreReads):
    """:class:`api.store.Store` on PostgreSQL (see the module docstring). ``schema``: a schema
    to create and use instead of the URL's default (tests give each test its own)."""

    dialect = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        dead_letter_max_rows: int = 10_000,
        alarm_history_max_rows: int = 10_000,
    ) -> None:
        self.url = url
        self.path = redacted(url)  # what errors name (the SQLite store names its file)
        self.schema = schema
        self._dead_letter_max_rows = dead_letter_max_rows
        self._alarm_history_max_rows = alarm_history_max_rows
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[psycopg.Connection[Any]] = []
        self._readers_lock = threading.Lock()
        try:
            self._writer = self._connect()
        except psycopg.Error as exc:
            raise StoreUnavailable(f"{self.path}: {exc}") from exc
        try:
            self.hypertable = create_schema(self._writer)
        except psycopg.Error as exc:
            self._writer.close()
            raise StoreUnavailable(f"{self.path}: {exc}") from exc

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        if self.schema is not None:
            name = sql.Identifier(self.schema)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
            conn.execute(sql.SQL("SET search_path TO {}").format(name))
        return conn

    def _reader(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _write_connection(self) -> psycopg.Connection[Any]:
        """The writer, reconnected if the server dropped it (a retried batch gets a new one)."""
        if self._writer.closed or self._writer.broken:
            self._writer = self._connect()
        return self._writer

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
            try:
                conn = self._write_connection()
                with conn.transaction():
                    outcomes = self._write_batch(conn, accepted)
                    if refused:
                        self._write_refused(conn, refused)
            except RETRYABLE as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc
        return outcomes

    def _write_batch(
        self, conn: psycopg.Connection[Any], accepted: Sequence[Accepted]
    ) -> list[Outcome]:
        _touch_robots(conn, accepted)
        # Identities of rows: the first of a batch's twins is the candidate, later ones are
        # duplicates; the database says which candidates are new.
        outcomes: list[Outcome | None] = [None] * len(accepted)
        candidates: dict[str, dict[Key, int]] = {"telemetry": {}, "event": {}, "truth": {}}
        for i, message in enumerate(accepted):
            payload = message.payload
            if isinstance(payload, Birth | State):
                outcomes[i] = _replace_latest(conn, payload)
                continue
            table = _row_table(message)
            key = (payload.robot, payload.boot, payload.seq)
            if key in candidates[table]:
                outcomes[i] = Outcome.DUPLICATE
            else:
                candidates[table][key] = i
        new = _insert_telemetry_keys(conn, accepted, candidates["telemetry"])
        new |= _insert_bodies(conn, accepted, candidates["event"], "event")
        new |= _insert_bodies(conn, accepted, candidates["truth"], "truth")
        readings = [p for i in sorted(new) if isinstance(p := accepted[i].payload, Telemetry)]
        if readings:
            _copy_readings(conn, readings)
        return [
            o if o is not None else (Outcome.NEW if i in new else Outcome.DUPLICATE)
            for i, o in enumerate(outcomes)
        ]

    def _write_refused(self, conn: psycopg.Connection[Any], refused: Sequence[Refused]) -> None:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO dead_letters (received_at, topic, reason, detail, size, payload) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                [(r.received_at, r.topic, r.reason, r.detail, r.size, r.payload) for r in refused],
            )
            counts: dict[str, int] = {}
            for r in refused:
                counts[r.reason] = counts.get(r.reason, 0) + 1
            cur.executemany(
                "INSERT INTO reject_counts (reason, count) VALUES (%s, %s) "
                "ON CONFLICT (reason) DO UPDATE SET count = reject_counts.count + excluded.count",
                sorted(counts.items()),
            )
        conn.execute(
            "DELETE FROM dead_letters WHERE id <= (SELECT max(id) FROM dead_letters) - %s",
            (self._dead_letter_max_rows,),
        )

    def recent_pace(self) -> float | None:
        return recent_pace(self._reader())

    def repair_clock(self, robot: str, bound_ts: float) -> int:
        with self._write_lock:
            try:
                conn = self._write_connection()
                with conn.transaction():
                    return repair_robot_clock(conn, robot, bound_ts)
            except RETRYABLE as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc


def _row_table(message: Accepted) -> str:
    if isinstance(message.payload, Telemetry):
        return "telemetry"
    return "event" if message.topic.channel is Channel.EVENT else "truth"


def _touch_robots(conn: psycopg.Connection[Any], accepted: Sequence[Accepted]) -> None:
    """Create robots first heard of; advance last seen and the latest reading (robot order)."""
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
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO robots (robot, site, area, line, last_seen, last_received_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (robot) DO UPDATE SET "
            "site = excluded.site, area = excluded.area, line = excluded.line, "
            "last_seen = greatest(robots.last_seen, excluded.last_seen), "
            "last_received_at = excluded.last_received_at",
            [
                (r, m.topic.site, m.topic.area, m.topic.line, m.payload.ts, m.received_at)
                for r, m in sorted(seen.items())
            ],
        )
        cur.executemany(
            "UPDATE robots SET latest_ts = %s, latest = %s "
            "WHERE robot = %s AND (latest_ts IS NULL OR latest_ts <= %s)",
            [
                (r.ts, orjson.dumps(r.values()).decode(), robot, r.ts)
                for robot, r in sorted(newest.items())
            ],
        )


def _replace_latest(conn: psycopg.Connection[Any], payload: Birth | State) -> Outcome:
    """A retained birth or state: replace the robot's if newer (its row is locked by
    :func:`_touch_robots` until the commit, so two workers cannot interleave here)."""
    what = "birth" if isinstance(payload, Birth) else "state"
    row = conn.execute(
        f"SELECT {what}_boot, {what}_seq FROM robots WHERE robot = %s", (payload.robot,)
    ).fetchone()
    held = None if row is None or row[0] is None else (row[0], int(row[1]))
    outcome = supersedes(held, (payload.boot, payload.seq))
    if outcome is not Outcome.NEW:
        return outcome
    if isinstance(payload, Birth):
        conn.execute(
            "UPDATE robots SET kind = %s, model = %s, birth = %s::jsonb, birth_boot = %s, "
            "birth_seq = %s WHERE robot = %s",
            (
                payload.kind,
                payload.model,
                orjson.dumps(payload.model_dump()).decode(),
                payload.boot,
                payload.seq,
                payload.robot,
            ),
        )
    else:
        conn.execute(
            "UPDATE robots SET state = %s, state_since = %s, state_reason = %s, state_boot = %s, "
            "state_seq = %s WHERE robot = %s",
            (
                payload.state,
                payload.since,
                payload.reason,
                payload.boot,
                payload.seq,
                payload.robot,
            ),
        )
    return outcome


def _insert_keys(
    conn: psycopg.Connection[Any], table: str, columns: str, rows: list[tuple[Any, ...]]
) -> set[Key]:
    """One multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (in key order, so two
    workers wait on each other instead of deadlocking); the keys it returns are new."""
    if not rows:
        return set()
    rows.sort(key=lambda r: (r[0], r[1], r[2]))
    width = len(rows[0])
    values = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(rows))
    cursor = conn.execute(
        f"INSERT INTO {table} ({columns}) VALUES {values} "
        "ON CONFLICT (robot, boot, seq) DO NOTHING RETURNING robot, boot, seq",
        [v for row in rows for v in row],
    )
    return {(robot, boot, int(seq)) for robot, boot, seq in cursor}


def _insert_telemetry_keys(
    conn: psycopg.Connection[Any], accepted: Sequence[Accepted], candidates: dict[Key, int]
) -> set[int]:
    rows = [(*key, accepted[i].payload.ts) for key, i in candidates.items()]
    new = _insert_keys(conn, "telemetry_messages", "robot, boot, seq, ts", rows)
    return {candidates[key] for key in new}


def _insert_bodies(
    conn: psycopg.Connection[Any],
    accepted: Sequence[Accepted],
    candidates: dict[Key, int],
    table: str,
) -> set[int]:
    rows: list[tuple[Any, ...]] = []
    for key, i in candidates.items():
        message = accepted[i]
        body = orjson.dumps(message.payload.model_dump(exclude_none=True)).decode()
        if table == "event":
            kind: str = getattr(message.payload, "kind", "")
            rows.append((*key, message.payload.ts, kind, body, message.received_at))
        else:
            rows.append((*key, message.payload.ts, body))
    if table == "event":
        new = _insert_keys(conn, "events", "robot, boot, seq, ts, kind, body, received_at", rows)
    else:
        new = _insert_keys(conn, "truth", "robot, boot, seq, ts, body", rows)
    return {candidates[key] for key in new}


def _copy_readings(conn: psycopg.Connection[Any], messages: Sequence[Telemetry]) -> None:
    """The new messages' readings, streamed in with one ``COPY``."""
    with conn.cursor() as cur, cur.copy(COPY_READINGS) as copy:
        for payload in messages:
            robot, boot, seq, historical = (
                payload.robot,
                payload.boot,
                payload.seq,
                payload.historical,
            )
            for idx, reading in enumerate(payload.readings):
                copy.write_row(
                    (robot, reading.ts, boot, seq, idx, historical, *_METRIC_VALUES(reading))
                )


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    user, host = info.get("user", ""), info.get("host", "")
    return f"postgresql://{user}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"
