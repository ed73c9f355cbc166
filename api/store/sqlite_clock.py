"""Repairing a robot's stored clock: what a resume does for a robot poisoned before the guard.

A message stored before the clock guard existed could carry a ``ts`` a year ahead; the robot's
``last_seen`` (and with it the service's clock, the newest ``last_seen``) then stayed there across
restarts. :func:`repair_robot_clock` drops that robot's messages past a bound, counts them as
``clock`` rejects and recomputes its newest time and latest reading from what is left.
:func:`recent_pace` tells the guard how fast the previous run's clock moved, so the robots of a
resumed simulation, ahead by the seconds it took to start at that pace, are not refused.
"""

from __future__ import annotations

import sqlite3

import orjson

from api.store.sqlite_schema import METRIC_COLUMNS

#: Tables holding one row per message, with its simulated ``ts``.
MESSAGE_TABLES = ("telemetry_messages", "events", "truth")


#: Events the pace of the previous run is measured over, and the least wall time they must span.
PACE_EVENTS = 500
PACE_MIN_WALL_S = 2.0


def recent_pace(conn: sqlite3.Connection) -> float | None:
    """Simulated seconds per wall second over the newest stored events (``None``: too few)."""
    row = conn.execute(
        "SELECT max(ts) - min(ts), max(received_at) - min(received_at) FROM "
        "(SELECT ts, received_at FROM events ORDER BY rowid DESC LIMIT ?)",
        (PACE_EVENTS,),
    ).fetchone()
    sim_s, wall_s = row
    if sim_s is None or wall_s is None or wall_s < PACE_MIN_WALL_S:
        return None
    return float(sim_s) / float(wall_s)


def repair_robot_clock(conn: sqlite3.Connection, robot: str, bound_ts: float) -> int:
    """Drop ``robot``'s messages after ``bound_ts``; return how many (inside a transaction)."""
    dropped = 0
    for table in MESSAGE_TABLES:
        dropped += conn.execute(
            f"DELETE FROM {table} WHERE robot = ? AND ts > ?", (robot, bound_ts)
        ).rowcount
    conn.execute("DELETE FROM telemetry WHERE robot = ? AND ts > ?", (robot, bound_ts))
    (newest,) = conn.execute(
        "SELECT max(ts) FROM ("
        + " UNION ALL ".join(
            f"SELECT max(ts) AS ts FROM {table} WHERE robot = ?" for table in MESSAGE_TABLES
        )
        + ")",
        (robot,) * len(MESSAGE_TABLES),
    ).fetchone()
    latest = conn.execute(
        f"SELECT ts, {', '.join(METRIC_COLUMNS)} FROM telemetry WHERE robot = ? "
        "ORDER BY ts DESC LIMIT 1",
        (robot,),
    ).fetchone()
    values = None
    if latest is not None:
        metrics = zip(METRIC_COLUMNS, latest[1:], strict=True)
        values = orjson.dumps({m: v for m, v in metrics if v is not None}).decode()
    conn.execute(
        "UPDATE robots SET last_seen = ?, latest_ts = ?, latest = ?, "
        "state_since = min(state_since, ?) WHERE robot = ?",
        (newest, None if latest is None else latest[0], values, bound_ts, robot),
    )
    if dropped:
        conn.execute(
            "INSERT INTO reject_counts (reason, count) VALUES ('clock', ?) "
            "ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count",
            (dropped,),
        )
    return dropped
