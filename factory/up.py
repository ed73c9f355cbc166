"""``factory up``: the whole demo in one command — broker, service with dashboard, robots.

The parts run as child processes, exactly as one would start them by hand (``factory broker``,
``factory serve``, ``factory simulate``), with their logs in ``STATE_DIR/logs/``. Start order:
broker (unless ``--broker`` names one), then the service (waited for on ``/readyz``), then the
robots. Stop order on Ctrl-C or SIGTERM is the reverse of what matters: robots first (they
publish OFFLINE), then the service (it commits what it has), then the broker.

The pace: once the service is ready, ``factory up`` sets the fleet's retained pace
(``POST /api/clock``) to the factor the robots start at, so a pace left on the broker by an
earlier run never overrides it; the dashboard or the API changes it from then on.
``--workshop`` starts at :data:`WORKSHOP_FACTOR` (see its comment), has Mosquitto log every
packet for the protocol inspector, and prints the addresses a room of participants needs.

A second ``factory up`` on the same state dir resumes: same database, same credentials, and the
simulated clock continues from the newest time the service has seen (the robots reboot with new
boot ids and the scenario's initial component ages).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit

from rich.console import Console

from api.serve import api_key
from api.store.opening import store_has_data
from broker_config.addresses import lan_addresses
from broker_config.command import connect_lines, new_participants
from broker_config.credentials import load_credentials
from broker_config.embedded import (
    BrokerError,
    BrokerProcess,
    PortInUseError,
    die_with_parent,
    port_is_free,
)
from broker_config.embedded import start_broker as start_embedded_broker
from broker_config.ports import suggest_port
from broker_config.profiles import DEFAULT_TLS_PORT, Security, parse_security
from broker_config.tls import tls_files
from contract.mqtt import parse_broker_url
from simulator.devices.run import resume_ts
from simulator.devices.shard_plan import choose_processes
from simulator.model.scenario import Scenario, ScenarioError, load_scenario

DEFAULT_MQTT_PORT, DEFAULT_HTTP_PORT = 1883, 8000
#: ``--workshop``: Mosquitto's MQTT-over-WebSocket listener for the participant page (/join).
DEFAULT_WS_PORT = 9001
DEFAULT_BIND = "127.0.0.1"
#: ``--state-dir``'s default (as in ``factory.cli``): commands printed with another carry it.
DEFAULT_STATE_DIR = Path(".factory")
SERVICE_READY_TIMEOUT_S = 60.0
CHILD_STOP_TIMEOUT_S = 20.0
STATUS_EVERY_S = 5.0
#: ``--workshop`` pace: a simulated minute per wall second. A robot's reading every few wall
#: seconds, a state change you can point at before it scrolls away, a repair that takes minutes
#: of talk rather than a blink; the instructor fast-forwards (3600× and up) to let wear grow and
#: slows down again when the alarm comes (dashboard or ``POST /api/clock``).
WORKSHOP_FACTOR = 60.0
#: ``--workshop``: logins p01..p20 and every interface, unless ``--participants``/``--bind`` say.
WORKSHOP_PARTICIPANTS = 20
WORKSHOP_BIND = "0.0.0.0"


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


class Child:
    """A ``factory`` subcommand running as a child process, its output in a log file."""

    def __init__(
        self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [*die_with_parent(), sys.executable, "-m", "factory.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children in order
            env=None if env is None else {**os.environ, **env},
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, lines: int = 15) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout_s: float = CHILD_STOP_TIMEOUT_S) -> None:
        """SIGTERM (both children stop cleanly on it; unlike SIGINT it cannot have been
        inherited as ignored, e.g. under ``nohup``), then SIGKILL past the timeout."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Service:
    """How ``up`` reaches the service it started: its URL and, on ``tls``, the local CA that
    verifies its certificate (every request of ``up`` to it goes through here)."""

    def __init__(self, base_url: str, cafile: Path | None = None) -> None:
        self.base_url = base_url
        self.cafile = cafile
        self.context = None if cafile is None else ssl.create_default_context(cafile=str(cafile))

    def open(self, path: str, timeout_s: float) -> Any:
        return urllib.request.urlopen(
            f"{self.base_url}{path}", timeout=timeout_s, context=self.context
        )

    def get_json(self, path: str, timeout_s: float = 2.0) -> Any:
        with self.open(path, timeout_s) as response:
            return json.load(response)


