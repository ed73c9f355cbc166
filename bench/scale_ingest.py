"""End-to-end ingest past one process: readings/s through Mosquitto into ``factory serve``.

Four configurations, each on a Mosquitto of its own (the project's config, an ephemeral port:
no persistent session of one configuration steals the next one's shared messages):

* ``sqlite_1_worker``: one ``factory serve`` on a SQLite file (the embedded default);
* ``postgres_1_worker``: one ``factory serve --worker`` on a fresh PostgreSQL schema
  (``$share/ingest/factory/#`` plus its view);
* ``postgres_2_workers``: two of them on one schema, sharing the telemetry.

Each starts with the ceiling: a plain paho subscriber (QoS 1, counting only) on the same broker
gets the same publication, ``--messages`` telemetry messages of 10 readings from two publisher
processes (two robots, QoS 1, as fast as the broker acknowledges). Then the services, and the
publication again, timed from the first publish until every message is in the store; lost and
duplicated readings are counted from ``seq`` (:mod:`seq_audit`).
"""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import paho.mqtt.client as mqtt
import psutil
import psycopg
from bench_ingest import Publisher, payload
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from procs import say, spawn, stop, wait_ready
from psycopg import sql
from seq_audit import audit, duplicated_rows, stored_keys

from broker_config.credentials import load_credentials
from broker_config.embedded import free_port, start_broker

PER_MESSAGE = 10
T0 = 1_767_592_800.0
STEP_S = 0.01  # 10 readings 1 ms apart fit in it
INFLIGHT = 1000
PUBLISHERS = 2
DRAIN_S = 300.0


