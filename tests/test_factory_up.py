"""``factory up``, run as a user runs it: the whole demo comes up, stops cleanly, and resumes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from broker_config.embedded import die_with_parent, free_port
from broker_config.tls import ensure_tls
from factory.up import broker_ws_url, choose_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def get(url: str, context: ssl.SSLContext | None = None) -> Any:
    with urllib.request.urlopen(url, timeout=2.0, context=context) as response:
        return json.load(response)


UP = (sys.executable, "-m", "factory.cli", "up")
#: The README's first command, as a newcomer runs it.
DEMO = (sys.executable, str(Path(__file__).resolve().parents[1] / "dev.py"), "demo")


class Up:
    """One ``factory up`` process on free ports with its own state dir; with ``tls`` it runs
    ``--security tls`` and :meth:`get` verifies the service with the state dir's local CA."""

    def __init__(
        self,
        state_dir: Path,
        mqtt_port: int,
        http_port: int,
        command: tuple[str, ...] = UP,
        tls: bool = False,
    ) -> None:
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{http_port}"
        self.ca = state_dir / "tls" / "ca.pem"
        self._tls = tls
        self.log = state_dir.parent / f"up-{time.monotonic_ns()}.log"
        self._out = self.log.open("wb")
        self.process = subprocess.Popen(
            [*die_with_parent(), *command, "--state-dir", str(state_dir),
             "--mqtt-port", str(mqtt_port), "--http-port", str(http_port),
             *(("--security", "tls") if tls else ())],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the test signals it, then kills the group
        )  # fmt: skip

    def get(self, path: str) -> Any:
        context = ssl.create_default_context(cafile=str(self.ca)) if self._tls else None
        return get(f"{self.base}{path}", context)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.output():
            assert self.process.poll() is None, f"factory up exited:\n{self.output()}"
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.1)

    def robots_with_readings(self, count: int, timeout_s: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"factory up exited:\n{self.output()}"
            try:
                robots: list[dict[str, Any]] = self.get("/api/robots")
            except OSError:
                robots = []
            if sum(1 for r in robots if r.get("latest")) >= count:
                return robots
            time.sleep(0.2)
        pytest.fail(f"no readings from {count} robots within {timeout_s} s:\n{self.output()}")

    def interrupt(self, timeout_s: float = 120.0) -> int:
        """Ctrl-C; wait (bounded) for it to stop in order; kill its group if it does not."""
        try:
            self.process.send_signal(signal.SIGINT)
            return self.process.wait(timeout_s)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self._out.close()


@pytest.fixture
def ports() -> tuple[int, int]:
    mqtt_port = free_port()
    while (http_port := free_port()) == mqtt_port:
        pass
    return mqtt_port, http_port


def test_up_runs_stops_cleanly_and_resumes(tmp_path: Path, ports: tuple[int, int]) -> None:
    state_dir = tmp_path / "state"
    first = Up(state_dir, *ports, command=DEMO)  # Ctrl-C must reach `factory up` itself
    try:
        robots = first.robots_with_readings(count=12)
        assert len(robots) == 12
        assert "dashboard" in first.output()
    finally:
        code = first.interrupt()
    assert code == 0, first.output()
    assert "stopped; data kept" in first.output()
    # What it printed to copy works as printed: with the state dir, one command per line.
    assert f"credentials --state-dir {state_dir} ROBOT|service" in first.output()
    # The robots said goodbye themselves (OFFLINE, "shut down"), and the service committed it
    # before it stopped.
    with sqlite3.connect(state_dir / "factory.db") as db:
        states = dict(db.execute("SELECT robot, state_reason FROM robots WHERE state = 'OFFLINE'"))
    assert len(states) == 12, states
    assert set(states.values()) == {"shut down"}

    second = Up(state_dir, *ports)
    try:
        second.wait_for_output("Ctrl-C stops everything")
        assert "resumed at simulated" in second.output()
        robots_before = second.robots_with_readings(count=12)
        newest_before = max(r["last_seen"] for r in robots_before)
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline:
            robots = second.get("/api/robots")
            if max(r["last_seen"] for r in robots) > newest_before + 3600.0:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the resumed simulation did not move the clock forward")
    finally:
        assert second.interrupt() == 0, second.output()


def test_up_on_tls_serves_https_that_only_the_local_ca_verifies(
    tmp_path: Path, ports: tuple[int, int]
) -> None:
    """``factory up --security tls``: the API and dashboard are HTTPS with the local CA's
    certificate; plain HTTP and a client trusting another CA get nothing."""
    state_dir = tmp_path / "state"
    up = Up(state_dir, *ports, tls=True)
    try:
        deadline = time.monotonic() + 60.0
        while True:  # probing as a participant would: https, verified with the CA file
            assert up.process.poll() is None, f"factory up exited:\n{up.output()}"
            assert time.monotonic() < deadline, f"no https /readyz:\n{up.output()}"
            try:
                if up.get("/readyz")["status"] == "ready":
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.2)
        plain = up.base.replace("https://", "http://")
        with pytest.raises(ConnectionError):  # the TLS listener drops a plain HTTP request
            get(f"{plain}/readyz")
        other_ca = ssl.create_default_context(cafile=str(ensure_tls(tmp_path / "other").ca_pem))
        with pytest.raises(urllib.error.URLError) as refused:
            get(f"{up.base}/readyz", other_ca)
        assert isinstance(refused.value.reason, ssl.SSLCertVerificationError)
        assert len(up.robots_with_readings(count=12)) == 12  # robots over mqtts, API over https
        up.wait_for_output("Ctrl-C stops everything")
        banner = up.output()
        assert f"dashboard    {up.base}/" in banner
        assert f"curl --cacert {up.ca} {up.base}/api/robots" in banner
        assert "http://" not in banner
    finally:
        assert up.interrupt() == 0, up.output()


