"""How fast the service ingests, and how soon a reading reaches the live stream: prints JSON.

Everything is real and on this machine: a Mosquitto started on an ephemeral port with our config
(``broker_config``), the service as ``factory serve`` in its own process with a fresh SQLite
file, and a robot publisher in a third process (paho, QoS 1, a robot's credentials).

* ``ingest``: for 1 reading per message and for batches of 10, the publisher sends as fast as
  QoS 1 lets it; measured from its first publish until every message is committed (watched in
  the database file, read-only, from this process: polling ``/metrics`` every 20 ms cost the
  service ~3.5 ms of its event loop a request, load the raw subscriber never carries), then
  ``/metrics`` must count them too and the rows are counted (``lost`` must be 0). The same
  publication to a bare paho subscriber (QoS 1, auto-ack, counting only) gives the ``raw`` rate
  to compare with; it is measured first, in the same invocation, while the service is not yet
  running (both subscribe to the same topics). Target: service ≥ 0.5 × raw at the same
  batching.
* ``stream_latency``: the publisher sends 1,000 readings/s (one per message) stamped with the
  wall-clock time of sending; an ``/api/stream`` client takes the time each reading arrives.
  Target: p99 ≤ 50 ms.

Each measurement runs ``--repeat`` times (the run with the median rate or p99 is reported, with
every run's figure beside it): the machine is shared, and its load average is in the output.

    .venv/bin/python bench/bench_ingest.py [--messages 20000] [--latency-s 10]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from broker_config.credentials import load_credentials
from broker_config.embedded import find_mosquitto, free_port, start_broker
from contract.codec import encode
from contract.payloads import Reading, Telemetry

STARTUP_S = 30.0
DRAIN_TIMEOUT_S = 300.0
POLL_S = 0.02
PUBLISH_INFLIGHT = 1000
RAW_TARGET_RATIO = 0.5
P99_TARGET_MS = 50.0


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def payload(robot: str, boot: str, seq: int, per_message: int, ts: float) -> bytes:
    readings = [
        Reading(ts=ts + i * 1e-3, temperature_c=40.0 + i, vibration_rms_mm_s=0.5)
        for i in range(per_message)
    ]
    return encode(Telemetry(v=1, robot=robot, ts=ts, boot=boot, seq=seq, readings=readings))


def _nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    import socket

    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def publish_run(
    host: str,
    port: int,
    login: tuple[str, str],
    topic: str,
    robot: str,
    boot: str,
    count: int,
    per_message: int,
    rate_per_s: float | None,
    result: Any,
) -> None:
    """Publisher process: ``count`` messages at QoS 1, paced to ``rate_per_s`` if given.

    Payloads are made ahead when unpaced (stamped with a fixed time), so the rate measured is
    the transport's; paced messages are stamped with the wall clock at sending."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{boot}")
    client.username_pw_set(*login)
    client.on_socket_open = _nodelay
    client.max_inflight_messages_set(PUBLISH_INFLIGHT)
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    ready = [payload(robot, boot, s + 1, per_message, 1.0e9 + s) for s in range(count)]
    start = time.time()
    infos = []
    for seq in range(1, count + 1):
        if rate_per_s is None:
            body = ready[seq - 1]
        else:
            due = start + (seq - 1) / rate_per_s
            if (wait := due - time.time()) > 0:
                time.sleep(wait)
            body = payload(robot, boot, seq, per_message, time.time())
        infos.append(client.publish(topic, body, qos=1))
    for info in infos:
        info.wait_for_publish(DRAIN_TIMEOUT_S)
    acked = time.time()
    client.disconnect()
    client.loop_stop()
    result.put({"start": start, "acked": acked})


class Publisher:
    """The publisher process, started and joined by the bench."""

    def __init__(self, broker: Any, login: tuple[str, str], robot: str, prefix: str) -> None:
        self.broker, self.login, self.robot = broker, login, robot
        # The robot's own prefix from the scenario: the broker's ACL allows no other.
        self.topic = f"{prefix}/telemetry"
        self._context = mp.get_context("spawn")

    def run(
        self, boot: str, count: int, per_message: int, rate_per_s: float | None = None
    ) -> tuple[Any, Any]:
        queue = self._context.Queue()
        process = self._context.Process(
            target=publish_run,
            args=(
                self.broker.host,
                self.broker.port,
                self.login,
                self.topic,
                self.robot,
                boot,
                count,
                per_message,
                rate_per_s,
                queue,
            ),
        )
        process.start()
        return process, queue


