"""Overload without loss, end to end: robots as fast as possible, ingest deliberately slower.

Mosquitto runs with our config but a queue of :data:`QUEUE` messages per session instead of
100,000, so that the service's queue would overflow within a second of the robots' pace; the
service (the app with its lifespan, on its own SQLite file) commits one message per batch after
waiting for more (a slow store, without mocking one). With flow control the robots wait for it:
every reading made is stored exactly once and Mosquitto never logs a drop. Without it (window 0)
the same run loses readings, which shows the bound is real.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest
from brokers import start_session_broker

from api.app import create_app
from api.settings import Settings
from broker_config.embedded import find_mosquitto, free_port
from simulator.devices.run import LiveFactory
from simulator.model.scenario import Scenario, load_scenario, parse_scenario

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

QUEUE = 200
WINDOW = 60
#: Simulated run: three robots, a reading (with its truth) every 300 s: ~1,100 messages.
RUN_S = 36 * 3600.0
DROPPED = "Outgoing messages are being dropped"
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout_s} s: {what}")
        time.sleep(0.05)


@contextmanager
def small_queue_mosquitto(state_dir: Path) -> Iterator[tuple[int, Path]]:
    """Mosquitto with the session broker's config and logins, its queue bound set to QUEUE."""
    if find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    rendered = start_session_broker("mosquitto", state_dir)
    rendered.stop()
    config = rendered.files.config
    port = free_port()
    lines = [
        f"max_queued_messages {QUEUE}"
        if line.startswith("max_queued_messages ")
        else line.replace(str(rendered.port), str(port))
        if line.startswith("listener ")
        else line
        for line in config.read_text().splitlines()
    ]
    config.write_text("\n".join(lines) + "\n")
    log = state_dir / "small-queue.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(find_mosquitto()), "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def accepting() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            except OSError:
                return False
            return True

        eventually(accepting, "mosquitto accepts connections", 15.0)
        yield port, rendered.files.log_file
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15.0)


def scenario_for(site: str) -> Scenario:
    data = load_scenario().model_dump()
    data["site"] = site
    data["lines"] = [
        {
            "id": "line-1",
            "area": "area-1",
            "robots": [{"id": r, "kind": "welder"} for r in ("weld-01", "weld-02", "weld-03")],
        }
    ]
    return parse_scenario(data, "overload scenario")


def stored(db: Path) -> tuple[int, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        rows = con.execute("SELECT count(*) FROM telemetry").fetchone()[0]
        distinct = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT robot, boot, seq, idx FROM telemetry)"
        ).fetchone()[0]
    return int(rows), int(distinct)


def refused(db: Path) -> dict[str, int]:
    """The service's dead letters by reason (the clock guard's ``clock``, say)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        return dict(con.execute("SELECT reason, count FROM reject_counts").fetchall())


def run_overloaded(tmp_path: Path, topic_site: str, window: int) -> tuple[int, int, int, str]:
    """Readings made, rows and distinct readings stored, and Mosquitto's log, after a run
    (with no window: once Mosquitto has said it drops messages)."""
    state_dir = tmp_path / "state"
    db = tmp_path / "f.db"
    scenario = scenario_for(topic_site)
    with small_queue_mosquitto(state_dir) as (port, log_file):
        settings = Settings(
            mqtt_topic_filter=f"factory/{topic_site}/#",
            state_dir=state_dir,
            db_path=db,
            broker_url=f"mqtt://127.0.0.1:{port}",
            mqtt_client_id=f"svc-{os.urandom(4).hex()}",
            mqtt_reconnect_min_s=0.1,
            mqtt_reconnect_max_s=1.0,
            # Slow ingest: one message a commit, each after waiting 5 ms for more.
            ingest_batch_max_messages=1,
            ingest_batch_max_wait_ms=5.0,
            ingest_progress_interval_s=0.05,
        )
        with TestClient(create_app(settings, scenario=scenario)) as client:
            eventually(lambda: client.get("/readyz").status_code == 200, "service ready", 15.0)
            live = LiveFactory(
                scenario,
                seed=3,
                factor=0,
                host="127.0.0.1",
                port=port,
                state_dir=state_dir,
                flow_window=window,
            )
            try:
                live.start(duration_s=RUN_S)
                assert live.wait(240.0), "the simulation did not end"
            finally:
                live.stop()
            assert live.error is None
            made = live.readings_made
            if window:
                deadline = time.monotonic() + 120.0
                while stored(db)[1] < made:
                    if time.monotonic() > deadline:
                        pytest.fail(
                            f"within 120 s: {stored(db)[1]} of {made} readings stored; "
                            f"refused: {refused(db)}, broker log: {log_file.read_text()[-2000:]}"
                        )
                    time.sleep(0.05)
                assert live.flow is not None
                assert live.flow.max_outstanding > 0
            else:
                eventually(lambda: DROPPED in log_file.read_text(), "a drop at the broker", 60.0)
        broker_log = log_file.read_text(errors="replace")
    rows, distinct = stored(db)
    return made, rows, distinct, broker_log


def test_robots_wait_for_a_slow_service_and_nothing_is_lost(
    tmp_path: Path, topic_site: str
) -> None:
    made, rows, distinct, broker_log = run_overloaded(tmp_path, topic_site, WINDOW)
    assert made > 3 * QUEUE  # far more than the broker could have queued for the service
    assert distinct == made
    assert rows == distinct  # each (robot, boot, seq, reading) stored once
    assert DROPPED not in broker_log


def test_without_flow_control_the_same_run_overflows_the_broker(
    tmp_path: Path, topic_site: str
) -> None:
    made, _, distinct, broker_log = run_overloaded(tmp_path, topic_site, 0)
    assert DROPPED in broker_log
    assert distinct < made
