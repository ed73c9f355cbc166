"""Ctrl-C stops a ``factory`` command in order however it was started — also as a background
job of a script, which starts it with SIGINT *ignored* (``sh -c 'trap "" INT; exec …'`` is
what such a job inherits): the commands install their own SIGINT and SIGTERM handlers."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from brokers import BrokerHandle, require_broker

from broker_config.embedded import free_port
from broker_config.layout import read_running

pytestmark = pytest.mark.integration

FACTORY = (sys.executable, "-m", "factory.cli")
#: Bounds of the probes below (generous: a loaded machine starts Python slowly).
START_S, STOP_S = 60.0, 30.0


class IgnoringSigint:
    """A ``factory`` command started with SIGINT ignored, in a process group of its own."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        command = shlex.join([*FACTORY, *args])
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                ["sh", "-c", f"trap '' INT; exec {command}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + START_S
        while text not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.05)

    def interrupt(self) -> int:
        os.kill(self.process.pid, signal.SIGINT)
        return self.process.wait(STOP_S)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def started() -> Iterator[list[IgnoringSigint]]:
    processes: list[IgnoringSigint] = []
    yield processes
    for process in processes:
        process.kill()


def test_broker_with_sigint_ignored_stops_in_order(
    tmp_path: Path, started: list[IgnoringSigint]
) -> None:
    require_broker("amqtt")
    state_dir, port = tmp_path / "state", free_port()
    broker = IgnoringSigint(
        tmp_path / "broker.log", "broker", "--impl", "amqtt", "--port", str(port),
        "--state-dir", str(state_dir),
    )  # fmt: skip
    started.append(broker)
    broker.wait_for("listening on")
    running = read_running(state_dir)
    assert running is not None
    assert broker.interrupt() == 0, broker.output()
    assert "stopping the broker" in broker.output()
    assert read_running(state_dir) is None  # it stopped its broker process too
    with pytest.raises(ProcessLookupError):
        os.kill(running.pid, 0)


def test_simulate_with_sigint_ignored_stops_in_order(
    amqtt_broker: BrokerHandle, tmp_path: Path, started: list[IgnoringSigint]
) -> None:
    robots = IgnoringSigint(
        tmp_path / "simulate.log", "simulate", "--broker", amqtt_broker.url,
        "--state-dir", str(amqtt_broker.state_dir),
    )  # fmt: skip
    started.append(robots)
    robots.wait_for("robots connected")
    assert robots.interrupt() == 0, robots.output()
    assert "stopping: robots publish OFFLINE" in robots.output()
    assert "done:" in robots.output()