def raw_rate(broker: Any, publisher: Publisher, count: int, per_message: int) -> dict[str, float]:
    """A bare paho subscriber: QoS 1, automatic PUBACK, counts messages and nothing else."""
    got = threading.Event()
    received = [0]
    last = [0.0]

    def on_message(client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received[0] += 1
        if received[0] == count:
            last[0] = time.time()
            got.set()

    service_login = load_credentials(broker.state_dir).get("service")  # type: ignore[union-attr]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-raw-{per_message}")
    client.username_pw_set(*service_login)
    client.on_socket_open = _nodelay
    client.on_message = on_message
    subscribed = threading.Event()
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe(publisher.topic, qos=1)
    subscribed.wait(10)
    process, queue = publisher.run(f"raw-{per_message}", count, per_message)
    finished = got.wait(DRAIN_TIMEOUT_S)
    times = queue.get(timeout=DRAIN_TIMEOUT_S)
    process.join()
    client.disconnect()
    client.loop_stop()
    if not finished:
        raise RuntimeError(f"the raw subscriber got {received[0]} of {count} messages")
    elapsed = last[0] - times["start"]
    return {
        "readings_per_s": round(count * per_message / elapsed),
        "publisher_readings_per_s": round(count * per_message / (times["acked"] - times["start"])),
    }


class Service:
    """``factory serve`` in its own process."""

    def __init__(self, broker: Any, state_dir: Path) -> None:
        self.db = state_dir / "bench.db"
        self.port = free_port()  # (another process may take it first: then start() fails)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = state_dir / "serve.log"
        command = [sys.executable, "-m", "factory.cli", "serve", "--state-dir", str(state_dir)]
        command += ["--broker", broker.url, "--db", str(self.db), "--port", str(self.port)]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the service did not get ready; see {self.log_path}")
            time.sleep(0.1)

    def committed_messages(self) -> float:
        for line in httpx.get(f"{self.url}/metrics", timeout=10).text.splitlines():
            if line.startswith('factory_ingest_messages_total{channel="telemetry"}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def committed(self, db: sqlite3.Connection, robot: str, boot: str) -> int:
        """Telemetry messages of ``boot`` committed so far (the dedupe keys, one per message)."""
        (count,) = db.execute(
            "SELECT count(*) FROM telemetry_messages WHERE robot = ? AND boot = ?", (robot, boot)
        ).fetchone()
        return int(count)

    def rows(self, boot: str) -> int:
        with sqlite3.connect(f"file:{self.db}?mode=ro", uri=True) as db:
            (count,) = db.execute(
                "SELECT count(*) FROM telemetry WHERE boot = ?", (boot,)
            ).fetchone()
        return int(count)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def service_rate(
    service: Service, publisher: Publisher, count: int, per_message: int, rep: int
) -> dict[str, float]:
    before = service.committed_messages()
    boot = f"svc-{per_message}-{rep}-{os.getpid()}"
    process, queue = publisher.run(boot, count, per_message)
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    watch = sqlite3.connect(f"file:{service.db}?mode=ro", uri=True)
    try:
        while service.committed(watch, publisher.robot, boot) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the service did not commit {count} messages; see {service.log_path}"
                )
            time.sleep(POLL_S)
    finally:
        watch.close()
    done = time.time()
    times = queue.get(timeout=DRAIN_TIMEOUT_S)
    process.join()
    while service.committed_messages() < before + count:  # counted once acknowledged
        if time.monotonic() > deadline:
            raise RuntimeError(f"/metrics did not count {count} messages; see {service.log_path}")
        time.sleep(POLL_S)
    rows = service.rows(boot)
    return {
        "readings_per_s": round(count * per_message / (done - times["start"])),
        "lost": count * per_message - rows,
    }


def stream_latency(
    service: Service, publisher: Publisher, rate_per_s: float, duration_s: float
) -> dict[str, float]:
    count = int(rate_per_s * duration_s)
    latencies_ms: list[float] = []
    connected = threading.Event()

    def listen() -> None:
        params = {"robot": publisher.robot, "channel": "telemetry"}
        with httpx.stream(
            "GET", f"{service.url}/api/stream", params=params, timeout=30
        ) as response:
            for line in response.iter_lines():
                if line.startswith(": connected"):
                    connected.set()
                elif line.startswith("data: "):
                    now = time.time()
                    event = orjson.loads(line[6:])
                    latencies_ms.append((now - event["payload"]["readings"][0]["ts"]) * 1e3)
                    if len(latencies_ms) >= count:
                        return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    if not connected.wait(10):
        raise RuntimeError("the stream did not connect")
    process, queue = publisher.run(f"lat-{os.getpid()}-{time.monotonic_ns()}", count, 1, rate_per_s)
    queue.get(timeout=DRAIN_TIMEOUT_S)
    process.join()
    listener.join(timeout=10)
    ordered = sorted(latencies_ms)
    if not ordered:
        raise RuntimeError("no reading reached the stream")

    def pct(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "rate_readings_per_s": rate_per_s,
        "sent": count,
        "received": len(ordered),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def median_run(runs: list[dict[str, float]]) -> dict[str, Any]:
    """The run with the median rate, plus every rate (the machine is shared and noisy)."""
    ordered = sorted(runs, key=lambda r: r["readings_per_s"])
    return ordered[len(ordered) // 2] | {"all_readings_per_s": [r["readings_per_s"] for r in runs]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per ingest run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    args = parser.parse_args()
    if find_mosquitto() is None:
        sys.exit("Mosquitto is not installed (apt install mosquitto): this bench needs it.")
    state_dir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    broker = start_broker("mosquitto", free_port(), state_dir)
    credentials = load_credentials(state_dir)
    assert credentials is not None
    robot = credentials.robot_ids[0]
    publisher = Publisher(broker, credentials.get(robot), robot, credentials.prefixes[robot])
    report: dict[str, Any] = {
        "broker": "mosquitto",
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg()[0],
    }
    batchings = (1, 10)
    raw: dict[int, list[dict[str, float]]] = {b: [] for b in batchings}
    ingested: dict[int, list[dict[str, float]]] = {b: [] for b in batchings}
    try:
        # The service subscribes to factory/#, so the bare subscriber runs while it is stopped.
        for rep in range(args.repeat):
            for per_message in batchings:
                say(f"raw subscriber {rep + 1}/{args.repeat}: {args.messages} × {per_message}")
                raw[per_message].append(raw_rate(broker, publisher, args.messages, per_message))
        say("starting factory serve")
        service = Service(broker, state_dir)
        try:
            for rep in range(args.repeat):
                for per_message in batchings:
                    say(f"service {rep + 1}/{args.repeat}: {args.messages} × {per_message}")
                    run = service_rate(service, publisher, args.messages, per_message, rep)
                    ingested[per_message].append(run)
            latencies = []
            for rep in range(args.repeat):
                say(
                    f"stream latency {rep + 1}/{args.repeat}: {args.latency_rate:.0f} readings/s "
                    f"for {args.latency_s} s"
                )
                latencies.append(
                    stream_latency(service, publisher, args.latency_rate, args.latency_s)
                )
            latencies.sort(key=lambda run: run["p99_ms"])
            report["stream_latency"] = latencies[len(latencies) // 2] | {
                "all_p99_ms": [run["p99_ms"] for run in latencies]
            }
        finally:
            service.stop()
    finally:
        broker.stop()
    report["ingest"] = []
    for per_message in batchings:
        entry: dict[str, Any] = {
            "readings_per_message": per_message,
            "messages": args.messages,
            "raw": median_run(raw[per_message]),
            "service": median_run(ingested[per_message]),
        }
        entry["service"]["lost"] = max(r["lost"] for r in ingested[per_message])
        entry["ratio"] = round(
            entry["service"]["readings_per_s"] / entry["raw"]["readings_per_s"], 3
        )
        report["ingest"].append(entry)
    report["load_average_at_end"] = os.getloadavg()[0]
    report["targets"] = {"ratio_min": RAW_TARGET_RATIO, "p99_ms_max": P99_TARGET_MS}
    report["met"] = (
        all(e["ratio"] >= RAW_TARGET_RATIO and e["service"]["lost"] == 0 for e in report["ingest"])
        and report["stream_latency"]["p99_ms"] <= P99_TARGET_MS
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
