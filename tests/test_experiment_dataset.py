"""The dataset export: a real run's service database and the offline experiment, read back in
pandas; every reading joins to exactly one truth row on (robot, ts)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from api.records.maintenance import work_order_record
from api.store import Accepted
from api.store.sqlite import SqliteStore
from contract.codec import decode
from contract.topics import Topic
from experiment.dataset import Dataset
from experiment.loop import ClosedLoop
from factory.cli import app
from simulator.devices.wire import encode_fields
from simulator.model.records import Record
from simulator.model.scenario import load_scenario

BOOT = "boot-export"


class StoreTap(Dataset):
    """Feeds every record of the model through the contract's codec into a real service store,
    as the device agent and the service's ingest do (no broker in between), and keeps the
    offline dataset of the same run alongside for comparison."""

    def __init__(self, store: SqliteStore) -> None:
        super().__init__()
        self.store = store
        self.seq = 0
        self.topics = {r.id: r for r in load_scenario().robots}

    def on_record(self, record: Record) -> None:
        super().on_record(record)
        if record.CHANNEL is None:
            return
        self.seq += 1
        fields = {"v": 1, "robot": record.robot, "ts": record.ts, "boot": BOOT, "seq": self.seq}
        payload = decode(record.CHANNEL, encode_fields({**fields, **record.fields()}))
        topic = Topic.for_robot(self.topics[record.robot], record.CHANNEL)
        self.store.write([Accepted(topic, payload, record.ts)], [])


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StoreTap]:
    """A one-day run of the default factory under the predictive policy, stored as the service
    stores it (telemetry, truth, events, and the engine's work orders)."""
    path = tmp_path_factory.mktemp("db") / "factory.db"
    store = SqliteStore(path)
    tap = StoreTap(store)
    loop = ClosedLoop(load_scenario(), "predictive", 3, dataset=tap)
    loop.run(1.0)
    store.save_maintenance([work_order_record(wo) for wo in loop.engine.work_orders()], [])
    store.close()
    return path, tap


def export(*args: str) -> None:
    result = CliRunner().invoke(app, ["export", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_export_of_a_demo_database_loads_and_joins_in_pandas(
    demo_db: tuple[Path, StoreTap], tmp_path: Path
) -> None:
    db, tap = demo_db
    out = tmp_path / "dataset"
    export("--db", str(db), "--out", str(out), "--csv")
    telemetry = pd.read_parquet(out / "telemetry.parquet")
    truth = pd.read_parquet(out / "truth.parquet")
    events = pd.read_parquet(out / "events.parquet")
    orders = pd.read_parquet(out / "work_orders.parquet")
    assert len(telemetry) == len(tap.telemetry) > 1000  # every reading of the day, once
    assert {"vibration_rms_mm_s", "temperature_c", "motor_current_a", "cycle_time_s"} <= set(
        telemetry.columns
    )
    assert telemetry["time_utc"].dt.tz is not None
    assert not truth.duplicated(["robot", "ts"]).any()
    joined = telemetry.merge(
        truth, on=["robot", "ts"], how="left", validate="many_to_one", indicator=True
    )
    assert len(joined) == len(telemetry)
    assert (joined["_merge"] == "both").all()  # every reading has exactly one truth row
    label = "reducer-j2_rul_op_h"  # the welders' reducer
    welders = joined[joined["robot"].str.startswith("weld-")]
    assert len(welders) > 0
    assert welders[label].notna().all()  # every welder reading found its truth
    assert (welders["reducer-j2_wear"] >= 0).all()
    assert len(events) > 0
    assert list(orders.columns)[:4] == ["id", "robot", "line", "component"]
    # The CSV holds the same rows.
    assert len(pd.read_csv(out / "telemetry.csv")) == len(telemetry)


def test_the_offline_dataset_and_the_database_export_agree(
    demo_db: tuple[Path, StoreTap], tmp_path: Path
) -> None:
    db, tap = demo_db
    export("--db", str(db), "--out", str(tmp_path / "db"))
    tap.write(tmp_path / "offline")
    for name in ("telemetry", "truth", "events"):
        from_db = pd.read_parquet(tmp_path / "db" / f"{name}.parquet")
        offline = pd.read_parquet(tmp_path / "offline" / f"{name}.parquet")
        columns = [c for c in offline.columns if c not in ("boot", "seq", "body_json")]
        pd.testing.assert_frame_equal(from_db[columns], offline[columns])


def test_export_refuses_a_missing_or_foreign_file(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["export", "--db", str(tmp_path / "nope.db")])
    assert missing.exit_code == 2
    assert "no database file" in missing.output
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"not sqlite at all" * 100)
    result = runner.invoke(app, ["export", "--db", str(foreign), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "not a service database" in result.output


def test_experiment_export_writes_one_dataset_per_run(tmp_path: Path) -> None:
    out, export_dir = tmp_path / "out", tmp_path / "export"
    args = ["experiment", "--seeds", "1", "--days", "1", "--policies", "reactive,predictive"]
    args += ["--jobs", "1", "--out", str(out), "--export", str(export_dir), "--csv"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for policy in ("reactive", "predictive"):
        run = export_dir / policy / "seed-1"
        names = sorted(p.name for p in run.iterdir())
        assert names == sorted(
            f"{t}.{ext}"
            for t in ("telemetry", "truth", "events", "work_orders")
            for ext in ("parquet", "csv")
        )
        telemetry = pd.read_parquet(run / "telemetry.parquet")
        truth = pd.read_parquet(run / "truth.parquet")
        joined = telemetry.merge(truth, on=["robot", "ts"], how="left", indicator=True)
        assert len(joined) == len(telemetry) > 1000
        assert (joined["_merge"] == "both").all()
