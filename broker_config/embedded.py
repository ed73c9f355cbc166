"""Run a local MQTT broker with the project's security model: Mosquitto if installed, else amqtt.

Programmatic use (the demo runner, the tests)::

    broker = start_broker(impl="auto", port=1883, state_dir=Path(".factory"))  # waits until ready
    ...  # broker.url == "mqtt://127.0.0.1:1883"; broker.impl in {"mosquitto", "amqtt"}
    broker.stop()

Either broker runs as a child process in its own session (Ctrl-C in a terminal reaches only the
parent, which then stops the broker), with its config rendered into ``STATE_DIR/broker/`` from
``broker_config`` and the users of ``STATE_DIR/credentials.json``. Readiness is a real MQTT
CONNECT answered by a CONNACK (:mod:`broker_config.probe`). :mod:`broker_config.command` is the
foreground ``factory broker`` command.
"""

from __future__ import annotations

import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Literal

from broker_config.addresses import lan_addresses
from broker_config.config_files import BrokerFiles, write_local_files
from broker_config.credentials import CredentialsError, ensure_credentials
from broker_config.layout import (
    DEFAULT_HOST,
    RunningBroker,
    clear_running,
    read_running,
    write_running,
)
from broker_config.ports import free_port, port_is_free, suggest_port
from broker_config.probe import connack_code
from broker_config.profiles import DEFAULT_SECURITY, Security
from broker_config.tls import TlsFiles, ensure_tls
from plant import Plant, PlantError, load_plant

__all__ = [
    "BrokerError",
    "BrokerProcess",
    "PortInUseError",
    "find_mosquitto",
    "free_port",
    "port_is_free",
    "resolve_impl",
    "start_broker",
]

Impl = Literal["auto", "mosquitto", "amqtt"]
IMPLS: tuple[str, ...] = ("auto", "mosquitto", "amqtt")
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
_PROBE_INTERVAL_S = 0.05


class BrokerError(Exception):
    """The broker cannot be started or stopped; ``str()`` is one line saying what to do."""


class PortInUseError(BrokerError):
    def __init__(self, port: int, option: str = "--port", suggestion: int | None = None) -> None:
        example = f", e.g. {option} {suggestion}" if suggestion is not None else ""
        super().__init__(
            f"port {port} is already in use (another broker?); "
            f"pick another with {option} N{example}"
        )
        self.port = port
        self.option = option


def find_mosquitto() -> str | None:
    """Path of the ``mosquitto`` binary: on PATH, else in the usual sbin directories."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


def resolve_impl(impl: str) -> str:
    """``auto`` → ``mosquitto`` if installed, else ``amqtt``; refuse an unknown or missing one."""
    if impl not in IMPLS:
        raise BrokerError(f"unknown broker {impl!r}; use --impl auto, mosquitto or amqtt")
    if impl == "auto":
        return "mosquitto" if find_mosquitto() else "amqtt"
    if impl == "mosquitto" and not find_mosquitto():
        raise BrokerError("mosquitto is not installed (apt install mosquitto); or use --impl amqtt")
    return impl


@dataclass
class BrokerProcess:
    """A running broker child process."""

    impl: str
    host: str
    port: int
    ws_port: int | None
    state_dir: Path
    files: BrokerFiles
    process: subprocess.Popen[bytes]
    _output: IO[bytes] | None = field(default=None, repr=False)
    security: Security = DEFAULT_SECURITY
    #: The CA and server certificate (``tls`` profile only; ``port`` is then a TLS port).
    tls: TlsFiles | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def client_host(self) -> str:
        """Where a client on this machine connects (a wildcard bind is reached on loopback)."""
        return connect_host(self.host)

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.tls is not None else "mqtt"
        return f"{scheme}://{self.client_host}:{self.port}"

    def tls_context(self) -> ssl.SSLContext | None:
        """A client context that trusts only this broker's CA (``None`` without TLS)."""
        if self.tls is None:
            return None
        return ssl.create_default_context(cafile=str(self.tls.ca_pem))

    def _startup_failure(self) -> BrokerError:
        text = ""
        for path in (self.files.output_file, self.files.log_file):
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="replace")
        if "address already in use" in text.lower():
            ws = self.ws_port
            if ws is not None and port_is_free(self.host, self.port):  # so it was the other one
                return PortInUseError(ws, "--ws-port", suggest_port(self.host, ws))
            return PortInUseError(self.port, "--port", suggest_port(self.host, self.port))
        last = next((ln for ln in reversed(text.splitlines()) if ln.strip()), "no output")
        return BrokerError(
            f"{self.impl} exited with code {self.process.returncode} at start: {last.strip()} "
            f"(see {self.files.log_file})"
        )

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Probe with MQTT CONNECTs until a CONNACK accepts one; raise if it dies or times out."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise self._startup_failure()
            # Any CONNACK means the broker is up (``password`` refuses the anonymous probe).
            if connack_code(self.client_host, self.port, 1.0, self.tls_context()) is not None:
                return
            if time.monotonic() >= deadline:
                self.stop()
                raise BrokerError(
                    f"{self.impl} did not accept an MQTT connection on port {self.port} within "
                    f"{timeout_s:.0f} s (see {self.files.log_file})"
                )
            time.sleep(_PROBE_INTERVAL_S)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, wait up to ``timeout_s``, then SIGKILL. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout_s)
        if self._output is not None:
            self._output.close()
            self._output = None
        clear_running(self.state_dir, self.pid)
        return int(self.process.returncode)

    def __enter__(self) -> BrokerProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def connect_host(bind: str) -> str:
    return DEFAULT_HOST if bind in ("0.0.0.0", "") else bind


