"""The dataset a run leaves behind: telemetry with its ground truth, events and work orders.

Four tables, written as Parquet (and CSV with ``csv=True``) by :meth:`Dataset.write`; the columns,
their units and how the labels are made are in docs/dataset.md (the data card):

* ``telemetry`` — one row per reading: ``robot``, ``ts`` (simulated Unix seconds),
  ``time_utc``, ``boot``, ``seq``, ``historical``, then one column per metric, units in the name
  (``vibration_rms_mm_s``, ``temperature_c``, …); a sensor that gave no value is null;
* ``truth`` — one row per (robot, ts) at which the robot reported its hidden ground truth (the
  simulator does so at every sample, with the reading's exact ``ts``): ``robot``, ``ts``, then
  per component
  ``<component>_wear``, ``<component>_wear_threshold``, ``<component>_rul_op_h`` (true remaining
  operating hours: the label) and ``<component>_rul_h`` (calendar hours if the robot ran every
  production second). Joined to telemetry on ``(robot, ts)`` each reading finds exactly one row.
  Where two truth records share a (robot, ts) — the one at a robot's start and its first sample —
  they describe the same instant and the later one is kept;
* ``events`` — ``robot``, ``ts``, ``time_utc``, ``kind``, ``component``, ``body_json``;
* ``work_orders`` — one row per maintenance work order, times in Unix seconds, durations in hours.

The builder is fed from the offline experiment (:meth:`Dataset.on_record`) or from a service
database (:mod:`experiment.service_db`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from contract.payloads import METRICS
from simulator.model.records import EventRecord, Record, Sample, TruthRecord

HOUR_S = 3600.0
TABLES = ("telemetry", "truth", "events", "work_orders")
#: Component truth fields → (column suffix, divisor to the column's unit).
TRUTH_FIELDS = {
    "wear": ("wear", 1.0),
    "threshold": ("wear_threshold", 1.0),
    "rul_op_s": ("rul_op_h", HOUR_S),
    "rul_s": ("rul_h", HOUR_S),
}
WORK_ORDER_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("id", pa.string()),
    ("robot", pa.string()),
    ("line", pa.string()),
    ("component", pa.string()),
    ("origin", pa.string()),
    ("status", pa.string()),
    ("placement", pa.string()),
    ("created_ts", pa.float64()),
    ("start_ts", pa.float64()),
    ("end_ts", pa.float64()),
    ("deadline_ts", pa.float64()),
    ("reference_ts", pa.float64()),
    ("duration_h", pa.float64()),
    ("lost_production_h", pa.float64()),
    ("reason", pa.string()),
)


@dataclass(slots=True)
class Dataset:
    """Rows gathered for the four tables; :meth:`tables` makes the Arrow tables."""

    telemetry: list[tuple[str, float, str, int, bool, Mapping[str, float]]] = field(
        default_factory=list
    )
    truth: dict[tuple[str, float], dict[str, float | None]] = field(default_factory=dict)
    events: list[tuple[str, float, str, str | None, str]] = field(default_factory=list)
    work_orders: list[dict[str, Any]] = field(default_factory=list)

    # --- feeding -----------------------------------------------------------------------------

    def add_reading(
        self,
        robot: str,
        ts: float,
        values: Mapping[str, float],
        *,
        boot: str = "offline",
        seq: int = 0,
        historical: bool = False,
    ) -> None:
        self.telemetry.append((robot, ts, boot, seq, historical, values))

    def add_truth(self, robot: str, ts: float, components: Iterable[Mapping[str, Any]]) -> None:
        row: dict[str, float | None] = {}
        for c in components:
            for name, (suffix, divisor) in TRUTH_FIELDS.items():
                value = c.get(name)
                row[f"{c['name']}_{suffix}"] = None if value is None else float(value) / divisor
        self.truth[(robot, ts)] = row  # a later record of the same instant replaces it

    def add_event(self, robot: str, ts: float, body: Mapping[str, Any]) -> None:
        component = body.get("component")
        self.events.append(
            (
                robot,
                ts,
                str(body["kind"]),
                None if component is None else str(component),
                json.dumps(body, sort_keys=True),
            )
        )

    def add_work_order(self, order: Mapping[str, Any]) -> None:
        row = {name: order.get(name) for name, _ in WORK_ORDER_COLUMNS}
        row["duration_h"] = float(order["duration_s"]) / HOUR_S
        row["lost_production_h"] = float(order.get("lost_production_s") or 0.0) / HOUR_S
        self.work_orders.append(row)

    def on_record(self, record: Record) -> None:
        """Take one record of the offline model (births, states and drops are not exported)."""
        if isinstance(record, Sample):
            self.add_reading(record.robot, record.ts, record.values, seq=len(self.telemetry))
        elif isinstance(record, TruthRecord):
            self.add_truth(record.robot, record.ts, (c._asdict() for c in record.components))
        elif isinstance(record, EventRecord):
            self.add_event(record.robot, record.ts, record.body)

    # --- tables ------------------------------------------------------------------------------

    def tables(self) -> dict[str, pa.Table]:
        return {
            "telemetry": self._telemetry_table(),
            "truth": self._truth_table(),
            "events": self._events_table(),
            "work_orders": self._work_orders_table(),
        }

    def _telemetry_table(self) -> pa.Table:
        rows = sorted(self.telemetry, key=lambda r: (r[0], r[1], r[2], r[3]))
        columns: dict[str, pa.Array] = _keys([r[0] for r in rows], [r[1] for r in rows])
        columns["boot"] = pa.array([r[2] for r in rows], pa.string())
        columns["seq"] = pa.array([r[3] for r in rows], pa.int64())
        columns["historical"] = pa.array([r[4] for r in rows], pa.bool_())
        for metric in METRICS:
            columns[metric] = pa.array([r[5].get(metric) for r in rows], pa.float64())
        return pa.table(columns)

    def _truth_table(self) -> pa.Table:
        keys = sorted(self.truth)
        columns = _keys([k[0] for k in keys], [k[1] for k in keys])
        del columns["time_utc"]  # joined on (robot, ts): the telemetry has the time
        names = sorted({name for row in self.truth.values() for name in row})
        for name in names:
            columns[name] = pa.array([self.truth[k].get(name) for k in keys], pa.float64())
        return pa.table(columns)

    def _events_table(self) -> pa.Table:
        rows = sorted(self.events, key=lambda r: (r[0], r[1]))
        columns = _keys([r[0] for r in rows], [r[1] for r in rows])
        columns["kind"] = pa.array([r[2] for r in rows], pa.string())
        columns["component"] = pa.array([r[3] for r in rows], pa.string())
        columns["body_json"] = pa.array([r[4] for r in rows], pa.string())
        return pa.table(columns)

    def _work_orders_table(self) -> pa.Table:
        rows = sorted(self.work_orders, key=lambda r: (r["created_ts"], r["id"]))
        return pa.table(
            {name: pa.array([r[name] for r in rows], kind) for name, kind in WORK_ORDER_COLUMNS}
        )

    # --- files -------------------------------------------------------------------------------

    def write(self, out: Path, *, csv: bool = False) -> list[Path]:
        """Write ``<table>.parquet`` (and ``<table>.csv``) for every table into ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in self.tables().items():
            path = out / f"{name}.parquet"
            pq.write_table(table, path)
            written.append(path)
            if csv:
                path = out / f"{name}.csv"
                pa_csv.write_csv(table, path)
                written.append(path)
        return written


def _keys(robots: Sequence[str], ts: Sequence[float]) -> dict[str, pa.Array]:
    """The key columns every table starts with: robot, ts (Unix s) and the time it stands for."""
    times = pa.array([round(t * 1000) for t in ts], pa.int64()).cast(pa.timestamp("ms", "UTC"))
    return {
        "robot": pa.array(robots, pa.string()),
        "ts": pa.array(ts, pa.float64()),
        "time_utc": times,
    }
