"""The PostgreSQL store's clock repair and pace: the same rules as :mod:`api.store.sqlite_clock`.

:func:`repair_robot_clock` drops a robot's messages past a bound (counted as ``clock`` rejects)
and recomputes its newest time and latest reading; :func:`recent_pace` is the previous run's
simulated seconds per wall second over the newest stored events (newest by arrival, as
PostgreSQL has no row order of its own).
"""

from __future__ import annotations

from typing import Any

import orjson
import psycopg

from api.store.sqlite_clock import MESSAGE_TABLES, PACE_EVENTS, PACE_MIN_WALL_S
from api.store.sqlite_schema import METRIC_COLUMNS


def recent_pace(conn: psycopg.Connection[Any]) -> float | None:
    """Simulated seconds per wall second over the newest stored events (``None``: too few)."""
    row = conn.execute(
        "SELECT max(ts) - min(ts), max(received_at) - min(received_at) FROM "
        "(SELECT ts, received_at FROM events ORDER BY received_at DESC LIMIT %s) AS newest",
        (PACE_EVENTS,),
    ).fetchone()
    if row is None or row[0] is None or row[1] is None or row[1] < PACE_MIN_WALL_S:
        return None
    return float(row[0]) / float(row[1])


def repair_robot_clock(conn: psycopg.Connection[Any], robot: str, bound_ts: float) -> int:
    """Drop ``robot``'s messages after ``bound_ts``; return how many (inside a transaction)."""
    dropped = 0
    for table in MESSAGE_TABLES:
        cursor = conn.execute(
            f"DELETE FROM {table} WHERE robot = %s AND ts > %s", (robot, bound_ts)
        )
        dropped += max(cursor.rowcount, 0)
    conn.execute("DELETE FROM telemetry WHERE robot = %s AND ts > %s", (robot, bound_ts))
    newest = conn.execute(
        "SELECT max(ts) FROM ("
        + " UNION ALL ".join(
            f"SELECT max(ts) AS ts FROM {table} WHERE robot = %s" for table in MESSAGE_TABLES
        )
        + ") AS newest",
        (robot,) * len(MESSAGE_TABLES),
    ).fetchone()
    latest = conn.execute(
        f"SELECT ts, {', '.join(METRIC_COLUMNS)} FROM telemetry WHERE robot = %s "
        "ORDER BY ts DESC LIMIT 1",
        (robot,),
    ).fetchone()
    values = None
    if latest is not None:
        metrics = zip(METRIC_COLUMNS, latest[1:], strict=True)
        values = orjson.dumps({m: v for m, v in metrics if v is not None}).decode()
    conn.execute(
        "UPDATE robots SET last_seen = %s, latest_ts = %s, latest = %s, "
        "state_since = least(state_since, %s) WHERE robot = %s",
        (
            None if newest is None else newest[0],
            None if latest is None else latest[0],
            values,
            bound_ts,
            robot,
        ),
    )
    if dropped:
        conn.execute(
            "INSERT INTO reject_counts (reason, count) VALUES ('clock', %s) "
            "ON CONFLICT (reason) DO UPDATE SET count = reject_counts.count + excluded.count",
            (dropped,),
        )
    return dropped