def _wait_ready(service: Child, api: Service) -> None:
    deadline = time.monotonic() + SERVICE_READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not service.alive():
            raise RuntimeError(f"the service exited at start:\n{service.tail()}")
        try:
            api.open("/readyz", timeout_s=1.0).close()
            return
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise RuntimeError(
                    f"the service's certificate does not verify with {api.cafile}: "
                    f"{exc.reason.verify_message}"
                ) from None
            time.sleep(0.2)
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(
        f"the service was not ready after {SERVICE_READY_TIMEOUT_S:.0f} s; see {service.log_path}"
    )


def _status(api: Service) -> str:
    try:
        robots = api.get_json("/api/robots")
    except (urllib.error.URLError, OSError, ValueError):
        return "service not answering"
    states: dict[str, int] = {}
    for robot in robots:
        states[robot.get("state") or "?"] = states.get(robot.get("state") or "?", 0) + 1
    newest = max((r["last_seen"] for r in robots if r.get("last_seen")), default=None)
    clock = datetime.fromtimestamp(newest, UTC).strftime("%a %Y-%m-%d %H:%M") if newest else "—"
    summary = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    return f"simulated {clock} UTC · {summary}"


def _start_broker(
    state_dir: Path,
    scenario: Scenario,
    port: int,
    security: Security,
    participants: int | None,
    bind: str,
    protocol_log: bool = False,
    ws_port: int | None = None,
) -> BrokerProcess:
    try:
        return start_embedded_broker(
            impl="auto",
            port=port,
            state_dir=state_dir,
            scenario=scenario,
            host=bind,
            security=security,
            participants=participants,
            ws_port=ws_port,
            protocol_log=protocol_log,
        )
    except PortInUseError:
        _fail(
            f"MQTT port {port} is already in use (another broker?); pick another with "
            f"--mqtt-port N, e.g. --mqtt-port {port + 1}, or use that broker with "
            f"--broker mqtt://127.0.0.1:{port}"
        )
    except BrokerError as exc:
        _fail(str(exc))


def choose_port(requested: int | None, default: int, host: str = "127.0.0.1") -> tuple[int, str]:
    """The port to listen on and a note for the banner ("" if none): a port asked for is used
    as it is (taken, it is an error later); the default, if taken — a system Mosquitto holds
    1883 on many machines — gives way to the next free port above it."""
    if requested is not None or port_is_free(host, default):
        return (default if requested is None else requested), ""
    other = suggest_port(host, default)
    if other is None:
        return default, ""
    return other, f"port {default} is taken, so {other} is used"


