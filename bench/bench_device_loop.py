"""Threads or one loop: what N robots' MQTT clients cost when each paho client has its own
network thread (``loop_start``, the device side before issue 15) against all of them on the
project's :class:`~simulator.devices.net_loop.NetworkLoop` (one thread per process).

Starts Mosquitto with the project's config and logins for N robots (``default?robots=N``) on an
ephemeral port. Each mode runs in a fresh child process: N clients log in as the N robots, one
producer thread (the simulation thread's part in ``factory simulate``) sends one QoS 1 message
per robot every ``--interval-s`` for ``--seconds``; the child reports the time until all were
connected, CPU seconds (user + system) and messages acknowledged per second over the publishing
window, peak RSS, its thread count and open descriptors, and how long a stop of all robots took.
Modes:

- ``threads``: bare paho clients, ``loop_start`` each, a 200-byte payload;
- ``loop``: the same bare clients on one ``NetworkLoop`` (the loop's own cost);
- ``agents``: what ``factory simulate`` runs: a ``DeviceAgent`` per robot on one ``NetworkLoop``,
  each message a contract telemetry payload built from a model ``Sample`` (~230 bytes), and the
  stop is ``fleet_links.stop_all`` (OFFLINE published by every robot, then disconnect).

    python bench/bench_device_loop.py [--robots 100 300] [--seconds 20] [--interval-s 1]
        [--modes threads loop agents]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import queue
import resource
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from broker_config.credentials import load_credentials
from broker_config.embedded import free_port, start_broker
from contract.topics import Channel, Topic
from simulator.devices.agent import DeviceAgent
from simulator.devices.fleet_links import stop_all
from simulator.devices.net_loop import NetworkLoop
from simulator.model.records import BirthRecord, Sample

PAYLOAD = b"x" * 200
#: A welder-like reading: ~230 bytes as a contract telemetry payload.
VALUES = {f"sensor_{i}": 20.0 + i / 7 for i in range(8)}


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _bare_clients(
    credentials: Any, on_connect: Any, on_publish: Any
) -> list[tuple[mqtt.Client, str]]:
    clients = []
    for robot, prefix in sorted(credentials.robot_prefixes.items()):
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-{robot}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.username_pw_set(*credentials.get(robot))
        client.on_connect, client.on_publish = on_connect, on_publish
        clients.append((client, f"{prefix}/telemetry"))
    return clients


def _agents(
    credentials: Any, host: str, port: int, network: NetworkLoop, on_publish: Any
) -> list[DeviceAgent]:
    agents = []
    for robot, prefix in sorted(credentials.robot_prefixes.items()):
        username, password = credentials.get(robot)
        agent = DeviceAgent(
            Topic.parse(f"{prefix}/{Channel.STATE.value}"),
            host=host,
            port=port,
            username=username,
            password=password,
            boot=os.urandom(4).hex(),
            birth=partial(BirthRecord, robot, 0.0, {"kind": "welder"}),
            on_command=lambda command: None,
            network=network,
        )
        agent._client.on_publish = on_publish  # the bench counts acknowledgements
        agents.append(agent)
    return agents


def run_mode(
    mode: str, host: str, port: int, state_dir: str, seconds: float, interval_s: float, out: Any
) -> None:
    credentials = load_credentials(Path(state_dir))
    assert credentials is not None
    connected = [0]
    acked = [0]
    lock = threading.Lock()

    def on_connect(client: mqtt.Client, u: Any, f: Any, reason: Any, p: Any) -> None:
        if not reason.is_failure:
            with lock:
                connected[0] += 1

    def on_publish(client: mqtt.Client, u: Any, mid: int, reason: Any, p: Any) -> None:
        with lock:
            acked[0] += 1

    started = time.monotonic()
    # Not for "threads": the loop raises the descriptor limit, which the old side never did.
    network = NetworkLoop(clients=len(credentials.robot_prefixes) if mode != "threads" else 1)
    agents: list[DeviceAgent] = []
    clients: list[tuple[mqtt.Client, str]] = []
    links = []
    if mode == "agents":
        agents = _agents(credentials, host, port, network, on_publish)
        for agent in agents:
            agent.start()
    else:
        clients = _bare_clients(credentials, on_connect, on_publish)
        for client, _ in clients:
            if mode == "threads":
                client.connect_async(host, port, keepalive=15)
                client.loop_start()
            else:
                links.append(network.link(client, host, port, keepalive_s=15, name="bench"))
                links[-1].start()
    robots = len(agents) or len(clients)

    def online() -> int:
        return sum(a.connected for a in agents) if agents else connected[0]

    while online() < robots and time.monotonic() - started < 120:
        time.sleep(0.01)
    connect_s = time.monotonic() - started
    threads = threading.active_count()
    cpu0, acked0, t0 = _cpu_s(), acked[0], time.monotonic()
    tick = t0
    ts = 1.0e9
    while time.monotonic() - t0 < seconds:
        ts += interval_s
        for agent in agents:
            agent.send(Sample(agent.robot, ts, VALUES))
        for client, topic in clients:
            client.publish(topic, PAYLOAD, qos=1)
        tick += interval_s
        time.sleep(max(0.0, tick - time.monotonic()))
    wall = time.monotonic() - t0
    cpu = _cpu_s() - cpu0
    result: dict[str, Any] = {
        "mode": mode,
        "robots": robots,
        "connected": online(),
        "connect_s": round(connect_s, 2),
        "acked_per_s": round((acked[0] - acked0) / wall, 1),
        "offered_per_s": round(robots / interval_s, 1),
        "cpu_s_per_wall_s": round(cpu / wall, 3),
        "cpu_ms_per_message": round(1000 * cpu / max(acked[0] - acked0, 1), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": threads,
        "open_fds": len(os.listdir("/proc/self/fd")),
    }
    stopped = time.monotonic()
    if mode == "agents":
        stop_all(agents, network)
        result["stop_s"] = round(time.monotonic() - stopped, 2)
    elif mode == "loop":
        for link in links:
            link.close()
        network.stop()
        result["stop_s"] = round(time.monotonic() - stopped, 2)
    # A thread-per-client stop is not measured: it waits out each client's reconnect back-off
    # in turn (minutes at 1,000); the parent ends this process.
    out.put(result)
    time.sleep(3600)


def _result(child: Any, out: Any, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result: dict[str, Any] = out.get(timeout=1.0)
            return result
        except queue.Empty:
            if not child.is_alive():
                raise SystemExit(f"the bench child failed (exit {child.exitcode})") from None
    raise SystemExit("the bench child did not report in time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--robots", type=int, nargs="+", default=[100, 300])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval-s", type=float, default=1.0)
    parser.add_argument("--modes", nargs="+", default=["threads", "loop", "agents"])
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    for n in args.robots:
        with tempfile.TemporaryDirectory() as tmp:
            broker = start_broker(
                impl="mosquitto",
                port=free_port(),
                state_dir=Path(tmp),
                scenario=f"default?robots={n}",
            )
            try:
                for mode in args.modes:
                    ctx = mp.get_context("spawn")
                    out: Any = ctx.Queue()
                    child = ctx.Process(
                        target=run_mode,
                        args=(
                            mode,
                            broker.host,
                            broker.port,
                            tmp,
                            args.seconds,
                            args.interval_s,
                            out,
                        ),
                    )
                    child.start()
                    try:
                        results.append(_result(child, out, args.seconds + 240))
                    finally:
                        child.kill()
                        child.join()
            finally:
                broker.stop()
    print(
        json.dumps(
            {
                "bench": "device_loop",
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "load_average": os.getloadavg(),
                "paho": mqtt.__version__ if hasattr(mqtt, "__version__") else "2.x",
                "seconds": args.seconds,
                "interval_s": args.interval_s,
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
