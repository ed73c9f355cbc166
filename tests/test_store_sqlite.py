"""Both stores (a SQLite file, a PostgreSQL schema): dedupe, latest values, dead letters, queries,
reopening."""

from __future__ import annotations

import statistics
import threading
from pathlib import Path

import pytest
from store_backends import Backend

from api.store import Accepted, Outcome, QueryRefused, Refused, Store, TelemetryQuery
from api.store.sqlite import SqliteStore
from contract.payloads import Birth, Failure, Reading, State, Telemetry, Truth
from contract.topics import Channel, Topic

T0 = 1_767_592_800.0
BOOT = "boot-1"


def topic(robot: str, channel: Channel, line: str = "line-1") -> Topic:
    return Topic("plant-1", "body-shop", line, robot, channel)


def tele(robot: str, seq: int, *readings: tuple[float, float], boot: str = BOOT) -> Accepted:
    """Telemetry whose readings are (ts, vibration) pairs."""
    payload = Telemetry(
        v=1,
        robot=robot,
        ts=readings[-1][0],
        boot=boot,
        seq=seq,
        readings=[Reading(ts=ts, vibration_rms_mm_s=v, temperature_c=40.0) for ts, v in readings],
    )
    return Accepted(topic(robot, Channel.TELEMETRY), payload, 1.0)


def state(robot: str, seq: int, name: str, boot: str = BOOT, ts: float = T0) -> Accepted:
    payload = State(v=1, robot=robot, ts=ts, boot=boot, seq=seq, state=name, since=ts)  # type: ignore[arg-type]
    return Accepted(topic(robot, Channel.STATE), payload, 1.0)


def birth(robot: str, seq: int, kind: str) -> Accepted:
    payload = Birth.model_validate(
        {
            "v": 1, "robot": robot, "ts": T0, "boot": BOOT, "seq": seq, "kind": kind,
            "model": "M-1", "site": "plant-1", "area": "body-shop", "line": "line-1",
            "components": [{"name": "reducer-j2", "kind": "reducer"}],
            "sensors": [{"name": "temperature_c", "unit": "°C", "min": -50.0, "max": 500.0}],
            "sample_interval_s": 10.0, "vibration_class": "I",
        }
    )  # fmt: skip
    return Accepted(topic(robot, Channel.BIRTH), payload, 1.0)


def refused(n: int, reason: str = "bad_json", size: int = 10) -> Refused:
    return Refused.of(f"factory/x/{n}", reason, f"detail {n}", b"x" * size, 2.0)


def query(store: Store, robot: str, since: float, until: float, **kw: object) -> list:
    q = TelemetryQuery(
        robot=robot,
        metric=kw.get("metric"),  # type: ignore[arg-type]
        since=since,
        until=until,
        every=kw.get("every"),  # type: ignore[arg-type]
        max_points=kw.get("max_points", 10_000),  # type: ignore[arg-type]
        max_scan_rows=kw.get("max_scan_rows", 10_000),  # type: ignore[arg-type]
    )
    return store.telemetry(q)


@pytest.fixture
def store(store_backend: Backend) -> Store:
    return store_backend.open(dead_letter_max_rows=5)


def test_wal_mode_on_a_real_file(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "factory.db")
    try:
        assert store._writer.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        store.close()


def test_a_redelivered_message_adds_no_row(store: Store) -> None:
    message = tele("r-1", 7, (T0, 0.5), (T0 + 1, 0.6))
    assert store.write([message], []) == [Outcome.NEW]
    assert store.write([message], []) == [Outcome.DUPLICATE]
    # Within one batch too (a redelivery can land in the same batch as the original).
    assert store.write([message, tele("r-1", 8, (T0 + 2, 0.7))], []) == [
        Outcome.DUPLICATE,
        Outcome.NEW,
    ]
    points = query(store, "r-1", T0, T0 + 10)
    assert [p.ts for p in points] == [T0, T0 + 1, T0 + 2]


