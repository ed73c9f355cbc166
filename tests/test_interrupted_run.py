"""Ctrl-C on a test run in the middle of an integration test leaves nothing running.

A pytest of its own runs ``factory up``'s test; once the demo's processes exist (probed), the
run gets SIGINT the way a terminal sends it (to pytest's process group), and afterwards no
process the run started — ``factory up``, its broker, service and robots — is alive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from processes import describe

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
TARGET = "tests/test_factory_up.py::test_up_runs_stops_cleanly_and_resumes"
#: Bounds of the probes (a loaded machine takes a while to bring the demo up and down).
UP_S, STOP_S = 180.0, 180.0


def demo_processes(run: psutil.Process) -> list[psutil.Process]:
    found = []
    for process in run.children(recursive=True):
        try:
            command = " ".join(process.cmdline())
        except psutil.Error:
            continue
        if "factory.cli" in command or "factory up" in command or "dev.py" in command:
            found.append(process)
    return found


def is_alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def test_sigint_mid_test_leaves_no_process_of_the_run(tmp_path: Path) -> None:
    log = tmp_path / "pytest.log"
    with log.open("wb") as out:
        run = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, as a terminal's foreground job
        )
    try:
        inner = psutil.Process(run.pid)
        deadline = time.monotonic() + UP_S
        seen: dict[int, psutil.Process] = {}
        while True:  # until the demo's parts run: up, serve and simulate (and its broker)
            for process in demo_processes(inner):
                seen[process.pid] = process
            commands = " ".join(describe(p) for p in seen.values() if is_alive(p))
            if " serve " in commands and " simulate " in commands:
                break
            assert run.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, f"the demo did not come up: {commands}"
            time.sleep(0.2)
        everything = {p.pid: p for p in inner.children(recursive=True)} | seen
        os.killpg(run.pid, signal.SIGINT)  # Ctrl-C
        run.wait(STOP_S)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    output = log.read_text(errors="replace")
    assert "KeyboardInterrupt" in output or "Interrupted" in output, output
    survivors = [describe(p) for p in everything.values() if is_alive(p)]
    assert not survivors, f"still running after Ctrl-C on the test run: {survivors}\n{output}"
