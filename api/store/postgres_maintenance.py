"""The PostgreSQL store's maintenance tables: work orders, their transitions, alarms; the replay.

The same tables and rules as :mod:`api.store.sqlite_maintenance` (the tables themselves are
created by :mod:`api.store.postgres_schema`). A mixin of :class:`~api.store.postgres.PostgresStore`:
it uses that class's writer connection, write lock and per-thread readers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import psycopg

from api.records.maintenance import Alarm, WorkOrder
from api.store import HistoryRow, StoreUnavailable
from api.store.sqlite_maintenance import _ALARM_COLUMNS, _ALARM_FIELDS, _work_order_row
from api.store.sqlite_schema import METRIC_COLUMNS

_ALARM_UPDATES = ", ".join(f"{c} = excluded.{c}" for c in _ALARM_COLUMNS.split(", ") if c != "id")


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
                        [_work_order_row(w) for w in work_orders],
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
                        f"INSERT INTO alarms ({_ALARM_COLUMNS}) VALUES "
                        f"({', '.join(['%s'] * len(_ALARM_FIELDS))}) "
                        f"ON CONFLICT (id) DO UPDATE SET {_ALARM_UPDATES}",
                        [tuple(getattr(a, f) for f in _ALARM_FIELDS) for a in alarms],
                    )
                    if any(a.cleared_ts is not None for a in alarms):
                        cur.execute(
                            "DELETE FROM alarms WHERE id IN (SELECT id FROM alarms "
                            "WHERE cleared_ts IS NOT NULL ORDER BY cleared_ts DESC OFFSET %s)",
                            (self._alarm_history_max_rows,),
                        )
            except (psycopg.OperationalError, psycopg.errors.DeadlockDetected) as exc:
                raise StoreUnavailable(f"{self.path}: {exc}") from exc

    def work_orders(
        self,
        robot: str | None = None,
        status: str | None = None,
        active: bool | None = None,
        limit: int | None = None,
    ) -> list[WorkOrder]:
        where, args = _filters(robot=robot, status=status, active=active)
        rows = self._reader().execute(
            f"SELECT body FROM work_orders {where} ORDER BY created_ts DESC, id DESC LIMIT %s",
            (*args, limit),
        )
        return [WorkOrder.model_validate_json(body) for (body,) in rows]

    def work_order(self, work_order_id: str) -> WorkOrder | None:
        row = (
            self._reader()
            .execute("SELECT body FROM work_orders WHERE id = %s", (work_order_id,))
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
            clauses.append("robot = %s")
            args.append(robot)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._reader().execute(
            f"SELECT {_ALARM_COLUMNS} FROM alarms {where} "
            "ORDER BY raised_ts DESC, id DESC LIMIT %s",
            (*args, limit),
        )
        return [Alarm.model_validate(dict(zip(_ALARM_FIELDS, row, strict=True))) for row in rows]

    def recent_history(self, robot: str, since_ts: float, max_rows: int) -> list[HistoryRow]:
        """A robot's readings and events from ``since_ts`` on, at most ``max_rows`` of the
        newest readings, in time order (events before readings at the same time)."""
        conn = self._reader()
        readings = conn.execute(
            f"SELECT ts, {', '.join(METRIC_COLUMNS)} FROM telemetry "
            "WHERE robot = %s AND ts >= %s ORDER BY ts DESC LIMIT %s",
            (robot, since_ts, max_rows),
        ).fetchall()
        first_ts = readings[-1][0] if len(readings) == max_rows else since_ts
        events = conn.execute(
            "SELECT ts, body FROM events WHERE robot = %s AND ts >= %s ORDER BY ts",
            (robot, first_ts),
        ).fetchall()
        rows = [HistoryRow(ts, "event", orjson.loads(body)) for ts, body in events]
        for ts, *values in reversed(readings):
            present = {m: v for m, v in zip(METRIC_COLUMNS, values, strict=True) if v is not None}
            rows.append(HistoryRow(ts, "reading", present))
        rows.sort(key=lambda r: (r.ts, r.kind == "reading"))
        return rows


def _filters(**values: Any) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for column, value in values.items():
        if value is not None:
            clauses.append(f"{column} = %s")
            args.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args
