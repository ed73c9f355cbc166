"""Robots at scale, end to end on this machine: N robots at 1 Hz, factor 1, for a duration.

Mosquitto (the project's config, an ephemeral port), ``factory serve`` on SQLite and ``factory
simulate --robots N`` (``--processes P`` when given: the simulator's workers are its children,
counted with it) run as processes, with the default scenario turned into a 1 s sampling,
factor 1, one reading a message scenario (the issue's acceptance run) starting at the wall
clock. An observer (``mosquitto_sub``, the ``service`` login, ``factory/#`` at QoS 1) is
subscribed before the first robot connects and records every message's ``(robot, boot, seq)``,
channel and arrival.
Reported as JSON (``bench_scale.py robots`` calls :func:`run_fleet`):

* ``all_online_s``: from starting the simulator until every robot's birth message arrived;
* ``audit``: ``lost`` / ``duplicated`` / ``unseen`` readings, stored against published ``seq``
  (:mod:`seq_audit`), counted once the simulator has stopped and the store has drained;
* ``ingest_lag_s``: the service's ``factory_ingest_lag_seconds`` sampled every second (oldest
  received message not yet committed) — p50 / p99 / max;
* ``delivery_lag_s``: the observer's arrival wall time minus the reading's simulated ``ts`` (at
  factor 1 the simulated clock runs with the wall clock), broker included. The simulated clock
  starts at ``--start`` once the simulator is up, not when it was asked to: that constant offset
  (``clock_offset_s``, the smallest arrival − ts of the run) is taken off every message;
* ``simulator``: RSS (MiB, the process and its children) and threads, sampled every 5 s; first,
  last and max between the warm-up (the first ``--warmup-s``) and the stop, and the series; with the
  service's, its CPU seconds per wall second after the warm-up (what N robots cost, whatever
  the machine's load);
* ``broker_dropping``: Mosquitto's "messages are being dropped" warnings per client (a full
  queue: where ``lost`` or ``unseen`` come from).

    .venv/bin/python bench/bench_scale.py robots --robots 300 --duration-s 120
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import time
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from procs import STARTUP_S, cpu_share, say, spawn, stop, tree_usage, wait_ready
from seq_audit import STORED_CHANNELS, audit, duplicated_rows, percentile, stored_keys

from broker_config.credentials import load_credentials
from broker_config.embedded import free_port, start_broker

DRAIN_S = 300.0
SAMPLE_RSS_S = 5.0
_LAG_LINE = re.compile(r"^factory_ingest_lag_seconds(?:\{[^}]*\})? (\S+)$", re.MULTILINE)


def scenario_file(directory: Path) -> Path:
    """The default scenario at 1 s sampling, factor 1, one reading a message."""
    text = (resources.files("plant") / "scenarios" / "default.toml").read_text(encoding="utf-8")
    text = re.sub(r"(?m)^sample_interval_s = \d+", "sample_interval_s = 1", text)
    text = re.sub(r"(?m)^factor = \d+", "factor = 1", text)
    text = re.sub(r"(?m)^telemetry_batch = \d+", "telemetry_batch = 1", text)
    path = directory / "fleet-1hz.toml"
    path.write_text(f"# default at 1 s sampling, factor 1 (bench/bench_fleet.py)\n{text}")
    return path


class Observer:
    """Records every robot message the broker routes: seq → channel per (robot, boot).

    Mosquitto's own C client (``mosquitto_sub``, QoS 1, the service's login) writes each message
    with its arrival time to a file, which :meth:`read` parses as it grows: a Python subscriber
    in the bench's process could not keep up with 1,000 robots on a loaded machine, and the
    broker would drop what it could not take (``unseen``), measuring the observer instead."""

    def __init__(self, host: str, port: int, login: tuple[str, str], out: Path) -> None:
        self.published: dict[tuple[str, str], dict[int, str]] = {}
        self.births: set[str] = set()
        self.lags: list[float] = []
        self._out, self._offset, self._partial = out, 0, b""
        command = ["mosquitto_sub", "-h", host, "-p", str(port), "-u", login[0], "-P", login[1]]
        command += ["-i", f"bench-observer-{os.getpid()}", "-q", "1", "-V", "mqttv5"]
        command += ["-t", "factory/#", "-F", "%U %t %p"]
        with out.open("wb") as sink:
            self.process = subprocess.Popen(command, stdout=sink, start_new_session=True)
        self.probe_topic = f"factory/bench/observer/probe/p{os.getpid()}/cmd"
        self._probed = False

    def wait_subscribed(self, host: str, port: int, login: tuple[str, str]) -> None:
        """Publish a probe (the service may publish commands) until the observer has it."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-probe-{os.getpid()}")
        client.username_pw_set(*login)
        client.connect(host, port)
        client.loop_start()
        deadline = time.monotonic() + STARTUP_S
        try:
            while not self._probed:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"mosquitto_sub did not subscribe; see {self._out}")
                client.publish(self.probe_topic, b"probe", qos=1).wait_for_publish(10)
                time.sleep(0.5)
                self.read()
        finally:
            client.disconnect()
            client.loop_stop()

    def settle(self) -> None:
        """Read until nothing more arrives for 3 s (what the broker still had queued for it)."""
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 3:
            before = self._offset
            self.read()
            if self._offset != before:
                quiet_since = time.monotonic()
            time.sleep(0.5)

    def read(self) -> None:
        """Take in what arrived since the last call."""
        with self._out.open("rb") as source:
            source.seek(self._offset)
            data = source.read()
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for line in lines:
            self._take(line)

    def _take(self, line: bytes) -> None:
        arrived, topic, payload = line.split(b" ", 2)
        if topic.decode() == self.probe_topic:
            self._probed = True
            return
        levels = topic.split(b"/")
        if len(levels) != 6:
            return  # the pace
        try:
            body = orjson.loads(payload)
            robot, boot, seq = body["robot"], body["boot"], int(body["seq"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return
        if seq == 0:
            return  # a will (OFFLINE after a lost connection) has no number of its own
        channel = levels[5].decode()
        self.published.setdefault((robot, boot), {})[seq] = channel
        if channel == "birth":
            self.births.add(robot)
        elif channel == "telemetry":
            self.lags.append(float(arrived) - float(body["ts"]))

    def stop(self) -> None:
        stop(self.process, signal.SIGTERM, 10)
        self.read()


def ingest_lag(url: str) -> float | None:
    try:
        match = _LAG_LINE.search(httpx.get(f"{url}/metrics", timeout=5).text)
    except httpx.HTTPError:
        return None
    return float(match[1]) if match else None


def drained(db: Path, url: str, observer: Observer) -> tuple[list[tuple[str, str, int]], int]:
    """The stored keys once the store holds every stored-channel message published, or once it
    has not grown for 10 s while the service reports no ingest lag (it has caught up: what is
    missing then is lost, not late); at most ``DRAIN_S``."""
    wanted = sum(
        1 for seqs in observer.published.values() for c in seqs.values() if c in STORED_CHANNELS
    )
    deadline, last, still_since = time.monotonic() + DRAIN_S, -1, time.monotonic()
    while True:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            keys, dups = stored_keys(conn), duplicated_rows(conn)
        if len(keys) != last:
            last, still_since = len(keys), time.monotonic()
        settled = time.monotonic() - still_since > 10 and ingest_lag(url) == 0.0
        if len(keys) >= wanted or settled or time.monotonic() > deadline:
            return keys, dups
        time.sleep(1.0)


def dropping(log: Path) -> dict[str, int]:
    """Mosquitto's "Outgoing messages are being dropped for client X" warnings, per client: a
    subscriber's queue was full (``max_queued_messages``) and messages to it were lost."""
    found = re.findall(
        r"being dropped for client (\S+?)\.?$", log.read_text(errors="replace"), re.M
    )
    return {client: found.count(client) for client in sorted(set(found))}


def rounded(values: list[float]) -> dict[str, float | None]:
    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "p50": r(percentile(values, 0.50)),
        "p99": r(percentile(values, 0.99)),
        "max": r(max(values) if values else None),
        "samples": len(values),
    }


def run_fleet(
    robots: int, duration_s: float, warmup_s: float, processes: int | None = None
) -> dict[str, Any]:
    """The run (see the module docstring); ``processes``: ``factory simulate --processes``
    (``None``: its default)."""
    with TemporaryDirectory(prefix="bench-fleet-") as tmp:
        state = Path(tmp)
        scenario = f"{scenario_file(state)}?robots={robots}"
        broker = start_broker("mosquitto", free_port(), state, scenario=scenario)
        started: list[subprocess.Popen[bytes]] = []
        try:
            return _run(broker, state, scenario, robots, (duration_s, warmup_s), processes, started)
        finally:
            for process in started:
                stop(process, signal.SIGKILL, 10)
            broker.stop()


def _run(
    broker: Any,
    state: Path,
    scenario: str,
    robots: int,
    times: tuple[float, float],
    workers: int | None,
    processes: list[subprocess.Popen[bytes]],
) -> dict[str, Any]:
    duration_s, warmup_s = times
    port, db = free_port(), state / "fleet.db"
    url = f"http://127.0.0.1:{port}"
    serve = spawn(
        [
            *("serve", "--state-dir", str(state), "--scenario", scenario, "--broker", broker.url),
            *("--db", str(db), "--port", str(port)),
        ],
        state / "serve.log",
    )
    processes.append(serve)
    wait_ready(url, serve, state / "serve.log")
    credentials = load_credentials(state)
    assert credentials is not None
    login = credentials.get("service")
    observer = Observer(broker.host, broker.port, login, state / "observed.txt")
    processes.append(observer.process)
    observer.wait_subscribed(broker.host, broker.port, login)
    start = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    say(f"{robots} robots for {duration_s:g} s (simulated start {start})")
    began = time.monotonic()
    simulate = spawn(
        [
            *(
                "simulate",
                "--state-dir",
                str(state),
                "--scenario",
                scenario,
                "--broker",
                broker.url,
            ),
            *("--factor", "1", "--duration", f"{duration_s:g}s", "--start", start),
            *(() if workers is None else ("--processes", str(workers))),
        ],
        state / "simulate.log",
    )
    processes.append(simulate)
    all_online_s: float | None = None
    usage: list[tuple[float, float, int]] = []
    cpu: dict[str, list[tuple[float, float]]] = {"simulator": [], "service": []}
    lags: list[float] = []
    next_rss = began
    while simulate.poll() is None:
        now = time.monotonic()
        observer.read()
        if all_online_s is None and len(observer.births) >= robots:
            all_online_s = round(now - began, 2)
            say(f"all {robots} online after {all_online_s} s")
        if now >= next_rss:
            rss, threads, sim_cpu = tree_usage(simulate.pid)
            usage.append((round(now - began, 1), round(rss, 1), threads))
            if now - began >= warmup_s:
                cpu["simulator"].append((now, sim_cpu))
                cpu["service"].append((now, tree_usage(serve.pid)[2]))
            next_rss += SAMPLE_RSS_S
        if (lag := ingest_lag(url)) is not None:
            lags.append(lag)
        if now - began > duration_s + STARTUP_S * 3:
            say("the simulator overran its duration: stopping it")
            stop(simulate)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
    ran_s = time.monotonic() - began
    observer.settle()
    keys, dups = drained(db, url, observer)
    observer.stop()
    stop_s = stop(serve)
    offset = min(observer.lags, default=0.0)
    after = [u for u in usage if warmup_s <= u[0] <= duration_s] or usage  # not the stop
    sim_log = (state / "simulate.log").read_text(errors="replace").strip().splitlines()
    return {
        "robots": robots,
        "processes": workers,
        "duration_s": duration_s,
        "simulator_wall_s": round(ran_s, 1),
        "simulator_exit": simulate.returncode,
        "all_online_s": all_online_s,
        "robots_seen": len(observer.births),
        "audit": audit(observer.published, keys, dups),
        "ingest_lag_s": rounded(lags),
        "clock_offset_s": round(offset, 3),
        "delivery_lag_s": rounded([lag - offset for lag in observer.lags]),
        "simulator": {
            "warmup_s": warmup_s,
            "rss_mib_first": after[0][1] if after else None,
            "rss_mib_last": after[-1][1] if after else None,
            "rss_mib_max": max(u[1] for u in after) if after else None,
            "threads_max": max(u[2] for u in usage) if usage else None,
            "cpu_s_per_wall_s": cpu_share(cpu["simulator"]),
            "series": [list(u) for u in usage],
        },
        "service_cpu_s_per_wall_s": cpu_share(cpu["service"]),
        "service_stop_s": round(stop_s, 2),
        "broker_dropping": dropping(broker.files.log_file),
        "simulator_log_tail": sim_log[-3:],
    }
