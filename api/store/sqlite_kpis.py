"""The SQLite queries behind the live KPIs: the events that measure a robot's activity and the
earliest stored time (the default start of a KPI window)."""

from __future__ import annotations

import sqlite3

import orjson

from engine.kpis import StoredEvent

#: Event kinds the KPIs read (engine.kpis.activity_from_events).
KPI_EVENT_KINDS = (
    "failure",
    "repair_finished",
    "maintenance_started",
    "maintenance_finished",
    "parts",
)


def kpi_events(
    conn: sqlite3.Connection, since: float, until: float
) -> dict[str, list[StoredEvent]]:
    """Every robot's KPI events in ``[since, until)``, in time order, per robot (each robot's
    range is read through the ``(robot, ts)`` index)."""
    marks = ", ".join("?" * len(KPI_EVENT_KINDS))
    rows = conn.execute(
        "SELECT e.robot, e.ts, e.kind, e.body FROM robots r JOIN events e "
        f"ON e.robot = r.robot AND e.ts >= ? AND e.ts < ? WHERE e.kind IN ({marks}) "
        "ORDER BY e.robot, e.ts",
        (since, until, *KPI_EVENT_KINDS),
    )
    found: dict[str, list[StoredEvent]] = {}
    for robot, ts, kind, body in rows:
        found.setdefault(robot, []).append(StoredEvent(float(ts), kind, orjson.loads(body)))
    return found


def first_ts(conn: sqlite3.Connection) -> float | None:
    """The earliest simulated time of any robot's stored reading or event."""
    (first,) = conn.execute(
        "SELECT min(t) FROM (SELECT (SELECT min(ts) FROM telemetry WHERE robot = r.robot) AS t "
        "FROM robots r UNION ALL SELECT (SELECT min(ts) FROM events WHERE robot = r.robot) "
        "FROM robots r)"
    ).fetchone()
    return None if first is None else float(first)