def die_with_parent() -> list[str]:
    """A command prefix that stops the broker if this process dies without stopping it (a
    SIGKILLed test run or demo must not leave a broker holding its port). Linux only."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv and sys.platform == "linux" else []


def _command(files: BrokerFiles, foreground: bool) -> list[str]:
    if files.impl == "mosquitto":
        return [*die_with_parent(), str(find_mosquitto()), "-c", str(files.config)]
    command = [sys.executable, "-m", "broker_config.amqtt_main", "--config", str(files.config)]
    command += ["--log-file", str(files.log_file)]
    return [*die_with_parent(), *command, *(["--verbose"] if foreground else [])]


def _scenario(scenario: Plant | str | Path | None) -> Plant:
    return scenario if isinstance(scenario, Plant) else load_plant(scenario)


def start_broker(
    impl: str = "auto",
    port: int = 1883,
    state_dir: Path = Path(".factory"),
    scenario: Plant | str | Path | None = None,
    ws_port: int | None = None,
    *,
    host: str = DEFAULT_HOST,
    ready_timeout_s: float | None = READY_TIMEOUT_S,
    foreground: bool = False,
    security: Security | str = DEFAULT_SECURITY,
    participants: int | None = None,
    robot_prefixes: Mapping[str, str] | None = None,
    protocol_log: bool = False,
) -> BrokerProcess:
    """Start a broker for ``scenario``'s robots; wait until it accepts MQTT unless told not to.
    ``protocol_log``: Mosquitto logs every packet, for the protocol inspector.

    ``port`` is the MQTT listener's port: a TLS port on the ``tls`` profile. ``participants``
    makes logins ``p01`` … (``None``: keep those there are). ``robot_prefixes`` replaces the
    scenario's prefixes in the robots' topic rules (tests use ``factory/+/+/+/ROBOT`` so that
    each test can use its own site; never a product command).

    Raises :class:`PortInUseError` if a port is taken and :class:`BrokerError` for anything else
    (mosquitto missing, a bad scenario, a broker that exits at start).
    """
    chosen = resolve_impl(impl)
    profile = Security(security)
    try:
        robots = _scenario(scenario).robots
    except PlantError as exc:
        raise BrokerError(str(exc).splitlines()[0]) from None
    for option, wanted in (("--port", port), ("--ws-port", ws_port)):
        if wanted is not None and not port_is_free(host, wanted):
            previous = read_running(Path(state_dir))
            if previous is not None and wanted in (previous.port, previous.ws_port):
                raise BrokerError(
                    f"port {wanted} is held by the {previous.impl} broker started from "
                    f"{state_dir} (pid {previous.pid}); stop it (kill {previous.pid}) or pick "
                    f"another with {option} N"
                )
            raise PortInUseError(wanted, option, suggest_port(host, wanted))
    try:
        credentials = ensure_credentials(Path(state_dir), robots, participants=participants)
    except CredentialsError as exc:
        raise BrokerError(str(exc)) from None
    tls = ensure_tls(Path(state_dir), [host, *lan_addresses(host)]) if profile.tls else None
    files = write_local_files(
        Path(state_dir),
        chosen,
        credentials,
        port=port,
        bind=host,
        ws_port=ws_port,
        log_stdout=foreground,
        security=profile,
        tls=tls,
        robot_prefixes=robot_prefixes,
        protocol_log=protocol_log,
    )
    for old_log in (files.log_file, files.output_file):
        if old_log.exists():  # keep one previous run; a fresh file makes start errors clear
            old_log.replace(old_log.with_name(old_log.name + ".1"))
    output = None if foreground else files.output_file.open("wb")
    process = subprocess.Popen(
        _command(files, foreground),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        start_new_session=True,  # Ctrl-C goes to us; we stop the broker in order
    )
    broker = BrokerProcess(
        chosen, host, port, ws_port, Path(state_dir), files, process, output, profile, tls
    )
    cafile = None if tls is None else str(tls.ca_pem)
    running = RunningBroker(
        chosen, process.pid, connect_host(host), port, ws_port, profile.value, cafile
    )
    try:
        write_running(Path(state_dir), running)
        if ready_timeout_s is not None:
            broker.wait_ready(ready_timeout_s)
    except BaseException:  # also Ctrl-C while waiting: never leave a broker behind
        broker.stop()
        raise
    return broker
