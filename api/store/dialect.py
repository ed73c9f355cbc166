"""What differs between the two stores' SQL: the parameter mark, "no limit", the bucket of a time.

Both stores hold the same tables and read them with the same queries (:mod:`api.store.reads`,
:mod:`api.store.history`); a query is written once with ``?`` marks and given to the driver
through :meth:`Dialect.sql`, so the shared queries must not use ``?`` for anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class Connection(Protocol):
    """What both drivers' connections offer (``sqlite3`` and ``psycopg``)."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    #: The driver's parameter mark: ``?`` (sqlite3) or ``%s`` (psycopg).
    mark: str
    #: The value a ``LIMIT ?`` takes to mean no limit.
    no_limit: int | None
    #: An integer bucket index of ``(ts - ?) / ?``, as this server writes it.
    bucket: str
    #: The columns of a robot's row (:func:`api.store.reads.robot_from_row` reads them).
    robot_columns: str

    def sql(self, text: str) -> str:
        """``text`` with its ``?`` marks in this driver's spelling."""
        return text if self.mark == "?" else text.replace("?", self.mark)

    def limit(self, limit: int | None) -> int | None:
        return self.no_limit if limit is None else limit


_ROBOT_COLUMNS = (
    "robot, kind, model, site, area, line, state, state_since, state_reason, "
    "last_seen, last_received_at, latest_ts, latest, "
)
SQLITE = Dialect(
    mark="?",
    no_limit=-1,
    # ts >= since in every bucketed query, so truncating is flooring.
    bucket="CAST((ts - ?) / ? AS INTEGER)",
    robot_columns=_ROBOT_COLUMNS
    + "json_extract(birth, '$.vibration_class'), json_extract(birth, '$.sample_interval_s'), "
    "birth_boot",
)
POSTGRES = Dialect(
    mark="%s",
    no_limit=None,  # LIMIT NULL: no limit
    bucket="floor((ts - ?) / ?)::bigint",
    robot_columns=_ROBOT_COLUMNS
    + "birth ->> 'vibration_class', (birth ->> 'sample_interval_s')::float8, birth_boot",
)
