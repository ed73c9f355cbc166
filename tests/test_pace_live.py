"""Pace control end to end, against both brokers: ``POST /api/clock`` pauses the robots (another
part of the system, reached over MQTT) and the service's clock with them; resuming continues with
no gap in ``seq`` and no reading lost or re-timed.

The pause is observed, not assumed: the test waits (bounded) until the robots' ``seq`` stops
moving, then probes over a window of wall time that neither ``seq`` nor the service clock moves.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
from brokers import BrokerHandle, Capture

from api.app import create_app
from api.settings import Settings
from simulator.devices.run import LiveFactory
from simulator.model.scenario import Scenario, load_scenario, parse_scenario

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

ROBOTS = ("weld-01", "weld-02")
KEY = {"X-API-Key": "pace-key"}
SAMPLE_S = 60.0
FACTOR = 600.0  # a reading every 0.1 s of wall time per robot
#: Wall time the factory must stand still (the issue's acceptance), probed every PROBE_S.
PAUSE_WINDOW_S = 10.0
PROBE_S = 0.5


def scenario_for(site: str) -> Scenario:
    data = load_scenario().model_dump()
    data["site"] = site
    data["telemetry_batch"] = 1
    data["kinds"] = {
        "welder": {
            **data["kinds"]["welder"],
            "initial_age_h_max": 0.0,
            "sample_interval_s": SAMPLE_S,
        }
    }
    robots = [{"id": r, "kind": "welder"} for r in ROBOTS]
    data["lines"] = [{"id": "line-1", "area": "area-1", "robots": robots}]
    return parse_scenario(data, "pace scenario")


def eventually(probe: Callable[[], Any], what: str, timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout_s} s: {what}")
        time.sleep(0.05)
    return result


def payloads(watcher: Capture, robot: str) -> list[dict[str, Any]]:
    return [orjson.loads(m.payload) for m in watcher.messages if f"/{robot}/" in m.topic]


def newest_seq(watcher: Capture) -> dict[str, int]:
    return {r: max((p["seq"] for p in payloads(watcher, r)), default=0) for r in ROBOTS}


@contextmanager
def running(broker: BrokerHandle, site: str, db: Path) -> Iterator[tuple[TestClient, Capture]]:
    scenario = scenario_for(site)
    settings = Settings(
        mqtt_topic_filter=f"factory/{site}/#",
        state_dir=broker.state_dir,
        db_path=db,
        broker_url=broker.url,
        mqtt_protocol="mqtt5" if broker.impl == "mosquitto" else "mqtt311",
        mqtt_client_id=f"svc-{os.urandom(4).hex()}",
        api_key=KEY["X-API-Key"],
    )
    # The instructor's login: it also receives truth, so every seq a robot uses is seen.
    watcher = broker.capture(f"factory/{site}/+/+/+/+", who="instructor")
    with TestClient(create_app(settings, scenario=scenario)) as client:
        eventually(lambda: client.get("/readyz").status_code == 200, "service ready")
        live = LiveFactory(
            scenario,
            seed=5,
            factor=FACTOR,
            host=broker.host,
            port=broker.port,
            state_dir=broker.state_dir,
        )
        try:
            live.start()
            yield client, watcher
        finally:
            live.stop()


def test_pause_stops_robots_and_clock_and_resume_loses_nothing(
    broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    with running(broker, topic_site, tmp_path / "pace.db") as (client, watcher):
        assert client.post("/api/clock", json={"paused": True}, headers=KEY).status_code == 409
        assert client.post("/api/clock", json={"paused": True, "factor": FACTOR}).status_code == 401
        eventually(lambda: min(newest_seq(watcher).values()) >= 20, "robots sampling")

        answer = client.post("/api/clock", json={"paused": True, "factor": FACTOR}, headers=KEY)
        assert answer.status_code == 202, answer.text
        assert answer.json()["paused"] is True

        # The pause reaches the robots over MQTT: wait until seq holds for three probes.
        held: list[dict[str, int]] = []

        def settled() -> bool:
            held.append(newest_seq(watcher))
            time.sleep(PROBE_S)
            return len(held) >= 3 and held[-1] == held[-2] == held[-3]

        eventually(settled, "the robots' seq stops moving")
        seq_at_pause = held[-1]
        clock_at_pause = client.get("/api/clock").json()
        assert clock_at_pause["paused"] is True
        assert clock_at_pause["clock"] is not None
        window_end = time.monotonic() + PAUSE_WINDOW_S
        probes = 0
        while time.monotonic() < window_end:
            time.sleep(PROBE_S)
            probes += 1
            assert newest_seq(watcher) == seq_at_pause, "a paused robot published"
            assert client.get("/api/clock").json()["clock"] == clock_at_pause["clock"]
        assert probes >= PAUSE_WINDOW_S / PROBE_S - 1

        answer = client.post("/api/clock", json={"paused": False}, headers=KEY)
        assert answer.status_code == 202
        assert answer.json()["factor"] == FACTOR
        eventually(
            lambda: all(newest_seq(watcher)[r] >= seq_at_pause[r] + 10 for r in ROBOTS),
            "the robots carry on after the resume",
        )
        eventually(
            lambda: client.get("/api/clock").json()["clock"] > clock_at_pause["clock"],
            "the service clock moves again",
        )

    for robot in ROBOTS:
        sent = payloads(watcher, robot)
        boots = {p["boot"] for p in sent if p["seq"] > 0}
        assert len(boots) == 1
        seqs = sorted({p["seq"] for p in sent if p["seq"] > 0})
        assert seqs == list(range(1, seqs[-1] + 1)), f"{robot}: a gap in seq"
        readings = [r["ts"] for p in sent if "readings" in p for r in p["readings"]]
        assert readings == sorted(readings)
        assert all(b - a == SAMPLE_S for a, b in pairwise(readings)), (
            f"{robot}: a reading lost or re-timed across the pause"
        )
