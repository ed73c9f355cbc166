"""The queries behind the live KPIs, shared by the SQLite and PostgreSQL stores (the same
tables; only the parameter mark differs: ``?`` or ``%s``): the events that measure a robot's
activity and the earliest stored time (the default start of a KPI window)."""

from __future__ import annotations

import orjson

from api.store.dialect import Connection
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
    conn: Connection, since: float, until: float, mark: str = "?"
) -> dict[str, list[StoredEvent]]:
    """Every robot's KPI events in ``[since, until)``, in time order, per robot (each robot's
    range is read through the ``(robot, ts)`` index)."""
    marks = ", ".join([mark] * len(KPI_EVENT_KINDS))
    rows = conn.execute(
        "SELECT e.robot, e.ts, e.kind, e.body FROM robots r JOIN events e "
        f"ON e.robot = r.robot AND e.ts >= {mark} AND e.ts < {mark} WHERE e.kind IN ({marks}) "
        "ORDER BY e.robot, e.ts",
        (since, until, *KPI_EVENT_KINDS),
    )
    found: dict[str, list[StoredEvent]] = {}
    for robot, ts, kind, body in rows:
        found.setdefault(robot, []).append(StoredEvent(float(ts), kind, orjson.loads(body)))
    return found


def first_ts(conn: Connection) -> float | None:
    """The earliest simulated time of any robot's stored reading or event."""
    (first,) = conn.execute(
        "SELECT min(t) FROM (SELECT (SELECT min(ts) FROM telemetry WHERE robot = r.robot) AS t "
        "FROM robots r UNION ALL SELECT (SELECT min(ts) FROM events WHERE robot = r.robot) "
        "FROM robots r) AS firsts"
    ).fetchone()
    return None if first is None else float(first)
