"""``factory up --workshop``: it starts at the workshop pace, sets that pace on the broker (so a
pace an earlier run left there cannot override it), feeds the protocol inspector from
Mosquitto's packet log, and prints what participants need."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
import pytest

from broker_config.embedded import free_port
from factory.up import WORKSHOP_FACTOR

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_TIMEOUT_S = 60.0


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=2.0) as response:
        return json.load(response)


def test_workshop_mode_starts_at_the_workshop_pace(tmp_path: Path) -> None:
    mqtt_port = free_port()
    while (http_port := free_port()) == mqtt_port:
        pass
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "factory.cli", "up", "--workshop", "--bind", "127.0.0.1",
             "--state-dir", str(tmp_path / "state"),
             "--mqtt-port", str(mqtt_port), "--http-port", str(http_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed however the test ends
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Workshop mode" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        clock = get(f"http://127.0.0.1:{http_port}/api/clock")
        assert clock["factor"] == WORKSHOP_FACTOR
        assert clock["paused"] is False
        text = log.read_text(errors="replace")
        assert f"factor {WORKSHOP_FACTOR:g}" in text
        assert f"http://127.0.0.1:{http_port}/" in text
        assert f"MQTT 127.0.0.1:{mqtt_port}" in text
        config = get(f"http://127.0.0.1:{http_port}/dashboard/config.json")
        assert config["protocol_log"] is True
        assert config["broker_ws_url"].startswith("ws://127.0.0.1:")
        assert f"join http://127.0.0.1:{http_port}/join" in text
        # The robots' packets, as the broker logged them, reach the inspector's channel (the
        # service publishes too — its pace and its hearing probe — so wait for a robot's).
        url = f"http://127.0.0.1:{http_port}/api/stream"
        with httpx.stream("GET", url, params={"channel": "mqtt"}, timeout=10.0) as response:
            for line in response.iter_lines():
                if line.startswith("data: ") and '"direction":"in"' in line:
                    event = json.loads(line[len("data: ") :])
                    if str(event.get("client", "")).startswith("robot-"):
                        break
                assert time.monotonic() < deadline + START_TIMEOUT_S, "no PUBLISH on mqtt"
        assert event["kind"] == "publish"
        assert event["client"].startswith("robot-")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(60.0)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
