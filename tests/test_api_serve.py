"""``factory serve`` as a user runs it: a real process, real ports, one-line errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from broker_config.credentials import ensure_credentials
from broker_config.embedded import find_mosquitto, free_port, start_broker
from simulator.model.scenario import load_scenario

#: Bound of the wait for the service to answer (a loaded machine imports slowly).
STARTUP_S = 60.0


def serve(
    state_dir: Path, port: int, broker_port: int, log: IO[str] | None = None, **env: str
) -> subprocess.Popen[str]:
    """Start ``factory serve``; output goes to ``log`` (a long run) or to pipes (a quick one)."""
    command = [sys.executable, "-m", "factory.cli", "serve", "--state-dir", str(state_dir)]
    command += ["--port", str(port), "--broker", f"mqtt://127.0.0.1:{broker_port}"]
    return subprocess.Popen(
        command,
        stdout=log or subprocess.PIPE,
        stderr=subprocess.STDOUT if log else subprocess.PIPE,
        text=True,
        env=os.environ | env,
        start_new_session=True,  # its own group: the test stops it, then the group
    )


def readiness(url: str) -> httpx.Response:
    """The first answer of ``/readyz`` (the server may still be starting)."""
    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            return httpx.get(f"{url}/readyz", timeout=2.0)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                pytest.fail(f"nothing answered on {url} within {STARTUP_S} s")
            time.sleep(0.1)


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    ensure_credentials(tmp_path, load_scenario().robots)
    return tmp_path


@pytest.fixture
def stopped() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes to stop (by pid) when the test ends."""
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()  # a pipe left open warns in a later test


def test_a_taken_port_is_a_one_line_error(state_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = serve(state_dir, port, free_port())
        _, stderr = process.communicate(timeout=STARTUP_S)
    assert process.returncode == 2
    assert stderr.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use; pick another with --port N"
    ]


def test_missing_credentials_say_how_to_make_them(tmp_path: Path) -> None:
    process = serve(tmp_path, free_port(), free_port())
    _, stderr = process.communicate(timeout=STARTUP_S)
    assert process.returncode == 2
    [line] = stderr.strip().splitlines()
    assert line.startswith("error: no service credentials in")
    assert "factory broker --state-dir" in line


@pytest.mark.integration
def test_starts_not_ready_without_a_broker_then_connects_when_it_appears(
    state_dir: Path, stopped: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    broker_port, http_port = free_port(), free_port()
    impl = "mosquitto" if find_mosquitto() else "amqtt"
    env = {} if impl == "mosquitto" else {"FACTORY_MQTT_PROTOCOL": "mqtt311"}
    log = (tmp_path / "serve.log").open("w")
    process = serve(state_dir, http_port, broker_port, log, **env)
    stopped.append(process)
    log.close()  # the child has its own copy
    url = f"http://127.0.0.1:{http_port}"
    response = readiness(url)
    assert response.status_code == 503
    assert f"cannot reach the broker at 127.0.0.1:{broker_port}" in response.json()["problems"][0]
    assert httpx.get(f"{url}/healthz").status_code == 200

    with start_broker(impl, broker_port, state_dir):
        deadline = time.monotonic() + STARTUP_S  # paho's back-off is capped at 30 s by default
        while readiness(url).status_code != 200:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline + 30, "never became ready"
            time.sleep(0.2)
        assert (state_dir / "factory.db").exists()
        assert (state_dir / "api-key").stat().st_mode & 0o077 == 0


@pytest.mark.integration
def test_a_stop_ends_open_streams_at_once_and_cleanly(
    state_dir: Path, stopped: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    """Ctrl-C with a dashboard open: the stream gets its last word and the process exits well
    inside uvicorn's graceful timeout, with no error logged. The broker comes from
    ``FACTORY_BROKER_URL`` (the settings table's name for it), not from ``--broker``."""
    broker_port, http_port = free_port(), free_port()
    impl = "mosquitto" if find_mosquitto() else "amqtt"
    env = {"FACTORY_BROKER_URL": f"mqtt://127.0.0.1:{broker_port}"}
    env |= {} if impl == "mosquitto" else {"FACTORY_MQTT_PROTOCOL": "mqtt311"}
    command = [sys.executable, "-m", "factory.cli", "serve", "--state-dir", str(state_dir)]
    log_path = tmp_path / "serve.log"
    with start_broker(impl, broker_port, state_dir), log_path.open("w") as log:
        process = subprocess.Popen(
            [*command, "--port", str(http_port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ | env,
            start_new_session=True,
        )
        stopped.append(process)
        url = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + STARTUP_S
        while readiness(url).status_code != 200:
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        lines: list[str] = []
        with httpx.stream("GET", f"{url}/api/stream", timeout=10.0) as response:
            chunks = response.iter_lines()
            lines.append(next(chunks))  # connected: the subscription exists
            process.send_signal(signal.SIGINT)
            lines += list(chunks)
        process.wait(timeout=60)
    output = log_path.read_text()
    assert process.returncode in (0, 130), output  # 130: stopped by SIGINT, as a shell reports
    assert any("shutting down" in line for line in lines), lines
    # Inside the graceful timeout: uvicorn did not have to cut a task (no wall-clock guess;
    # it logs this when the timeout is what ended the stream).
    assert "timeout graceful shutdown exceeded" not in output, output
    assert "Traceback" not in output
    assert "ERROR" not in output
    assert f"broker mqtt://127.0.0.1:{broker_port}" in output
