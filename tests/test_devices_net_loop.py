"""One network thread drives many robots against a real broker: hundreds connect with a thread
count that does not grow with them and every reading they send arrives, a dropped robot comes
back after its time away, a held one only when released, a refused login is said, a silent
broker holds up no one else, a stop of hundreds takes seconds, and the descriptor limit is
checked before the first connect."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from brokers import BrokerHandle, handle_for, require_broker

from broker_config.embedded import free_port, start_broker
from contract.mqtt import new_client
from simulator.devices.connectors import CONNECT_WORKERS
from simulator.devices.descriptors import RESERVED_FDS
from simulator.devices.fleet_links import link_counts
from simulator.devices.net_link import LinkState
from simulator.devices.net_loop import NetworkLoop
from simulator.devices.run import LiveFactory
from simulator.model.records import Sample
from simulator.model.scenario import load_scenario

pytestmark = pytest.mark.integration

FLEET = 300
READINGS = 20
#: Generous for two loaded shared cores; measured: 300 robots connect in about a second.
CONNECT_WITHIN_S = 60.0
#: A stop publishes OFFLINE for all (one 5 s deadline), closes all (one 2 s deadline).
STOP_WITHIN_S = 15.0


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


class Counted:
    """A paho client on a loop, counting its accepted connects and refusals."""

    def __init__(self, loop: NetworkLoop, broker: BrokerHandle, who: str, password: str) -> None:
        self.connects = 0
        self.refusals: list[str] = []
        username, _ = broker.credentials(who)
        self.client = new_client(
            f"loop-test-{who}-{time.monotonic_ns()}", username=username, password=password
        )
        self.client.on_connect = self._on_connect
        self.link = loop.link(self.client, broker.host, broker.port, keepalive_s=15, name=who)

    def _on_connect(self, c: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        if reason.is_failure:
            self.refusals.append(str(reason))
        else:
            self.connects += 1


@pytest.fixture
def loop() -> Iterator[NetworkLoop]:
    network = NetworkLoop(clients=8)
    yield network
    network.stop()


def test_a_dropped_link_comes_back_and_a_held_one_only_when_released(
    broker: BrokerHandle, loop: NetworkLoop
) -> None:
    robot = broker.robot_ids[0]
    counted = Counted(loop, broker, robot, broker.credentials(robot)[1])
    counted.link.start()
    wait_until(lambda: counted.connects == 1, 10.0, "the first connect")
    counted.link.drop(0.0)  # away for the back-off's first step, then back by itself
    wait_until(lambda: counted.connects == 2, 10.0, "the reconnect after a drop")
    counted.link.hold()
    counted.link.drop(0.0)
    # The loop reaches the gate only when it would otherwise connect: then it waits there.
    wait_until(lambda: counted.link.state is LinkState.HELD, 10.0, "the robot at the gate")
    assert not counted.client.is_connected()
    assert counted.connects == 2
    counted.link.release()
    wait_until(lambda: counted.connects == 3, 10.0, "the reconnect after the release")
    counted.link.close()
    assert counted.link.wait_closed(5.0)


def test_a_refused_login_is_reported_and_retried(broker: BrokerHandle, loop: NetworkLoop) -> None:
    robot = broker.robot_ids[0]
    counted = Counted(loop, broker, robot, "not-the-password")
    counted.link.start()
    wait_until(lambda: len(counted.refusals) >= 2, 15.0, "a refusal and a retry")
    assert counted.connects == 0
    assert "authori" in counted.refusals[0].lower()
    assert counted.link.state in (LinkState.WAITING, LinkState.CONNECTING)
    counted.link.close()
    assert counted.link.wait_closed(5.0)


def test_a_broker_not_listening_is_said_and_retried(loop: NetworkLoop) -> None:
    link = loop.link(new_client("nobody-home"), "127.0.0.1", free_port(), keepalive_s=15, name="x")
    link.start()
    wait_until(lambda: link.state is LinkState.WAITING, 10.0, "the first failed attempt")
    assert link.last_error is not None
    assert "refused" in link.last_error.lower()
    link.close()
    assert link.wait_closed(5.0)  # a robot waiting to retry stops at once


def test_a_silent_broker_holds_up_no_other_robot(broker: BrokerHandle, loop: NetworkLoop) -> None:
    """Robots whose broker accepts TCP and never answers wait for a CONNACK; on the same loop a
    robot of a real broker connects as fast as alone."""
    silent = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        silent_port = silent.getsockname()[1]
        stuck = [new_client(f"silent-{i}") for i in range(4)]
        links = [
            loop.link(c, "127.0.0.1", silent_port, keepalive_s=15, name=f"silent-{i}")
            for i, c in enumerate(stuck)
        ]
        for link in links:
            link.start()
        wait_until(
            lambda: all(link.state is LinkState.OPEN for link in links), 10.0, "silent links open"
        )
        robot = broker.robot_ids[0]
        counted = Counted(loop, broker, robot, broker.credentials(robot)[1])
        started = time.monotonic()
        counted.link.start()
        wait_until(lambda: counted.connects == 1, 10.0, "the robot of the real broker")
        assert time.monotonic() - started < 5.0
        assert not any(c.is_connected() for c in stuck)
    finally:
        loop.stop()
        silent.close()


@pytest.fixture
def fleet_broker(tmp_path: Path) -> Iterator[BrokerHandle]:
    """Mosquitto with logins and ACLs for ``default?robots=300``."""
    require_broker("mosquitto")
    process = start_broker(
        "mosquitto", free_port(), tmp_path / "state", scenario=f"default?robots={FLEET}"
    )
    handle = handle_for(process)
    yield handle
    handle.close_clients()
    process.stop()


def test_hundreds_of_robots_on_one_thread_connect_and_stop_in_seconds(
    fleet_broker: BrokerHandle,
) -> None:
    watcher = fleet_broker.capture("factory/+/+/+/+/state", "factory/+/+/+/+/telemetry")
    threads_before = threading.active_count()
    live = LiveFactory(
        load_scenario(f"default?robots={FLEET}"),
        seed=1,
        factor=60.0,
        host=fleet_broker.host,
        port=fleet_broker.port,
        state_dir=fleet_broker.state_dir,
    )
    try:
        live.connect(CONNECT_WITHIN_S)
        counts = link_counts(live.agents.values())
        assert counts.online == FLEET, counts.line()
        # One network thread and its connectors, whatever the number of robots.
        assert threading.active_count() - threads_before <= 1 + CONNECT_WORKERS
        # Rounds of readings sent from this thread (the simulation's part) while the loop
        # writes, each once the last has arrived: none may be left in a client's queue (a lost
        # write wake-up strands a robot's messages until its next publish, or for good).
        start_ts = live.now_ts
        for step in range(1, READINGS + 1):
            for agent in live.agents.values():
                agent.send(Sample(agent.robot, start_ts + step, {"current_a": 1.0}))
            watcher.wait_for(
                lambda m: m.topic.endswith("/telemetry"), count=FLEET * step, timeout_s=30.0
            )
    finally:
        started = time.monotonic()
        live.stop()
        stop_s = time.monotonic() - started
    assert stop_s < STOP_WITHIN_S, stop_s
    assert threading.active_count() <= threads_before
    offline = watcher.wait_for(
        lambda m: m.topic.endswith("/state") and orjson.loads(m.payload)["state"] == "OFFLINE",
        count=FLEET,
        timeout_s=30.0,
    )
    assert all(orjson.loads(m.payload)["seq"] > 0 for m in offline)  # said by the robots


def _limits_child(soft: int, hard: int, robots: int) -> subprocess.CompletedProcess[str]:
    code = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))\n"
        "from simulator.devices.descriptors import ensure_descriptors\n"
        f"print(ensure_descriptors({robots}))\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,
    )


def test_the_soft_descriptor_limit_is_raised_to_fit_the_robots() -> None:
    done = _limits_child(256, 4096, 1000)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4096", "4096"]


def test_robots_past_the_hard_descriptor_limit_fail_naming_it() -> None:
    done = _limits_child(256, 512, 1000)
    assert done.returncode != 0
    assert "DescriptorLimit" in done.stderr
    assert f"about {1000 + RESERVED_FDS:,} open files" in done.stderr
    assert "hard limit of this process is 512 (RLIMIT_NOFILE)" in done.stderr
