"""Reading a service database (SQLite) into a :class:`~experiment.dataset.Dataset`.

``factory export --db FILE`` takes what the live service stored — telemetry, the hidden truth
records it received on the ``truth`` channel, events and work orders — and hands it to the same
tables the offline experiment exports. The file is opened read-only (a running service may keep
writing to it; SQLite's WAL gives this reader a consistent snapshot), and only the tables and
columns of the store's schema version 1 are read, with plain SQL: no service code is needed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from contract.payloads import METRICS
from experiment.dataset import Dataset

SCHEMA_VERSION = "1"


class ServiceDbError(ValueError):
    """The file is not a service database this exporter can read."""


def load_service_db(path: Path) -> Dataset:
    """Everything exportable in the service database at ``path``."""
    if not path.is_file():
        raise ServiceDbError(f"no database file at {path}; pass the service's SQLite file")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise ServiceDbError(f"cannot open {path}: {error}") from error
    try:
        return _load(connection, path)
    except sqlite3.DatabaseError as error:
        raise ServiceDbError(f"{path} is not a service database: {error}") from error
    finally:
        connection.close()


def _load(connection: sqlite3.Connection, path: Path) -> Dataset:
    row = connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if row is None or row[0] != SCHEMA_VERSION:
        found = None if row is None else row[0]
        raise ServiceDbError(
            f"{path} has store schema version {found!r}; this exporter reads {SCHEMA_VERSION!r}"
        )
    dataset = Dataset()
    metrics = ", ".join(METRICS)
    for robot, ts, boot, seq, historical, *values in connection.execute(
        f"SELECT robot, ts, boot, seq, historical, {metrics} FROM telemetry"
    ):
        readings = {m: v for m, v in zip(METRICS, values, strict=True) if v is not None}
        dataset.add_reading(robot, ts, readings, boot=boot, seq=seq, historical=bool(historical))
    # In arrival order, so that of two records of one instant the later one is kept.
    for robot, ts, body in connection.execute("SELECT robot, ts, body FROM truth ORDER BY rowid"):
        dataset.add_truth(robot, ts, json.loads(body)["components"])
    for robot, ts, body in connection.execute("SELECT robot, ts, body FROM events ORDER BY rowid"):
        dataset.add_event(robot, ts, json.loads(body))
    for (body,) in connection.execute("SELECT body FROM work_orders"):
        order = json.loads(body)
        order["origin"] = order.get("source")
        dataset.add_work_order(order)
    return dataset
