"""The compose stack is not fiction: its services run natively, as ``docker-compose.yml`` says.

Docker cannot run here or in CI, so this test reads the compose file and the Dockerfile and runs
the services whose programs are installed — ``init``, ``mosquitto``, ``api``, ``simulator`` —
with *their* commands (the Dockerfile's entrypoint, the compose ``command``/``entrypoint``),
*their* environment (the Dockerfile's ``ENV`` and the compose ``environment``) and *their*
config (Mosquitto reads the very file the compose file mounts). Only what a container would
provide is remapped, by the rules of ``tests/test_compose_native.py``: container paths into
temporary volume directories, service names and container ports to 127.0.0.1 and ephemeral
ports.

Services start in ``depends_on`` order and each is waited for with its own compose healthcheck,
run natively. Prometheus and Grafana are not run (their binaries are not installed); the
Prometheus scrape target is remapped and scraped as Prometheus would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from brokers import require_broker
from paho.mqtt.enums import CallbackAPIVersion
from test_compose_model import ROOT
from test_compose_native import WAIT_S, NativeStack, start_order
from test_grafana_promql import exported_series, missing_names

from contract.codec import decode_message
from contract.topics import Channel
from simulator.model.scenario import load_scenario

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeStack]:
    require_broker("mosquitto")
    if shutil.which("mosquitto_sub") is None:
        message = "mosquitto_sub is not installed (apt install mosquitto-clients)"
        if os.environ.get("FACTORY_REQUIRE_BROKERS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    stack = NativeStack.create(tmp_path_factory.mktemp("compose"))
    try:
        for name in start_order(stack.compose):
            if stack.compose.services[name].healthcheck == {"disable": True}:
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
    assert sorted(users) == sorted(["service", "instructor", *scenario_robots(stack)])
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
