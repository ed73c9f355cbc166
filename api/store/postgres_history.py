"""History queries on the PostgreSQL store: a bounded count first, then raw rows or bucket
averages — the same rules and messages as :mod:`api.store.sqlite_history`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from api.records import TelemetryPoint
from api.store import QueryRefused, TelemetryQuery
from api.store.sqlite_schema import METRIC_COLUMNS


def history(conn: psycopg.Connection[Any], query: TelemetryQuery) -> list[TelemetryPoint]:
    """Readings of ``query`` in time order, averaged per bucket when ``query.every`` is set."""
    if query.metric is not None and query.metric not in METRIC_COLUMNS:
        # Column names go into the SQL text: only the contract's metrics may.
        raise QueryRefused(f"unknown metric {query.metric!r}; one of {', '.join(METRIC_COLUMNS)}")
    metrics = (query.metric,) if query.metric else METRIC_COLUMNS
    in_range = "robot = %s AND ts >= %s AND ts <= %s"
    where = f"{in_range} AND {query.metric} IS NOT NULL" if query.metric else in_range
    args: tuple[Any, ...] = (query.robot, query.since, query.until)
    cap = query.max_points if query.every is None else query.max_scan_rows
    # A bounded count of index entries: never reads more than cap + 1 of them.
    row = conn.execute(
        f"SELECT count(*) FROM (SELECT 1 FROM telemetry WHERE {in_range} LIMIT %s) AS capped",
        (*args, cap + 1),
    ).fetchone()
    if row is not None and row[0] > cap:
        if query.every is None:
            raise QueryRefused(
                f"more than {cap} readings in the range, over the cap of {cap} points; "
                "narrow since/until or downsample with every=SECONDS"
            )
        raise QueryRefused(
            f"more than {cap} readings to average, over the cap of {cap} rows; narrow since/until"
        )
    if query.every is None:
        rows = conn.execute(
            f"SELECT ts, 1, {', '.join(metrics)} FROM telemetry WHERE {where} ORDER BY ts",
            args,
        )
    else:
        counted = f"count({query.metric})" if query.metric else "count(*)"
        rows = conn.execute(
            f"SELECT %s + b * %s, n, {', '.join(metrics)} FROM ("
            f"SELECT floor((ts - %s) / %s)::bigint AS b, {counted} AS n, "
            f"{', '.join(f'avg({m}) AS {m}' for m in metrics)} "
            f"FROM telemetry WHERE {where} GROUP BY b) AS buckets ORDER BY b",
            (query.since, query.every, query.since, query.every, *args),
        )
    return [_point(row, metrics) for row in rows]


def _point(row: Sequence[Any], metrics: Sequence[str]) -> TelemetryPoint:
    values = {m: v for m, v in zip(metrics, row[2:], strict=True) if v is not None}
    return TelemetryPoint(ts=row[0], n=int(row[1]), values=values)
