"""Two ``factory serve`` workers on one PostgreSQL and Mosquitto, as processes.

They share the telemetry (``$share/ingest/…``): every reading is stored once, and each worker
stored some. One leads the maintenance engine; SIGKILL it and the other takes over within a
bounded time, with the open work orders restored from the store, going on with the robot's
answers, and no schedule command sent a second time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest
from brokers import BrokerHandle, robot_topic
from store_backends import PostgresSchema

from broker_config.embedded import free_port
from contract.codec import encode
from contract.payloads import Ack, MaintenanceStarted, Reading, State, Telemetry
from contract.topics import Channel

pytestmark = [pytest.mark.integration, pytest.mark.slow]

T0 = 1_767_592_800.0
KEY = "workers-test-key"
STARTUP_S = 30.0
#: The documented bound: leader_poll_s (0.2 here) + restore; generous for a busy CI box.
TAKEOVER_S = 20.0
ROBOTS = ("weld-01", "weld-02")
MESSAGES = 150  # per robot
T = TypeVar("T")


def eventually(probe: Callable[[], T | None], what: str, timeout_s: float = STARTUP_S) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout_s} s: {what}")
        time.sleep(0.05)


class Worker:
    def __init__(self, name: str, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.name, self.process, self.url, self.log = name, process, url, log

    def get(self, path: str, **params: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=5.0)

    def answers(self, path: str) -> int:
        try:
            return self.get(path).status_code
        except httpx.TransportError:
            return 0

    def leads(self) -> bool:
        return self.answers(f"/api/robots/{ROBOTS[0]}/health") == 200

    def counter(self, name: str) -> float:
        total = 0.0
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(name) and line[len(name)] in "{ ":
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def workers(
    mosquitto_broker: BrokerHandle, postgres_schema: PostgresSchema, topic_site: str, tmp_path: Path
) -> Iterator[Callable[[str], Worker]]:
    started: list[Worker] = []

    def start(name: str) -> Worker:
        port = free_port()
        log = tmp_path / f"{name}.log"
        command = [sys.executable, "-m", "factory.cli", "serve", "--worker", name]
        command += ["--state-dir", str(mosquitto_broker.state_dir), "--port", str(port)]
        command += ["--broker", mosquitto_broker.url, "--db", postgres_schema.store_url]
        env = os.environ | {
            "FACTORY_MQTT_TOPIC_FILTER": f"factory/{topic_site}/#",
            "FACTORY_API_KEY": KEY,
            "FACTORY_LEADER_POLL_S": "0.2",
            "FACTORY_MQTT_PROTOCOL": "mqtt5",
        }
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        worker = Worker(name, process, f"http://127.0.0.1:{port}", log)
        started.append(worker)
        eventually(lambda: worker.answers("/readyz") == 200, f"worker {name} ready")
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.kill(signal.SIGTERM)


def telemetry(robot: str, seq: int) -> bytes:
    ts = T0 + seq
    reading = Reading(ts=ts, temperature_c=40.0, vibration_rms_mm_s=0.5)
    return encode(Telemetry(v=1, robot=robot, ts=ts, boot="boot-1", seq=seq, readings=[reading]))


def count(schema: PostgresSchema, table: str) -> int:
    with psycopg.connect(schema.store_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def test_two_workers_share_ingest_and_the_engine_fails_over(
    mosquitto_broker: BrokerHandle,
    postgres_schema: PostgresSchema,
    topic_site: str,
    workers: Callable[[str], Worker],
) -> None:
    broker = mosquitto_broker
    first = workers("a")
    eventually(first.leads, "worker a leads the engine (it started alone)")
    second = workers("b")
    assert second.answers(f"/api/robots/{ROBOTS[0]}/health") == 503  # on standby

    # --- every reading stored once, the work shared ----------------------------------------
    publishers = {robot: broker.client(robot) for robot in ROBOTS}
    for robot, client in publishers.items():
        state = State(v=1, robot=robot, ts=T0, boot="boot-1", seq=1, state="RUNNING", since=T0)
        broker.publish(client, robot_topic(topic_site, robot, Channel.STATE), encode(state))
        topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
        for seq in range(2, MESSAGES + 2):
            broker.publish(client, topic, telemetry(robot, seq))
        for seq in range(2, 12):  # a store-and-forward replay: the same identities again
            broker.publish(client, topic, telemetry(robot, seq))
    total = MESSAGES * len(ROBOTS)
    eventually(
        lambda: count(postgres_schema, "telemetry_messages") == total, f"{total} messages stored"
    )
    assert count(postgres_schema, "telemetry") == total  # one reading each, none twice
    stored = [
        w.counter('factory_ingest_messages_total{channel="telemetry"}') for w in (first, second)
    ]
    assert sum(stored) == total, stored  # each stored once, by one of them
    assert min(stored) > 0, stored  # shared out
    # Both see every robot live (their views), whichever worker stored the readings.
    for worker in (first, second):
        eventually(
            lambda w=worker: all(  # type: ignore[misc]
                r["last_seen"] == T0 + MESSAGES + 1 for r in w.get("/api/robots").json()
            ),
            f"worker {worker.name} sees the newest readings",
        )

    # --- the leader books two jobs; the robot accepts them ---------------------------------
    robot = ROBOTS[0]
    commands = broker.capture(robot_topic(topic_site, robot, Channel.CMD), who=robot)
    booked = []
    for component in ("gripper", "servo-j1"):
        response = httpx.post(
            f"{first.url}/api/work-orders",
            json={"robot": robot, "component": component},
            headers={"X-API-Key": KEY},
            timeout=10.0,
        )
        assert response.status_code == 201, response.text
        booked.append(response.json())
    refused = httpx.post(
        f"{second.url}/api/work-orders",
        json={"robot": robot, "component": "reducer-j2"},
        headers={"X-API-Key": KEY},
        timeout=10.0,
    )
    assert refused.status_code == 503
    assert "standby" in refused.json()["detail"]
    commands.wait_for(count=2)
    client = publishers[robot]
    event_topic = robot_topic(topic_site, robot, Channel.EVENT)
    seq = 1000
    for order in booked:
        seq += 1
        ack = Ack(v=1, robot=robot, ts=T0 + MESSAGES + 2, boot="boot-1", seq=seq, kind="ack",
                  command_id=order["command_id"], status="accepted")  # fmt: skip
        broker.publish(client, event_topic, encode(ack))
    for order in booked:
        eventually(
            lambda o=order: (
                second.get(f"/api/work-orders/{o['id']}").json()["status"]  # type: ignore[misc]
                == "acknowledged"
            ),
            f"{order['id']} acknowledged (read on the standby worker)",
        )

    # --- SIGKILL the leader: the other takes over ------------------------------------------
    killed_at = time.monotonic()
    first.kill()
    eventually(second.leads, "worker b took over the engine", TAKEOVER_S)
    took_s = time.monotonic() - killed_at
    assert took_s < TAKEOVER_S
    # The open orders continue on the new leader: the robot starts the first job.
    started = MaintenanceStarted(
        v=1,
        robot=robot,
        ts=T0 + MESSAGES + 3,
        boot="boot-1",
        seq=seq + 1,
        kind="maintenance_started",
        command_id=booked[0]["command_id"],
        component="gripper",
    )
    broker.publish(client, event_topic, encode(started))
    eventually(
        lambda: second.get(f"/api/work-orders/{booked[0]['id']}").json()["status"] == "in_progress",
        "the new leader moved the restored order on",
    )
    active = second.get("/api/work-orders", active=True).json()
    assert sorted(w["id"] for w in active) == sorted(o["id"] for o in booked)
    # A new job gets the next id, not one of the restored orders' again.
    more = httpx.post(
        f"{second.url}/api/work-orders",
        json={"robot": ROBOTS[1], "component": "gripper"},
        headers={"X-API-Key": KEY},
        timeout=10.0,
    )
    assert more.status_code == 201, more.text
    assert more.json()["id"] not in {o["id"] for o in booked}
    # Nothing was sent twice: one schedule command per booked order, ever.
    sent = [m for m in commands.messages if b'"schedule_maintenance"' in m.payload]
    ids = sorted(m.payload.split(b'"id":"')[1].split(b'"')[0] for m in sent)
    assert ids == sorted(o["command_id"].encode() for o in booked), ids
