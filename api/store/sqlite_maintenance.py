"""The SQLite store's maintenance tables: work orders, their transitions, alarms; and the replay.

``work_orders`` holds each order's latest record (the JSON of
:class:`~api.records.maintenance.WorkOrder`, which the engine can be restored from) with the
columns the list filters on; ``work_order_transitions`` is the append-only log of every lifecycle
step and its reason. ``alarms`` holds every alarm, active or cleared; the oldest cleared ones are
trimmed past a bound (those cleared longest ago go first).
:meth:`MaintenanceTables.recent_history` reads back what the engine needs to warm up after a
restart. A mixin of :class:`~api.store.sqlite.SqliteStore`: it uses that class's writer
connection, write lock and per-thread readers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from api.records.maintenance import Alarm, WorkOrder
from api.store import HistoryRow, StoreUnavailable
from api.store.sqlite_schema import METRIC_COLUMNS

MAINTENANCE_SCHEMA = """
CREATE TABLE IF NOT EXISTS work_orders (
    id TEXT PRIMARY KEY, robot TEXT NOT NULL, component TEXT NOT NULL, status TEXT NOT NULL,
    active INTEGER NOT NULL, created_ts REAL NOT NULL, updated_ts REAL NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS work_orders_created ON work_orders (created_ts);
CREATE TABLE IF NOT EXISTS work_order_transitions (
    work_order TEXT NOT NULL, idx INTEGER NOT NULL, ts REAL NOT NULL, from_status TEXT,
    status TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (work_order, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alarms (
    id TEXT PRIMARY KEY, robot TEXT NOT NULL, component TEXT, signal TEXT NOT NULL,
    severity TEXT NOT NULL, limit_name TEXT NOT NULL, value REAL NOT NULL, message TEXT NOT NULL,
    raised_ts REAL NOT NULL, cleared_ts REAL, cleared_reason TEXT
);
CREATE INDEX IF NOT EXISTS alarms_raised ON alarms (raised_ts);
"""
#: Alarm fields in column order (``limit`` is a keyword in SQL: its column is ``limit_name``).
_ALARM_FIELDS = tuple(Alarm.model_fields)
_ALARM_COLUMNS = ", ".join("limit_name" if f == "limit" else f for f in _ALARM_FIELDS)


class MaintenanceTables:
    """Work orders and alarms on the SQLite store (see the module docstring)."""

    path: Any
    _writer: sqlite3.Connection
    _write_lock: threading.Lock
    _reader: Callable[[], sqlite3.Connection]
    _alarm_history_max_rows: int

    def save_maintenance(self, work_orders: Sequence[WorkOrder], alarms: Sequence[Alarm]) -> None:
        with self._write_lock:
            conn = self._writer
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT OR REPLACE INTO work_orders "
                    "(id, robot, component, status, active, created_ts, updated_ts, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [_work_order_row(w) for w in work_orders],
                )
                conn.executemany(
                    "INSERT OR IGNORE INTO work_order_transitions "
                    "(work_order, idx, ts, from_status, status, reason) VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (w.id, idx, t.ts, t.from_status, t.status, t.reason)
                        for w in work_orders
                        for idx, t in enumerate(w.history)
                    ],
                )
                conn.executemany(
                    f"INSERT OR REPLACE INTO alarms ({_ALARM_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [tuple(getattr(a, f) for f in _ALARM_FIELDS) for a in alarms],
                )
                if any(a.cleared_ts is not None for a in alarms):
                    conn.execute(
                        "DELETE FROM alarms WHERE id IN (SELECT id FROM alarms "
                        "WHERE cleared_ts IS NOT NULL ORDER BY cleared_ts DESC LIMIT -1 OFFSET ?)",
                        (self._alarm_history_max_rows,),
                    )
                conn.execute("COMMIT")
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError):
                    raise StoreUnavailable(f"{self.path}: {exc}") from exc
                raise

    def work_orders(
        self,
        robot: str | None = None,
        status: str | None = None,
        active: bool | None = None,
        limit: int | None = None,
    ) -> list[WorkOrder]:
        where, args = _filters(robot=robot, status=status, active=active)
        rows = self._reader().execute(
            f"SELECT body FROM work_orders {where} ORDER BY created_ts DESC, id DESC LIMIT ?",
            (*args, -1 if limit is None else limit),
        )
        return [WorkOrder.model_validate_json(body) for (body,) in rows]

    def work_order(self, work_order_id: str) -> WorkOrder | None:
        row = (
            self._reader()
            .execute("SELECT body FROM work_orders WHERE id = ?", (work_order_id,))
            .fetchone()
        )
        return None if row is None else WorkOrder.model_validate_json(row[0])

    def alarms(
        self, active: bool | None = None, robot: str | None = None, limit: int | None = None
    ) -> list[Alarm]:
        clauses, args = [], []
        if active is not None:
            clauses.append("cleared_ts IS NULL" if active else "cleared_ts IS NOT NULL")
        if robot is not None:
            clauses.append("robot = ?")
            args.append(robot)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._reader().execute(
            f"SELECT {_ALARM_COLUMNS} FROM alarms {where} ORDER BY raised_ts DESC, id DESC LIMIT ?",
            (*args, -1 if limit is None else limit),
        )
        return [Alarm.model_validate(dict(zip(_ALARM_FIELDS, row, strict=True))) for row in rows]

    def recent_history(self, robot: str, since_ts: float, max_rows: int) -> list[HistoryRow]:
        """A robot's readings and events from ``since_ts`` on, at most ``max_rows`` of the
        newest readings, in time order (events before readings at the same time)."""
        conn = self._reader()
        readings = conn.execute(
            f"SELECT ts, {', '.join(METRIC_COLUMNS)} FROM telemetry WHERE robot = ? AND ts >= ? "
            "ORDER BY ts DESC LIMIT ?",
            (robot, since_ts, max_rows),
        ).fetchall()
        first_ts = readings[-1][0] if len(readings) == max_rows else since_ts
        events = conn.execute(
            "SELECT ts, body FROM events WHERE robot = ? AND ts >= ? ORDER BY ts",
            (robot, first_ts),
        ).fetchall()
        rows = [HistoryRow(ts, "event", orjson.loads(body)) for ts, body in events]
        for ts, *values in reversed(readings):
            present = {m: v for m, v in zip(METRIC_COLUMNS, values, strict=True) if v is not None}
            rows.append(HistoryRow(ts, "reading", present))
        rows.sort(key=lambda r: (r.ts, r.kind == "reading"))
        return rows


def _work_order_row(w: WorkOrder) -> tuple[Any, ...]:
    return (
        w.id,
        w.robot,
        w.component,
        w.status,
        w.active,
        w.created_ts,
        w.updated_ts,
        w.model_dump_json(),
    )


def _filters(**values: Any) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column, value in values.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args
