"""The compose stack is not fiction: its services run natively, as ``docker-compose.yml`` says.

Docker cannot run here or in CI, so this test reads the compose file and the Dockerfile and runs
the services whose programs are installed — ``init``, ``mosquitto``, ``api``, ``simulator`` —
with *their* commands (the Dockerfile's entrypoint, the compose ``command``/``entrypoint``),
*their* environment (the Dockerfile's ``ENV`` and the compose ``environment``) and *their*
config (Mosquitto reads the very file the compose file mounts). Only what a container would
provide is remapped, by rules, never by hand:

- a path inside a container → the host directory of the mount holding it (a named volume is a
  directory per volume under a temp dir; a bind mount is the repository file). A path in no
  mount fails the test: in a container it would vanish with the container, or it is a typo;
- ``SERVICE:PORT``, ``localhost:PORT`` and a bare container port → 127.0.0.1 and an ephemeral
  port per container port; ``0.0.0.0`` → 127.0.0.1;
- a program the Dockerfile copies into the image → that file in the repository; ``factory``
  and ``python`` → this virtual environment's. Mosquitto's image entrypoint only hands
  ``/mosquitto`` to its user and is not run. Run as root, Mosquitto would drop to the local
  ``mosquitto`` user, whose uid is not the image's 1883, so ``user root`` is added then (the
  uid design is pinned in ``tests/test_compose_file.py``).

Services start in ``depends_on`` order and each is waited for with its own compose healthcheck,
run natively. Prometheus and Grafana are not run (their binaries are not installed); the
Prometheus scrape target is remapped and scraped like Prometheus would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from brokers import require_broker
from paho.mqtt.enums import CallbackAPIVersion
from test_compose_model import ROOT, Compose, Dockerfile, Service, load_compose, load_dockerfile
from test_grafana_promql import exported_series, missing_names

from broker_config.embedded import find_mosquitto, free_port
from contract.codec import decode_message
from contract.topics import Channel
from simulator.scenario import load_scenario

pytestmark = pytest.mark.integration

NATIVE = ("init", "mosquitto", "api", "simulator")
VENV_BIN = Path(sys.executable).parent
#: PATH of the python:3.11-slim image, after the Dockerfile's own ENV PATH entries.
IMAGE_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOT_IN_A_MOUNT_OK = frozenset({"/dev/null"})
HEALTHY_TIMEOUT_S = 30.0
WAIT_S = 20.0
STOP_TIMEOUT_S = 20.0


@dataclass
class NativeStack:
    compose: Compose
    dockerfile: Dockerfile
    root: Path
    ports: dict[int, int]  # container port → the ephemeral port standing in for it
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    def volume(self, name: str) -> Path:
        assert name in self.compose.volumes
        return self.volumes_dir / name

    def url(self, container_port: int) -> str:
        return f"http://127.0.0.1:{self.ports[container_port]}"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.log(name)
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- the remapping rules (module docstring) ----------------------------------------------

    def remap(self, service: Service, token: str) -> str:
        if token in NOT_IN_A_MOUNT_OK:
            return token
        if token.startswith("/"):
            host = service.host_path(token, self.volumes_dir)
            if host is None:
                pytest.fail(
                    f"{service.name}: {token} is in no volume or bind mount of the service: "
                    "in a container it would be lost with the container (or it is a typo)"
                )
            return str(host) + ("/" if token.endswith("/") else "")
        if token == "0.0.0.0":
            return "127.0.0.1"
        if token.isdigit() and int(token) in self.ports:
            return str(self.ports[int(token)])
        hosts = "|".join(map(re.escape, [*self.compose.services, "localhost", "127.0.0.1"]))

        def port(match: re.Match[str]) -> str:
            container_port = int(match[2])
            if container_port not in self.ports:
                return match[0]
            return f"127.0.0.1:{self.ports[container_port]}"

        return re.sub(rf"\b({hosts}|0\.0\.0\.0):(\d+)\b", port, token)

    def executable(self, name: str) -> str:
        copies = self.dockerfile.copies
        image_path = [p for p in self.dockerfile.env.get("PATH", "").split(":") if p != "$PATH"]
        for directory in (*image_path, *IMAGE_BASE_PATH.split(":")):
            candidate = name if "/" in name else f"{directory}/{name}"
            if candidate in copies:
                return str(copies[candidate])
        if name == "mosquitto":
            found = find_mosquitto()
        else:
            found = shutil.which(name, path=f"{VENV_BIN}:{IMAGE_BASE_PATH}")
        assert found, f"{name} is not installed here"
        return found

    def argv(self, service: Service, raw: list[str]) -> list[str]:
        return [self.executable(raw[0]), *(self.remap(service, t) for t in raw[1:])]

    def command(self, service: Service) -> list[str]:
        raw = self.dockerfile.argv(service) if service.builds_here else service.command
        assert raw, f"{service.name} has no command"
        argv = self.argv(service, raw)
        if service.name == "mosquitto":
            where = argv.index("-c") + 1
            argv[where] = str(self.mosquitto_conf(service, Path(argv[where])))
        return argv

    def env(self, service: Service) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}:{IMAGE_BASE_PATH}",
            "HOME": str(self.root / "home"),
            "LANG": "C.UTF-8",
        }
        image_env = self.dockerfile.env if service.builds_here else {}
        for key, value in (image_env | service.environment).items():
            if key != "PATH":
                env[key] = self.remap(service, value)
        return env

    def mosquitto_conf(self, service: Service, conf: Path) -> Path:
        """The mounted config with its listeners and paths remapped; every other line kept."""
        out = []
        for line in conf.read_text(encoding="utf-8").splitlines():
            name, _, value = line.strip().partition(" ")
            if name == "listener":
                out.append(f"listener {self.ports[int(value.split()[0])]} 127.0.0.1")
            elif name and not name.startswith("#") and value.startswith("/"):
                out.append(f"{name} {self.remap(service, value.strip())}")
            else:
                out.append(line)
        if os.geteuid() == 0:
            out.append("user root")
        path = self.root / "native" / "mosquitto.conf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        return path

    # --- running -----------------------------------------------------------------------------

    def run_once(self, name: str) -> str:
        service = self.compose.services[name]
        result = subprocess.run(
            self.command(service),
            env=self.env(service),
            cwd=self.root / "home",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, name: str) -> None:
        service = self.compose.services[name]
        with self.log(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                self.command(service),
                env=self.env(service),
                cwd=self.root / "home",
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def healthy(self, name: str) -> bool:
        service = self.compose.services[name]
        check = service.healthcheck or {}
        kind, *raw = check["test"]
        assert kind == "CMD"
        result = subprocess.run(
            self.argv(service, raw),
            env=self.env(service),
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def wait_healthy(self, name: str) -> None:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while not self.healthy(name):
            process = self.processes[name]
            if process.poll() is not None:
                pytest.fail(f"{name} exited ({process.returncode}):\n{self.tail(name)}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} not healthy in {HEALTHY_TIMEOUT_S} s:\n{self.tail(name)}")
            time.sleep(0.2)

    def stop(self, name: str) -> int:
        """What ``docker compose stop`` does: SIGTERM, then SIGKILL after the grace period."""
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
        return process.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)


def start_order(compose: Compose) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        for dependency in compose.services[name].depends_on:
            if dependency in NATIVE and dependency not in order:
                visit(dependency)
        if name not in order:
            order.append(name)

    for name in NATIVE:
        visit(name)
    return order


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    require_broker("mosquitto")
    if shutil.which("mosquitto_sub") is None:
        pytest.skip("mosquitto_sub is not installed (apt install mosquitto-clients)")
    compose, dockerfile = load_compose(), load_dockerfile()
    root = tmp_path_factory.mktemp("compose")
    container_ports = {c for s in compose.services.values() for _, c in s.ports}
    stack = NativeStack(compose, dockerfile, root, {p: free_port() for p in container_ports})
    for directory in ("home", "logs", *(f"volumes/{v}" for v in compose.volumes)):
        (root / directory).mkdir(parents=True)
    try:
        for name in start_order(compose):
            if compose.services[name].healthcheck == {"disable": True}:
                stack.run_once(name)  # a one-shot job: dependents wait for its success
            else:
                stack.start(name)
                stack.wait_healthy(name)
        yield stack
    finally:
        stack.stop_all()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def eventually(probe: Any, what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (result := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout_s} s: {what}")
        time.sleep(0.2)
    return result


def scenario_robots(stack: NativeStack) -> list[str]:
    scenario = stack.compose.services["simulator"].environment["FACTORY_SCENARIO"]
    return [robot.id for robot in load_scenario(scenario).robots]


def test_init_makes_private_credentials_once_and_is_idempotent(stack: NativeStack) -> None:
    state = stack.volume("factory-state")
    broker_dir = stack.volume("mosquitto-config")
    secret = stack.volume("grafana-admin") / "password"
    before = {p: p.read_bytes() for p in (state / "credentials.json", secret)}
    users = [line.split(":")[0] for line in (broker_dir / "passwd").read_text().splitlines()]
    assert sorted(users) == sorted(["service", *scenario_robots(stack)])
    stack.run_once("init")  # a second `docker compose up`
    assert {p: p.read_bytes() for p in before} == before, "credentials changed on a restart"
    for path in (state / "credentials.json", broker_dir / "passwd", state / "api-key"):
        assert path.stat().st_mode & 0o777 == 0o600, f"{path.name} is readable by others"
    assert len(secret.read_text().strip()) >= 20


def test_telemetry_reaches_the_api(stack: NativeStack) -> None:
    robots = set(scenario_robots(stack))

    def with_readings() -> bool:
        listed = get_json(stack.url(8000) + "/api/robots")
        return {r["id"] for r in listed if r["latest"] and r["latest"]["values"]} == robots

    eventually(with_readings, "every robot of the scenario listed with readings")


def test_an_anonymous_mosquitto_sub_watches_the_telemetry(stack: NativeStack) -> None:
    filter_ = f"factory/+/+/+/+/{Channel.TELEMETRY.value}"
    broker = ["-h", "127.0.0.1", "-p", str(stack.ports[1883])]
    result = subprocess.run(
        ["mosquitto_sub", *broker, "-t", filter_, "-v", "-C", "3", "-W", str(int(WAIT_S))],
        capture_output=True,
        timeout=WAIT_S + 5,
        check=False,
    )
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert len(lines) == 3
    for line in lines:
        topic, _, payload = line.partition(b" ")
        decode_message(topic.decode(), payload)  # raises if it is not the contract's telemetry


def test_a_browser_can_watch_over_websockets(stack: NativeStack) -> None:
    received = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, transport="websockets")
    client.on_connect = lambda c, *_: c.subscribe("factory/#", qos=0)
    client.on_message = lambda *_: received.set()
    client.connect("127.0.0.1", stack.ports[9001])
    client.loop_start()
    try:
        assert received.wait(WAIT_S), "no message over the WebSocket listener"
    finally:
        client.disconnect()
        client.loop_stop()


def test_anonymous_publishing_is_refused(stack: NativeStack) -> None:
    robot = get_json(stack.url(8000) + "/api/robots")[0]
    topic = "/".join(["factory", robot["site"], robot["area"], robot["line"], robot["id"]])
    broker = ["-h", "127.0.0.1", "-p", str(stack.ports[1883])]
    result = subprocess.run(
        ["mosquitto_pub", "-V", "5", "-q", "1", *broker, "-t", f"{topic}/telemetry", "-m", "{}"],
        capture_output=True,
        text=True,
        timeout=WAIT_S,
        check=False,
    )
    assert "not authorized" in result.stderr.lower(), result.stderr


def test_the_prometheus_target_serves_every_series_of_the_dashboards(stack: NativeStack) -> None:
    config = yaml.safe_load((ROOT / "dashboards/prometheus/prometheus.yml").read_text())
    job = config["scrape_configs"][0]
    target = stack.remap(
        stack.compose.services["prometheus"], job["static_configs"][0]["targets"][0]
    )
    url = f"http://{target}{job.get('metrics_path', '/metrics')}"
    dashboards = [
        json.loads(p.read_text()) for p in sorted(ROOT.glob("dashboards/grafana/dashboards/*.json"))
    ]

    def missing() -> list[str]:
        with urllib.request.urlopen(url, timeout=5) as response:
            series = exported_series(response.read().decode())
        return [m for d in dashboards for m in missing_names(d, series)]

    eventually(lambda: not missing(), f"every dashboard series has samples at {url}")


def test_stopping_the_simulator_leaves_its_robots_offline(stack: NativeStack) -> None:
    """Last in this module: ``docker compose stop simulator`` (SIGTERM within its grace period)."""
    assert stack.stop("simulator") == 0, stack.tail("simulator")

    def all_offline() -> bool:
        states = {r["id"]: r["state"] for r in get_json(stack.url(8000) + "/api/robots")}
        return set(states.values()) == {"OFFLINE"}

    eventually(all_offline, "every robot OFFLINE after the simulator stopped")
