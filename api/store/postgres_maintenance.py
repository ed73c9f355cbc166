"""The PostgreSQL store's maintenance tables: work orders, their transitions, alarms; the replay.

The same tables and rules as :mod:`api.store.sqlite_maintenance` (the tables themselves are
created by :mod:`api.store.postgres_schema`). A mixin of :class:`~api.store.postgres.PostgresStore`:
it uses that class's writer connection, write lock and per-thread readers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from api.records.maintenance import Alarm, WorkOrder
from api.store import StoreUnavailable
from api.store.reads import ALARM_COLUMNS, ALARM_FIELDS
from api.store.sqlite_maintenance import work_order_row

_ALARM_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in ALARM_COLUMNS.split(", ") if c != "id")


class PostgresMaintenance:
    """Work orders and alarms on the PostgreSQL store (see the module docstring)."""

    path: str
    _write_lock: threading.Lock
    _reader: Callable[[], psycopg.Connection[Any]]
    _write_connection: Callable[[], psycopg.Connection[Any]]
    _alarm_history_max_rows: int

    def save_maintenance(self, work_orders: Sequence[WorkOrder], alarms: Sequence[Alarm]) -> None:
        with self._write_lock:
            try:
                conn = self._write_connection()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO work_orders "
                        "(id, robot, component, status, active, created_ts, updated_ts, body) "
                        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
                        "robot = excluded.robot, component = excluded.component, "
                        "status = excluded.status, active = excluded.active, "
                        "created_ts = excluded.created_ts, updated_ts = excluded.updated_ts, "
                        "body = excluded.body",
                        [work_order_row(w) for w in work_orders],
                    )
                    cur.executemany(
                        "INSERT INTO work_order_transitions "
                        "(work_order, idx, ts, from_status, status, reason) "
                        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [
                            (w.id, idx, t.ts, t.from_status, t.status, t.reason)
                            for w in work_orders
                            for idx, t in enumerate(w.history)
                        ],
                    )
                    cur.executemany(
                        f"INSERT INTO alarms ({ALARM_COLUMNS}) VALUES "
                        f"({', '.join(['%s'] * len(ALARM_FIELDS))}) "
                        f"ON CONFLICT (id) DO UPDATE SET {_ALARM_UPDATES}",
                        [tuple(getattr(a, f) for f in ALARM_FIELDS) for a in alarms],
                    )
                    if any(a.cleared_ts is not None for a in alarms):
                        cur.execute(
                            "DELETE FROM alarms WHERE id IN (SELECT id FROM alarms "
                            "WHERE cleared_ts IS NOT NULL ORDER BY cleared_ts DESC OFFSET %s)",
                            (self._alarm_history_max_rows,),
                        )
            except (psycopg.OperationalError, psycopg.errors.DeadlockDetected) as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc
