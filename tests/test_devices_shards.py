"""``factory simulate --robots 24 --processes 2`` against a real Mosquitto: two worker processes,
every robot online once, the readings of all 24 robots arrive gapless, and no worker ever
outlives the command — not after Ctrl-C, not after the command is SIGKILLed; a worker that dies
is named and fails the command."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest
from brokers import BrokerHandle, Capture, handle_for, require_broker
from processes import lasting

from broker_config.embedded import BrokerProcess, free_port, start_broker
from simulator.model.scenario import load_scenario

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FLEET = "default?robots=24"
ROBOTS = [robot.id for robot in load_scenario(FLEET).robots]
#: Starting two workers (imports, 12 clients each) and connecting them, on a loaded machine.
START_S = 60.0
#: Ctrl-C to exit: every robot publishes OFFLINE, awaited against one 5 s deadline.
STOP_WITHIN_S = 20.0
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s} s: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def fleet_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A Mosquitto with logins and ACL for the 24 robots (its state dir holds them)."""
    require_broker("mosquitto")
    with lasting():
        process = start_broker(
            "mosquitto", free_port(), tmp_path_factory.mktemp("fleet"), scenario=FLEET
        )
    yield process
    process.stop()


@pytest.fixture
def broker(fleet_broker: BrokerProcess) -> Iterator[BrokerHandle]:
    handle = handle_for(fleet_broker)
    yield handle
    handle.close_clients()


class Simulate:
    """``factory simulate`` as a process in its own group, its output read as it comes."""

    def __init__(self, broker: BrokerHandle, *args: str, state_dir: Path | None = None) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "factory.cli", "simulate", "--state-dir",
             str(state_dir or broker.state_dir), "--broker", broker.url, "--robots", "24", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def said(self, text: str, timeout_s: float) -> None:
        eventually(lambda: text in self.output, f"{text!r} in:\n{self.output}", timeout_s)

    def workers(self) -> list[psutil.Process]:
        children = psutil.Process(self.process.pid).children(recursive=True)
        return [p for p in children if "simulator.devices.shard_child" in " ".join(p.cmdline())]

    def exit_code(self, timeout_s: float) -> int:
        code = self.process.wait(timeout_s)
        self._reader.join(5.0)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._reader.join(5.0)


@pytest.fixture
def run(broker: BrokerHandle) -> Iterator[Callable[..., Simulate]]:
    started: list[Simulate] = []

    def start(*args: str, state_dir: Path | None = None) -> Simulate:
        started.append(Simulate(broker, *args, state_dir=state_dir))
        return started[-1]

    yield start
    for simulate in started:
        simulate.kill()


def payloads(capture: Capture) -> list[tuple[str, dict[str, Any]]]:
    """(channel, payload) of every message sent while the capture ran (not retained ones)."""
    return [
        (m.topic.rsplit("/", 1)[1], json.loads(m.payload)) for m in capture.messages if not m.retain
    ]


def offline(capture: Capture) -> set[str]:
    """Robots that published OFFLINE themselves (a clean stop, not the broker's will)."""
    return {
        p["robot"]
        for channel, p in payloads(capture)
        if channel == "state" and p["state"] == "OFFLINE" and p["reason"] == "shut down"
    }


def gone(processes: list[psutil.Process], timeout_s: float) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    return not alive


def test_two_processes_run_the_fleet_and_ctrl_c_stops_them_all(
    broker: BrokerHandle, run: Callable[..., Simulate]
) -> None:
    capture = broker.capture("factory/#", who="service")
    simulate = run("--processes", "2", "--factor", "3600", "--duration", "30d")
    simulate.said("all 24 robots connected", START_S)
    workers = simulate.workers()
    assert len(workers) == 2, simulate.output
    assert "in 2 processes (12+12 robots)" in simulate.output

    def telemetry_from_all() -> bool:
        sent = {p["robot"] for channel, p in payloads(capture) if channel == "telemetry"}
        return sent == set(ROBOTS)

    # Each worker has 12 of them (line-1..3 and line-1-c1..3-c1): both publish.
    eventually(telemetry_from_all, "readings of all 24 robots, of both workers", START_S)
    simulate.said("24 of 24 robots online", START_S)
    started = time.monotonic()
    os.kill(simulate.process.pid, signal.SIGINT)  # Ctrl-C reaches the command, not its workers
    assert simulate.exit_code(STOP_WITHIN_S) == 0, simulate.output
    assert time.monotonic() - started < STOP_WITHIN_S
    assert "done:" in simulate.output
    assert gone(workers, 1.0), [w.pid for w in workers]
    eventually(lambda: offline(capture) == set(ROBOTS), "OFFLINE from every robot", 10.0)

    births: dict[str, int] = defaultdict(int)
    boots: dict[str, set[str]] = defaultdict(set)
    seqs: dict[str, set[int]] = defaultdict(set)
    for channel, payload in payloads(capture):
        robot = payload["robot"]
        births[robot] += channel == "birth"
        boots[robot].add(payload["boot"])
        seqs[robot].add(payload["seq"])
    assert set(births) == set(ROBOTS)
    assert set(births.values()) == {1}, births  # online once: one connect, one boot each
    assert {len(b) for b in boots.values()} == {1}
    for robot in ROBOTS:  # every message each robot made arrived: seq 1..n, no gap
        assert seqs[robot] == set(range(1, max(seqs[robot]) + 1)), robot
    assert all(max(seqs[robot]) > 2 for robot in ROBOTS)


def test_workers_stop_when_the_command_is_killed(
    broker: BrokerHandle, run: Callable[..., Simulate]
) -> None:
    capture = broker.capture("factory/#", who="service")
    simulate = run("--processes", "2", "--factor", "60", "--duration", "30d")
    simulate.said("all 24 robots connected", START_S)
    workers = simulate.workers()
    assert len(workers) == 2, simulate.output
    simulate.process.kill()  # SIGKILL: no chance to stop anything itself
    simulate.process.wait()
    assert gone(workers, STOP_WITHIN_S), [w.pid for w in workers if w.is_running()]
    # They stopped as on a stop: every robot said OFFLINE itself.
    eventually(lambda: offline(capture) == set(ROBOTS), "OFFLINE from every robot", 10.0)


def test_a_worker_that_dies_fails_the_command_naming_it(
    broker: BrokerHandle, run: Callable[..., Simulate]
) -> None:
    simulate = run("--processes", "2", "--factor", "60", "--duration", "30d")
    simulate.said("all 24 robots connected", START_S)
    first, second = sorted(simulate.workers(), key=lambda p: p.create_time())
    second.kill()
    assert simulate.exit_code(STOP_WITHIN_S + 10.0) == 1, simulate.output
    assert gone([first], 1.0)
    error = simulate.lines[-1]
    assert error.startswith(f"error: process 2 of 2 (pid {second.pid}: lines line-1-c1 …"), error
    assert "ended without a report (exit code -9)" in error
    assert "process 1 of 2" not in error  # the other stopped as told


def test_more_processes_than_lines_is_refused_naming_the_limit(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "factory.cli", "simulate", "--state-dir", str(tmp_path),
         "--broker", f"mqtt://127.0.0.1:{free_port()}", "--processes", "4"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )  # fmt: skip
    assert result.returncode == 2, result
    (line,) = result.stderr.strip().splitlines()
    assert line == (
        "error: --processes 4: scenario 'default' has 3 line(s) and a line is never split "
        "across processes (at most 3; --robots N adds lines)"
    )


def simulate_with(state_dir: Path, port: int, processes: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factory.cli", "simulate", "--state-dir", str(state_dir),
         "--broker", f"mqtt://127.0.0.1:{port}", "--robots", "24", "--processes", processes],
        capture_output=True,
        text=True,
        timeout=START_S,
        check=False,
        start_new_session=True,
    )  # fmt: skip


def test_a_worker_that_cannot_start_says_why_as_one_process_would(tmp_path: Path) -> None:
    """No logins in the state dir: each worker's LiveFactory refuses, and the command says so
    in the same words and with the same exit code as without --processes."""
    with socket.socket() as listener:  # something answers TCP where the broker should be
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        sharded, single = (simulate_with(tmp_path, port, p) for p in ("2", "1"))
    assert sharded.returncode == single.returncode == 2, (sharded, single)
    assert sharded.stderr.strip().splitlines()[-1] == single.stderr.strip().splitlines()[-1]
    assert f"no credentials in {tmp_path}" in sharded.stderr


def test_refused_robots_of_both_workers_are_counted_together(
    broker: BrokerHandle, run: Callable[..., Simulate], tmp_path: Path
) -> None:
    """Every other robot's password is wrong: the warning and the live counts are the fleet's,
    added up over both workers, with the broker's reason."""
    data = json.loads((broker.state_dir / "credentials.json").read_text())
    for robot in ROBOTS[::2]:
        data["users"][robot]["password"] = "not-the-password"
    state_dir = tmp_path / "half-wrong"
    state_dir.mkdir()
    (state_dir / "credentials.json").write_text(json.dumps(data))
    simulate = run("--processes", "2", "--factor", "3600", "--duration", "7d", state_dir=state_dir)
    simulate.said(f"12 of 24 robots connected to {broker.host}:{broker.port}", START_S)
    simulate.said("12 of 24 robots online, 12 refused (", START_S)
    os.kill(simulate.process.pid, signal.SIGTERM)
    assert simulate.exit_code(STOP_WITHIN_S) == 0, simulate.output
    assert "done:" in simulate.output
