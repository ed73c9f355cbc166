"""``factory simulate`` never fails silently: no broker, refused logins and partial connects are
said in one line naming the broker, with a non-zero exit where nothing could be sent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from brokers import BrokerHandle

from broker_config.embedded import free_port
from simulator.model.scenario import load_scenario

pytestmark = pytest.mark.integration

SIMULATE = (sys.executable, "-m", "factory.cli", "simulate")
#: The issue's bound: a user learns within this that the broker cannot be used.
SAY_IT_WITHIN_S = 30.0
#: A stop of a fleet whose robots are mostly in reconnect back-off.
STOP_WITHIN_S = 20.0


def simulate(*args: str, timeout_s: float = SAY_IT_WITHIN_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SIMULATE, *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
        start_new_session=True,
    )


def logins_with_wrong_passwords(broker: BrokerHandle, target: Path, every: int = 1) -> Path:
    """A state dir with the broker's logins, every ``every``-th robot's password wrong."""
    data = json.loads((broker.state_dir / "credentials.json").read_text())
    robots = sorted(name for name in data["users"] if name != "service")
    for index, robot in enumerate(robots):
        if index % every == 0:
            data["users"][robot]["password"] = "not-the-password"
    target.mkdir()
    (target / "credentials.json").write_text(json.dumps(data))
    return target


def test_no_broker_fails_at_once_naming_it(tmp_path: Path) -> None:
    """The issue's command, in a fresh directory (no logins yet either: the broker comes first)."""
    closed = free_port()
    result = simulate(
        "--state-dir", str(tmp_path / "fresh"), "--broker", f"mqtt://127.0.0.1:{closed}",
        "--duration", "1h",
    )  # fmt: skip
    assert result.returncode == 1, result
    (line,) = result.stderr.strip().splitlines()
    assert f"cannot reach the broker at 127.0.0.1:{closed} (Connection refused)" in line
    assert "done:" not in result.stdout


def test_refused_logins_fail_naming_the_broker_and_the_reason(
    amqtt_broker: BrokerHandle, tmp_path: Path
) -> None:
    state_dir = logins_with_wrong_passwords(amqtt_broker, tmp_path / "wrong")
    result = simulate(
        "--state-dir", str(state_dir), "--broker", amqtt_broker.url, "--duration", "1h"
    )  # fmt: skip
    assert result.returncode == 1, result
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no robot could connect to the broker at {amqtt_broker.host}")
    assert f":{amqtt_broker.port}" in last
    assert "refused its login (Not authorized)" in last
    assert "done:" not in result.stdout


def test_some_robots_refused_are_counted_and_named(
    amqtt_broker: BrokerHandle, tmp_path: Path
) -> None:
    state_dir = logins_with_wrong_passwords(amqtt_broker, tmp_path / "half", every=2)
    result = simulate(
        "--state-dir", str(state_dir), "--broker", amqtt_broker.url, "--duration", "2h",
        "--factor", "0",
    )  # fmt: skip
    assert result.returncode == 0, result
    warning = next(line for line in result.stdout.splitlines() if "warning:" in line)
    assert f"6 of 12 robots connected to {amqtt_broker.host}:{amqtt_broker.port}" in warning
    assert "the broker refused its login (Not authorized)" in warning
    assert "done:" in result.stdout


def test_robots_that_cannot_connect_are_reported_live_and_a_stop_takes_seconds(
    mosquitto_broker: BrokerHandle, tmp_path: Path
) -> None:
    """120 robots, of which only the scenario's 12 have logins the broker knows: the other 108
    are refused and keep retrying with back-off. While it runs, ``factory simulate`` says how many
    are online and refused and why; SIGTERM stops all 120 within seconds (not one robot's
    back-off after another), publishing OFFLINE for the connected ones."""
    state_dir = tmp_path / "more"
    state_dir.mkdir()
    data = json.loads((mosquitto_broker.state_dir / "credentials.json").read_text())
    for robot in load_scenario("default?robots=120").robots:
        data["users"].setdefault(robot.id, {"password": "unknown to the broker"})
    (state_dir / "credentials.json").write_text(json.dumps(data))
    process = subprocess.Popen(
        [*SIMULATE, "--state-dir", str(state_dir), "--broker", mosquitto_broker.url,
         "--robots", "120", "--factor", "60", "--duration", "7d"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60.0
        status = None
        while status is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            # Said on the first tick and again on every change (a loaded machine may show
            # some robots still connecting first).
            if "12 of 120 robots online" in line and "108 refused (" in line:
                status = line
        assert status is not None, "".join(lines)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        rest, _ = process.communicate(timeout=60.0)
        stop_s = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, "".join(lines) + rest
    assert "done:" in rest
    # The bound is generous for a loaded machine; one robot after another took minutes.
    assert stop_s < STOP_WITHIN_S, stop_s
