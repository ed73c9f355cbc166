"""The read side both stores share: the same tables, the same queries, the driver's own marks.

:class:`StoreReads` is a mixin of :class:`~api.store.sqlite.SqliteStore` and
:class:`~api.store.postgres.PostgresStore`: each gives its :class:`~api.store.dialect.Dialect`
and a per-thread reader connection; everything a route or the engine's warm-up reads back is
written once, here. The write side differs (transactions, bulk paths, upserts) and stays with
each store.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import orjson

from api.records import DeadLetter, LatestReading, Robot, TelemetryPoint
from api.records.maintenance import Alarm, WorkOrder
from api.store import HistoryRow, TelemetryQuery
from api.store.dialect import Connection, Dialect
from api.store.history import history
from api.store.kpi_queries import first_ts, kpi_events
from api.store.sqlite_schema import METRIC_COLUMNS
from engine.kpis import StoredEvent

#: Alarm fields in column order (``limit`` is a keyword in SQL: its column is ``limit_name``).
ALARM_FIELDS = tuple(Alarm.model_fields)
ALARM_COLUMNS = ", ".join("limit_name" if f == "limit" else f for f in ALARM_FIELDS)


class StoreReads:
    """Reads of the robots, telemetry, rejects, KPI events, work orders and alarms."""

    dialect: ClassVar[Dialect]
    _reader: Callable[[], Connection]

    def _rows(self, text: str, params: Sequence[Any] = ()) -> Any:
        return self._reader().execute(self.dialect.sql(text), params)

    # --- plant and telemetry -------------------------------------------------------------------

    def robots(self) -> list[Robot]:
        rows = self._rows(
            f"SELECT {self.dialect.robot_columns} FROM robots ORDER BY site, area, line, robot"
        )
        return [robot_from_row(row) for row in rows]

    def robot(self, robot_id: str) -> Robot | None:
        row = self._rows(
            f"SELECT {self.dialect.robot_columns} FROM robots WHERE robot = ?", (robot_id,)
        ).fetchone()
        return None if row is None else robot_from_row(row)

    def telemetry(self, query: TelemetryQuery) -> list[TelemetryPoint]:
        return history(self._reader(), query, self.dialect)

    def clock(self) -> float | None:
        row = self._rows("SELECT max(last_seen) FROM robots").fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def first_ts(self) -> float | None:
        return first_ts(self._reader())

    def kpi_events(self, since: float, until: float) -> dict[str, list[StoredEvent]]:
        return kpi_events(self._reader(), since, until, mark=self.dialect.mark)

    # --- rejects -------------------------------------------------------------------------------

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        rows = self._rows(
            "SELECT id, received_at, topic, reason, detail, size, payload FROM dead_letters "
            "ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            DeadLetter(
                id=i,
                received_at=at,
                topic=topic,
                reason=reason,
                detail=detail,
                size=size,
                payload=bytes(payload).decode("utf-8", errors="replace"),
            )
            for i, at, topic, reason, detail, size, payload in rows
        ]

    def reject_counts(self) -> dict[str, int]:
        rows = self._rows("SELECT reason, count FROM reject_counts ORDER BY reason")
        return {reason: int(count) for reason, count in rows}

    # --- maintenance ---------------------------------------------------------------------------

    def work_orders(
        self,
        robot: str | None = None,
        status: str | None = None,
        active: bool | None = None,
        limit: int | None = None,
    ) -> list[WorkOrder]:
        clauses, args = [], []
        for column, value in (("robot", robot), ("status", status), ("active", active)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        rows = self._rows(
            f"SELECT body FROM work_orders {_where(clauses)} "
            "ORDER BY created_ts DESC, id DESC LIMIT ?",
            (*args, self.dialect.limit(limit)),
        )
        return [WorkOrder.model_validate_json(body) for (body,) in rows]

    def work_order(self, work_order_id: str) -> WorkOrder | None:
        row = self._rows("SELECT body FROM work_orders WHERE id = ?", (work_order_id,)).fetchone()
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
        rows = self._rows(
            f"SELECT {ALARM_COLUMNS} FROM alarms {_where(clauses)} "
            "ORDER BY raised_ts DESC, id DESC LIMIT ?",
            (*args, self.dialect.limit(limit)),
        )
        return [Alarm.model_validate(dict(zip(ALARM_FIELDS, row, strict=True))) for row in rows]

    def recent_history(self, robot: str, since_ts: float, max_rows: int) -> list[HistoryRow]:
        """A robot's readings and events from ``since_ts`` on, at most ``max_rows`` of the
        newest readings, in time order (events before readings at the same time)."""
        readings = self._rows(
            f"SELECT ts, {', '.join(METRIC_COLUMNS)} FROM telemetry "
            "WHERE robot = ? AND ts >= ? ORDER BY ts DESC LIMIT ?",
            (robot, since_ts, max_rows),
        ).fetchall()
        first = readings[-1][0] if len(readings) == max_rows else since_ts
        events = self._rows(
            "SELECT ts, body FROM events WHERE robot = ? AND ts >= ? ORDER BY ts", (robot, first)
        ).fetchall()
        rows = [HistoryRow(ts, "event", orjson.loads(body)) for ts, body in events]
        for ts, *values in reversed(readings):
            present = {m: v for m, v in zip(METRIC_COLUMNS, values, strict=True) if v is not None}
            rows.append(HistoryRow(ts, "reading", present))
        rows.sort(key=lambda r: (r.ts, r.kind == "reading"))
        return rows


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def robot_from_row(row: Sequence[Any]) -> Robot:
    """A :class:`Robot` from a row of :attr:`Dialect.robot_columns`."""
    (robot, kind, model, site, area, line, state, since, reason, seen, received, lts, latest) = row[
        :13
    ]
    vibration_class, sample_interval_s, boot = row[13:]
    return Robot(
        id=robot,
        kind=kind,
        model=model,
        site=site,
        area=area,
        line=line,
        state=state,
        state_since=since,
        state_reason=reason,
        last_seen=seen,
        last_received_at=received,
        latest=None if lts is None else LatestReading(ts=lts, values=orjson.loads(latest)),
        vibration_class=vibration_class,
        sample_interval_s=sample_interval_s,
        boot=boot,
    )