def test_same_seq_from_another_boot_is_a_new_message(store: Store) -> None:
    store.write([tele("r-1", 1, (T0, 0.5))], [])
    assert store.write([tele("r-1", 1, (T0 + 5, 0.9), boot="boot-2")], []) == [Outcome.NEW]
    assert len(query(store, "r-1", T0, T0 + 10)) == 2


def test_events_and_truth_are_rows_deduped_by_identity(store: Store) -> None:
    failure = Failure(v=1, robot="r-1", ts=T0, boot=BOOT, seq=3, kind="failure", component="j2")
    truth = Truth.model_validate(
        {"v": 1, "robot": "r-1", "ts": T0, "boot": BOOT, "seq": 4,
         "components": [{"name": "j2", "wear": 0.5, "threshold": 1.0}]}
    )  # fmt: skip
    batch = [
        Accepted(topic("r-1", Channel.EVENT), failure, 1.0),
        Accepted(topic("r-1", Channel.TRUTH), truth, 1.0),
    ]
    assert store.write(batch, []) == [Outcome.NEW, Outcome.NEW]
    assert store.write(batch, []) == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    rows = store._reader().execute("SELECT kind FROM events").fetchall()  # type: ignore[attr-defined]
    assert rows == [("failure",)]


def test_robot_row_tracks_birth_state_and_latest_reading(store: Store) -> None:
    store.write([tele("r-1", 1, (T0 - 10, 0.4))], [])
    robot = store.robot("r-1")
    assert robot is not None
    assert (robot.kind, robot.state, robot.line) == (None, None, "line-1")
    store.write([birth("r-1", 2, "welder"), state("r-1", 3, "RUNNING")], [])
    store.write([tele("r-1", 4, (T0 + 1, 0.9)), tele("r-1", 5, (T0 - 100, 0.1))], [])
    robot = store.robot("r-1")
    assert robot is not None
    assert (robot.kind, robot.model, robot.state, robot.state_since) == (
        "welder",
        "M-1",
        "RUNNING",
        T0,
    )
    assert robot.latest is not None
    assert robot.latest.ts == T0 + 1  # an older reading arriving later does not replace it
    assert robot.latest.values == {"vibration_rms_mm_s": 0.9, "temperature_c": 40.0}
    assert robot.last_seen == T0 + 1
    assert store.clock() == T0 + 1


def test_retained_state_resent_is_a_duplicate_and_older_is_stale(store: Store) -> None:
    assert store.write([state("r-1", 10, "RUNNING")], []) == [Outcome.NEW]
    assert store.write([state("r-1", 10, "RUNNING")], []) == [Outcome.DUPLICATE]
    assert store.write([state("r-1", 9, "IDLE")], []) == [Outcome.STALE]
    robot = store.robot("r-1")
    assert robot is not None
    assert robot.state == "RUNNING"


def test_the_will_sets_offline_then_the_robot_comes_back(store: Store) -> None:
    store.write([state("r-1", 10, "RUNNING", ts=T0 + 50)], [])
    assert store.write([state("r-1", 0, "OFFLINE", ts=T0)], []) == [Outcome.NEW]
    assert store.robot("r-1").state == "OFFLINE"  # type: ignore[union-attr]
    assert store.write([state("r-1", 11, "RUNNING", ts=T0 + 60)], []) == [Outcome.NEW]
    assert store.robot("r-1").state == "RUNNING"  # type: ignore[union-attr]


def test_dead_letters_are_bounded_counted_and_truncated(store: Store) -> None:
    store.write([], [refused(n) for n in range(4)])
    store.write([], [refused(n, "too_large", size=20_000) for n in range(4, 8)])
    letters = store.dead_letters(100)
    assert [d.topic for d in letters] == [f"factory/x/{n}" for n in range(7, 2, -1)]  # newest 5
    assert store.reject_counts() == {"bad_json": 4, "too_large": 4}
    assert letters[0].size == 20_000
    assert len(letters[0].payload) == 1024


