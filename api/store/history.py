"""History queries, on either store: a bounded count first, then raw rows or bucket averages.

The count reads at most ``cap + 1`` index entries, so a query over a cap is refused in
milliseconds however much data the range holds; only a query under the cap reads its rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.records import TelemetryPoint
from api.store import QueryRefused, TelemetryQuery
from api.store.dialect import Connection, Dialect
from api.store.sqlite_schema import METRIC_COLUMNS


def history(conn: Connection, query: TelemetryQuery, dialect: Dialect) -> list[TelemetryPoint]:
    """Readings of ``query`` in time order, averaged per bucket when ``query.every`` is set."""
    if query.metric is not None and query.metric not in METRIC_COLUMNS:
        # Column names go into the SQL text: only the contract's metrics may.
        raise QueryRefused(f"unknown metric {query.metric!r}; one of {', '.join(METRIC_COLUMNS)}")
    metrics = (query.metric,) if query.metric else METRIC_COLUMNS
    in_range = "robot = ? AND ts >= ? AND ts <= ?"
    # Readings without the metric are still read to be skipped: the cap counts them too.
    where = f"{in_range} AND {query.metric} IS NOT NULL" if query.metric else in_range
    args: tuple[Any, ...] = (query.robot, query.since, query.until)
    cap = query.max_points if query.every is None else query.max_scan_rows
    # A bounded count of index entries: never reads more than cap + 1 of them.
    (count,) = conn.execute(
        dialect.sql(
            f"SELECT count(*) FROM (SELECT 1 FROM telemetry WHERE {in_range} LIMIT ?) AS capped"
        ),
        (*args, cap + 1),
    ).fetchone()
    if count > cap:
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
            dialect.sql(
                f"SELECT ts, 1, {', '.join(metrics)} FROM telemetry WHERE {where} ORDER BY ts"
            ),
            args,
        )
    else:
        counted = f"count({query.metric})" if query.metric else "count(*)"
        rows = conn.execute(
            dialect.sql(
                f"SELECT ? + b * ?, n, {', '.join(metrics)} FROM ("
                f"SELECT {dialect.bucket} AS b, {counted} AS n, "
                f"{', '.join(f'avg({m}) AS {m}' for m in metrics)} "
                f"FROM telemetry WHERE {where} GROUP BY b) AS buckets ORDER BY b"
            ),
            (query.since, query.every, query.since, query.every, *args),
        )
    return [_point(row, metrics) for row in rows]


def _point(row: Sequence[Any], metrics: Sequence[str]) -> TelemetryPoint:
    values = {m: v for m, v in zip(metrics, row[2:], strict=True) if v is not None}
    return TelemetryPoint(ts=row[0], n=int(row[1]), values=values)