def test_up_refuses_a_taken_http_port(tmp_path: Path, ports: tuple[int, int]) -> None:
    mqtt_port, http_port = ports
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", http_port))
        holder.listen()
        result = subprocess.run(
            [sys.executable, "-m", "factory.cli", "up", "--state-dir", str(tmp_path),
             "--mqtt-port", str(mqtt_port), "--http-port", str(http_port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"HTTP port {http_port} is already in use" in lines[0]
    assert "--http-port" in lines[0]


def test_a_taken_default_port_gives_way_but_a_chosen_one_does_not() -> None:
    """A system Mosquitto on 1883 must not stop the demo: the default moves to the next free
    port, with a note; a port the user chose is kept (and refused later if taken)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        port, note = choose_port(None, taken)
        assert port > taken
        assert f"port {taken} is taken, so {port} is used" in note
        assert choose_port(taken, taken) == (taken, "")
    free = free_port()
    assert choose_port(None, free) == (free, "")


def test_up_with_a_broker_but_no_logins_says_how_to_make_them(tmp_path: Path) -> None:
    result = subprocess.run(
        [*UP, "--state-dir", str(tmp_path / "fresh"), "--broker", "mqtt://127.0.0.1:1",
         "--http-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "holds no logins yet" in line
    assert "factory broker --write-config DIR" in line


def test_the_join_page_is_given_wss_on_the_tls_profile() -> None:
    """On ``tls`` the broker's WebSocket listener speaks TLS: a ``ws://`` address would fail in
    every participant's browser."""
    assert broker_ws_url(9001, tls=True) == "wss://127.0.0.1:9001"
    assert broker_ws_url(9001, tls=False) == "ws://127.0.0.1:9001"


def test_up_refuses_more_processes_than_lines_before_starting_anything(tmp_path: Path) -> None:
    """``--processes`` goes on to ``factory simulate``; one the fleet cannot take (a line is
    never split) is refused at once, not by the robots' process after the broker started."""
    result = subprocess.run(
        [*UP, "--state-dir", str(tmp_path), "--processes", "4", "--http-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result
    (line,) = result.stderr.strip().splitlines()
    assert "--processes 4: scenario 'default' has 3 line(s)" in line
    assert not (tmp_path / "logs").exists()