def publish_run(
    host: str,
    port: int,
    login: tuple[str, str],
    topic: str,
    robot: str,
    boot: str,
    count: int,
    result: Any,
) -> None:
    """Publisher process: ``count`` messages at QoS 1 as fast as acknowledged. Message ``seq``
    is stamped ``T0 + seq × STEP_S``: the publishers stay within the service's clock guard lead
    of each other (300 simulated s) however far one runs ahead in wall time."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{boot}")
    client.username_pw_set(*login)
    client.max_inflight_messages_set(INFLIGHT)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    ready = [payload(robot, boot, s, PER_MESSAGE, T0 + s * STEP_S) for s in range(1, count + 1)]
    start = time.time()
    infos = [client.publish(topic, body, qos=1) for body in ready]
    for info in infos:
        info.wait_for_publish(DRAIN_S)
    client.disconnect()
    client.loop_stop()
    result.put(start)


def publish(publishers: list[Publisher], boot: str, count: int) -> float:
    """Every publisher sends ``count`` messages; the wall time of the first publish."""
    context = mp.get_context("spawn")
    runs = []
    for i, p in enumerate(publishers):
        queue = context.Queue()
        args = (p.broker.host, p.broker.port, p.login, p.topic, p.robot, f"{boot}-{i}", count)
        process = context.Process(target=publish_run, args=(*args, queue))
        process.start()
        runs.append((process, queue))
    starts = [queue.get(timeout=DRAIN_S) for _, queue in runs]
    for process, _ in runs:
        process.join()
    return float(min(starts))


def raw_ceiling(
    broker: Any, publishers: list[Publisher], login: tuple[str, str], count: int
) -> int:
    """Readings/s a bare paho subscriber receives (QoS 1, counting only)."""
    total = count * len(publishers)
    received, done = [0], threading.Event()
    last = [0.0]

    def on_message(client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received[0] += 1
        if received[0] == total:
            last[0] = time.time()
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=MQTTProtocolVersion.MQTTv5
    )
    client.username_pw_set(*login)
    client.on_message = on_message
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe("factory/#", qos=1)
    subscribed.wait(10)
    cpu = time.process_time()
    start = publish(publishers, f"raw-{uuid.uuid4().hex[:6]}", count)
    finished = done.wait(DRAIN_S)
    cpu = time.process_time() - cpu
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise RuntimeError(f"the raw subscriber got {received[0]} of {total} messages")
    return round(total * PER_MESSAGE / (last[0] - start)), round(total * PER_MESSAGE / cpu)


def serve(
    broker: Any, state: Path, db: str, name: str | None, log: Path
) -> subprocess.Popen[bytes]:
    """``factory serve`` (a ``--worker`` if named), once ready."""
    port = free_port()
    command = ["serve", "--state-dir", str(state), "--broker", broker.url, "--db", db]
    command += ["--port", str(port), *(("--worker", name) if name else ())]
    process = spawn(command, log, {"FACTORY_MQTT_PROTOCOL": "mqtt5"})
    wait_ready(f"http://127.0.0.1:{port}", process, log)
    return process


def cpu_seconds(processes: list[subprocess.Popen[bytes]]) -> float:
    """User + system CPU seconds of the service processes so far."""
    total = 0.0
    for process in processes:
        times = psutil.Process(process.pid).cpu_times()
        total += times.user + times.system
    return total


def timed_ingest(
    publishers: list[Publisher],
    count: int,
    connect: Callable[[], Any],
    boot: str,
    services: list[subprocess.Popen[bytes]],
) -> dict[str, Any]:
    """Publish, wait until the store has every message, then audit it. ``readings_per_cpu_s``
    divides by the services' CPU seconds over the run: on a loaded machine that is the steadier
    figure (what a worker costs), the wall rate says what came through."""
    total = count * len(publishers)
    cpu = cpu_seconds(services)
    start = publish(publishers, boot, count)
    deadline = time.monotonic() + DRAIN_S
    with connect() as conn:
        while True:
            (stored,) = conn.execute(
                f"SELECT count(*) FROM telemetry_messages WHERE boot LIKE '{boot}-%'"
            ).fetchone()
            if stored >= total or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        done = time.time()
        cpu = cpu_seconds(services) - cpu
        keys, dups = stored_keys(conn), duplicated_rows(conn)
    published = {
        (p.robot, f"{boot}-{i}"): dict.fromkeys(range(1, count + 1), "telemetry")
        for i, p in enumerate(publishers)
    }
    return {
        "readings_per_s": round(total * PER_MESSAGE / (done - start)),
        "readings_per_cpu_s": round(total * PER_MESSAGE / cpu),
        "service_cpu_s": round(cpu, 2),
        **{k: v for k, v in audit(published, keys, dups).items() if k != "unseen"},
    }


def one_configuration(label: str, url: str, workers: int, count: int, tmp: Path) -> dict[str, Any]:
    state = tmp / label
    broker = start_broker("mosquitto", free_port(), state)
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    services: list[subprocess.Popen[bytes]] = []
    try:
        credentials = load_credentials(state)
        assert credentials is not None
        robots = credentials.robot_ids[:PUBLISHERS]
        publishers = [
            Publisher(broker, credentials.get(r), r, credentials.prefixes[r]) for r in robots
        ]
        say(f"{label}: raw subscriber ceiling …")
        raw, raw_per_cpu = raw_ceiling(broker, publishers, credentials.get("service"), count)
        if workers == 0:
            db_path = state / "ingest.db"
            services.append(serve(broker, state, str(db_path), None, state / "serve.log"))

            def connect() -> Any:
                return sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
        else:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            scoped = f"{url}?options=-csearch_path%3D{schema}"
            for w in range(workers):
                name = f"w{w}"
                services.append(serve(broker, state, scoped, name, state / f"{name}.log"))

            def connect() -> Any:
                return psycopg.connect(scoped)

        say(f"{label}: {count * PUBLISHERS} messages × {PER_MESSAGE} readings …")
        boot = f"svc-{uuid.uuid4().hex[:6]}"
        result = timed_ingest(publishers, count, connect, boot, services)
        return result | {
            "raw_readings_per_s": raw,
            "raw_readings_per_cpu_s": raw_per_cpu,
            "ratio": round(result["readings_per_s"] / raw, 3),
        }
    finally:
        for process in services:
            stop(process)
        broker.stop()
        if workers:
            with psycopg.connect(url, autocommit=True) as conn:
                drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                conn.execute(drop)


def ingest_rates(url: str, messages: int) -> dict[str, Any]:
    count = messages // PUBLISHERS
    report: dict[str, Any] = {
        "readings_per_message": PER_MESSAGE,
        "messages": count * PUBLISHERS,
        "publishers": PUBLISHERS,
    }
    with TemporaryDirectory(prefix="bench-scale-ingest-") as tmp:
        for label, workers in (
            ("sqlite_1_worker", 0),
            ("postgres_1_worker", 1),
            ("postgres_2_workers", 2),
        ):
            report[label] = one_configuration(label, url, workers, count, Path(tmp))
    return report