def test_everything_survives_reopening_the_store(store_backend: Backend) -> None:
    first = store_backend.open()
    first.write([birth("r-1", 1, "welder"), tele("r-1", 2, (T0, 0.5))], [refused(1)])
    first.close()
    second = store_backend.open()
    try:
        robot = second.robot("r-1")
        assert robot is not None
        assert (robot.kind, robot.vibration_class, robot.sample_interval_s) == ("welder", "I", 10.0)
        assert [p.values for p in query(second, "r-1", T0, T0)] == [
            {"vibration_rms_mm_s": 0.5, "temperature_c": 40.0}
        ]
        assert second.reject_counts() == {"bad_json": 1}
        assert second.write([tele("r-1", 2, (T0, 0.5))], []) == [Outcome.DUPLICATE]
    finally:
        second.close()


def test_metric_filter_and_downsampling_average_per_bucket(store: Store) -> None:
    values = [0.1 * (i % 7) for i in range(60)]
    store.write([tele("r-1", i + 1, (T0 + i, v)) for i, v in enumerate(values)], [])
    store.write([tele("r-2", 1, (T0, 9.0))], [])  # another robot stays out of it
    raw = query(store, "r-1", T0 + 10, T0 + 19, metric="vibration_rms_mm_s")
    assert [p.ts for p in raw] == [T0 + i for i in range(10, 20)]
    assert all(set(p.values) == {"vibration_rms_mm_s"} for p in raw)
    buckets = query(store, "r-1", T0, T0 + 59, every=20.0, metric="vibration_rms_mm_s")
    assert [(p.ts, p.n) for p in buckets] == [(T0, 20), (T0 + 20, 20), (T0 + 40, 20)]
    for k, point in enumerate(buckets):
        expected = statistics.fmean(values[20 * k : 20 * (k + 1)])
        assert point.values["vibration_rms_mm_s"] == pytest.approx(expected)


def test_only_contract_metrics_reach_the_sql(store: Store) -> None:
    with pytest.raises(QueryRefused, match="unknown metric"):
        query(store, "r-1", T0, T0 + 1, metric="ts) OR 1=1 --")


def test_row_caps_refuse_instead_of_reading_everything(store: Store) -> None:
    store.write([tele("r-1", i + 1, (T0 + i, 0.5)) for i in range(30)], [])
    with pytest.raises(QueryRefused, match="cap of 29 points; narrow since/until or downsample"):
        query(store, "r-1", T0, T0 + 100, max_points=29)
    assert len(query(store, "r-1", T0, T0 + 100, max_points=30)) == 30
    with pytest.raises(QueryRefused, match="cap of 10 rows"):
        query(store, "r-1", T0, T0 + 100, every=10.0, max_scan_rows=10)
    # A metric none of the readings carry would still make the query read every one of them.
    with pytest.raises(QueryRefused, match="cap of 10 rows"):
        query(store, "r-1", T0, T0 + 100, every=10.0, max_scan_rows=10, metric="cycle_time_s")


def test_reads_run_in_other_threads_while_writing(store: Store) -> None:
    errors: list[BaseException] = []
    seen: dict[int, list[int]] = {k: [] for k in range(3)}

    def reader(k: int) -> None:
        try:
            for _ in range(50):
                seen[k].append(len(query(store, "r-1", T0, T0 + 10_000)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in seen]
    for t in threads:
        t.start()
    for i in range(50):
        store.write([tele("r-1", i + 1, (T0 + i, 0.5))], [])
    for t in threads:
        t.join()
    assert errors == []
    for counts in seen.values():  # each reader saw whole commits, never going backwards
        assert counts == sorted(counts)
        assert counts[-1] <= 50
    assert len(query(store, "r-1", T0, T0 + 10_000)) == 50
