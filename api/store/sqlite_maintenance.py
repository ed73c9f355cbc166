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

from api.records.maintenance import Alarm, WorkOrder
from api.store import StoreUnavailable
from api.store.reads import ALARM_COLUMNS, ALARM_FIELDS

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
                    [work_order_row(w) for w in work_orders],
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
                    f"INSERT OR REPLACE INTO alarms ({ALARM_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [tuple(getattr(a, f) for f in ALARM_FIELDS) for a in alarms],
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


def work_order_row(w: WorkOrder) -> tuple[Any, ...]:
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