def run_up(
    *,
    state_dir: Path,
    scenario: str | None,
    seed: int,
    factor: float | None,
    mqtt_port: int | None,
    http_port: int | None,
    broker: str | None,
    security: str = "acl",
    participants: int | None = None,
    bind: str = DEFAULT_BIND,
    db: str | None = None,
    workshop: bool = False,
    processes: int | None = None,
) -> None:
    """The ``factory up`` command; see the module docstring."""
    if workshop and factor is None:
        factor = WORKSHOP_FACTOR
    notes: list[str] = []
    try:
        profile = parse_security(security)
    except ValueError as exc:
        _fail(str(exc))
    if broker is None:
        default_mqtt = DEFAULT_TLS_PORT if profile.tls else DEFAULT_MQTT_PORT
        mqtt_port, note = choose_port(mqtt_port, default_mqtt, bind)
        notes += [f"MQTT {note}; choose one with --mqtt-port N"] if note else []
    http_port, note = choose_port(http_port, DEFAULT_HTTP_PORT)
    notes += [f"HTTP {note}; choose one with --http-port N"] if note else []
    try:
        loaded = load_scenario(scenario)
        broker_host, broker_port = (
            parse_broker_url(broker) if broker else ("127.0.0.1", mqtt_port or DEFAULT_MQTT_PORT)
        )
        resuming = store_has_data(state_dir, db)
        choose_processes(loaded, processes)  # a --processes the fleet cannot take fails here
    except (ScenarioError, ValueError) as exc:
        _fail(str(exc))
    if factor is not None and factor < 0:
        _fail("--factor must be ≥ 0 (0 runs as fast as possible)")
    if not port_is_free("127.0.0.1", http_port):
        _fail(
            f"HTTP port {http_port} is already in use (another factory up?); pick another "
            f"with --http-port N, e.g. --http-port {http_port + 1}"
        )
    if broker and load_credentials(state_dir) is None:
        _fail(
            f"--broker: the robots and the service log in to that broker, and {state_dir} holds "
            "no logins yet; write them with its password and ACL files (`factory broker "
            f"--write-config DIR --state-dir {state_dir}`), give those files to the broker, "
            "and run again"
        )
    https = tls_files(state_dir)
    if broker and profile.tls and not https.server_cert_pem.is_file():
        _fail(
            f"--security tls serves the API over HTTPS with {https.server_cert_pem}, and "
            f"{state_dir} holds no local CA yet; make one with `factory broker --security tls "
            f"--state-dir {state_dir}` (or drop --broker), and run again"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    log_dir = state_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    console = Console(soft_wrap=True)  # piped or logged, a printed command stays one line
    signal.signal(signal.SIGTERM, _interrupt)

    before = load_credentials(state_dir)
    ws_port = choose_port(None, DEFAULT_WS_PORT, bind)[0] if workshop and not broker else None
    embedded = (
        None
        if broker
        else _start_broker(
            state_dir, loaded, broker_port, profile, participants, bind, workshop, ws_port
        )
    )
    broker_url = embedded.url if embedded else (broker or f"mqtt://{broker_host}:{broker_port}")
    after = load_credentials(state_dir) if embedded else None
    made = new_participants(before, after) if after else {}
    connect = connect_lines(embedded, made) if embedded else []
    # On tls the service serves HTTPS with the server certificate the broker's start made,
    # and up verifies it with the local CA like any client would.
    api = (
        Service(f"https://127.0.0.1:{http_port}", https.ca_pem)
        if profile.tls
        else Service(f"http://127.0.0.1:{http_port}")
    )
    common = ["--state-dir", str(state_dir), "--broker", broker_url]
    if scenario is not None:
        common += ["--scenario", scenario]
    children: list[Child] = []
    try:
        console.print(f"[dim]broker {broker_url} ({embedded.impl if embedded else 'external'})[/]")
        # On a resume the robots reboot with the scenario's initial components: the engine must
        # not warm up from the previous run's readings of components that are gone.
        service_env = {"FACTORY_ENGINE_WARMUP_H": "0"} if resuming else {}
        if workshop and embedded is not None and embedded.impl == "mosquitto":
            # The protocol inspector follows the broker's packet log (api/protocol_log.py).
            service_env["FACTORY_BROKER_LOG_PATH"] = str(embedded.files.log_file)
        if embedded is not None and embedded.ws_port is not None:
            service_env["FACTORY_BROKER_WS_URL"] = broker_ws_url(embedded.ws_port, profile.tls)
        serve_args = ["serve", *common, "--port", str(http_port), "--host", bind]
        serve_args += ["--tls"] if profile.tls else []
        serve_args += ["--db", db] if db is not None else []
        service = Child("serve", serve_args, log_dir, service_env)
        children.append(service)
        _wait_ready(service, api)
        _set_pace(api, state_dir, loaded.factor if factor is None else factor)
        sim_args = ["simulate", *common, "--seed", str(seed)]
        if factor is not None:
            sim_args += ["--factor", str(factor)]
        if processes is not None:
            sim_args += ["--processes", str(processes)]
        resume = resume_ts(api.base_url, cafile=api.cafile)
        if resume is not None:
            sim_args += ["--start", datetime.fromtimestamp(resume, UTC).isoformat()]
        children.insert(0, Child("simulate", sim_args, log_dir))
        _banner(console, loaded, state_dir, api, broker_url, resume, factor, notes, bind)
        for line in connect:  # where the room connects, and participants' passwords (once)
            console.print(line, markup=False, highlight=False)
        if workshop:
            _workshop_banner(console, http_port, broker_url, ws_port, bind)
        _watch(console, children, api)
    except KeyboardInterrupt:
        console.print("stopping: robots first (they publish OFFLINE), then the service …")
    except RuntimeError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise SystemExit(1) from None
    finally:
        for child in children:
            child.stop()
        if embedded is not None:
            embedded.stop()
    console.print(f"stopped; data kept in {state_dir} (a second `factory up` resumes it)")


def _banner(
    console: Console,
    scenario: Scenario,
    state_dir: Path,
    api: Service,
    broker_url: str,
    resume: float | None,
    factor: float | None,
    notes: list[str],
    bind: str = DEFAULT_BIND,
) -> None:
    host, port = parse_broker_url(broker_url)
    base_url = api.base_url
    parts = urlsplit(base_url)
    room = "".join(
        f"\n               {parts.scheme}://{address}:{parts.port}/  (from the room)"
        for address in lan_addresses(bind)
    )
    cacert = f"--cacert {shlex.quote(str(api.cafile))} " if api.cafile is not None else "-s "
    tls = broker_url.startswith("mqtts://")
    cafile = f" --cafile {state_dir / 'tls' / 'ca.pem'}" if tls else ""
    factory = _factory_command()
    # Commands to copy must work as printed from this shell: the state dir goes with them.
    in_state = f" --state-dir {shlex.quote(str(state_dir))}"
    in_state = "" if state_dir == DEFAULT_STATE_DIR else in_state
    pace = scenario.factor if factor is None else factor
    resumed = (
        f"resumed at simulated {datetime.fromtimestamp(resume, UTC):%Y-%m-%d %H:%M} UTC"
        if resume is not None
        else "a fresh run"
    )
    console.print(
        f"""
[bold]Smart factory is up[/] — {len(scenario.robots)} robots of {scenario.name!r}, {resumed},
one simulated hour every {3600 / pace if pace else 0:g} s of wall time (factor {pace:g}).

  dashboard    [link={base_url}/]{base_url}/[/link]    API docs {base_url}/docs{room}
  API          curl {cacert}{base_url}/api/robots
  MQTT broker  {broker_url}
  watch        {factory} tap --broker {broker_url}
               mosquitto_sub -h {host} -p {port}{cafile} -t 'factory/#' -v
  credentials  {state_dir / "credentials.json"} ({factory} credentials{in_state} ROBOT|service)
  API key      {state_dir / "api-key"} (fault injection, manual work orders, truth in the inspector)
  logs         {state_dir / "logs"}/

Ctrl-C stops everything cleanly."""
    )
    for note in notes:
        console.print(f"[yellow]note:[/] {note}")


def _set_pace(api: Service, state_dir: Path, factor: float) -> None:
    """Make the retained pace the robots' starting factor (not for 0, "as fast as possible",
    which has no pace)."""
    if factor <= 0:
        return
    request = urllib.request.Request(
        f"{api.base_url}/api/clock",
        data=json.dumps({"paused": False, "factor": factor}).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": api_key(state_dir)},
        method="POST",
    )
    try:
        urllib.request.urlopen(request, timeout=5.0, context=api.context).close()
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(f"the service refused the starting pace: {exc}") from None


def room_address(bind: str) -> str:
    """The address others reach this machine at: the bind address, or for a wildcard bind the
    address of the interface that routes outward (no packet is sent)."""
    if bind not in ("0.0.0.0", "::", ""):
        return bind
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only picks a route
        return str(probe.getsockname()[0])
    return "127.0.0.1"


def broker_ws_url(ws_port: int, tls: bool) -> str:
    """The broker's WebSocket address the service gives ``/join`` (the page puts in the host it
    was reached at): ``wss://`` on the ``tls`` profile, whose WebSocket listener speaks TLS."""
    return f"{'wss' if tls else 'ws'}://127.0.0.1:{ws_port}"


def _workshop_banner(
    console: Console, http_port: int, broker_url: str, ws_port: int | None, bind: str
) -> None:
    host = room_address(bind)
    base_url = f"http://{host}:{http_port}"
    _, port = parse_broker_url(broker_url)
    ws = f", WebSocket port {ws_port}" if ws_port else ", needs the broker's WebSockets"
    console.print(
        f"""
[bold]Workshop mode[/] — a simulated minute per wall second; change it live on the dashboard
(pause, 60×, 3600×) or with POST {base_url}/api/clock.

  participants  join {base_url}/join (an MQTT client in the browser{ws})
                dashboard {base_url}/   labs docs/workshop/index.md
                MQTT {host}:{port} (read-only without a login)"""
    )


def _factory_command() -> str:
    """How to run ``factory`` from this shell: plain if it is on PATH, else its path (e.g.
    ``.venv/bin/factory`` after ``python3 dev.py demo``, which does not activate the venv)."""
    here = Path(sys.executable).parent / "factory"
    on_path = shutil.which("factory")
    if on_path is not None and Path(on_path).resolve() == here.resolve():
        return "factory"
    with contextlib.suppress(ValueError):
        return str(here.relative_to(Path.cwd()))
    return str(here)


def _watch(console: Console, children: list[Child], api: Service) -> None:
    """Wait for Ctrl-C; show a status line; stop if a part dies (with its log's tail)."""
    next_status = time.monotonic()
    with console.status("starting …") as status:
        while True:
            for child in children:
                if not child.alive():
                    raise RuntimeError(
                        f"{child.name} stopped (exit code {child.process.returncode}):\n"
                        f"{child.tail()}"
                    )
            if time.monotonic() >= next_status:
                status.update(_status(api))
                next_status = time.monotonic() + STATUS_EVERY_S
            with contextlib.suppress(subprocess.TimeoutExpired):
                children[0].process.wait(0.5)
