"""Threads or one loop: what N paho clients cost when each has its own network thread
(``loop_start``) against all of them driven by one ``selectors`` loop in one thread.

Starts Mosquitto with the project's config and logins for N robots (``default?robots=N``) on an
ephemeral port. Each mode runs in a fresh child process: N clients log in as the N robots, one
producer thread publishes a ~200-byte QoS 1 message per robot every ``--interval-s`` (the
simulation thread's part in ``factory simulate``) for ``--seconds``; the child reports the time
until all were connected, CPU seconds (user + system) and messages acknowledged per second over
the publishing window, peak RSS and its thread count. Prints JSON.

    python bench/bench_device_loop.py [--robots 100 300] [--seconds 20] [--interval-s 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import queue
import resource
import selectors
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from broker_config.credentials import load_credentials
from broker_config.embedded import free_port, start_broker

PAYLOAD = b"x" * 200


class SelectorLoop:
    """Many paho clients on one thread: paho's external-loop callbacks register each socket with
    one selector; writes wanted from other threads are handed over through a queue and a wake-up
    socket pair (selectors are not thread-safe)."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._requests: queue.SimpleQueue[tuple[str, mqtt.Client, Any]] = queue.SimpleQueue()
        self.clients: list[mqtt.Client] = []
        self._loop_thread: threading.Thread | None = None
        self.stopping = False

    def attach(self, client: mqtt.Client) -> None:
        self.clients.append(client)
        client.on_socket_open = lambda c, u, s: self._request("open", c, s)
        client.on_socket_close = lambda c, u, s: self._request("close", c, s)
        client.on_socket_register_write = lambda c, u, s: self._request("write", c, s)
        client.on_socket_unregister_write = lambda c, u, s: self._request("nowrite", c, s)

    def _request(self, op: str, client: mqtt.Client, sock: Any) -> None:
        self._requests.put((op, client, sock))
        if threading.current_thread() is not self._loop_thread:
            with contextlib.suppress(OSError):  # full (a wake-up is pending) or closed at exit
                self._wake_w.send(b"\0")

    def _apply(self) -> None:
        while True:
            try:
                op, client, sock = self._requests.get_nowait()
            except queue.Empty:
                return
            try:
                if op == "open":
                    self.selector.register(sock, selectors.EVENT_READ, client)
                elif op == "close":
                    self.selector.unregister(sock)
                else:
                    events = selectors.EVENT_READ | (selectors.EVENT_WRITE if op == "write" else 0)
                    self.selector.modify(sock, events, client)
            except (KeyError, ValueError, OSError):
                pass  # closed meanwhile

    def run(self, connect: list[tuple[mqtt.Client, str, int]]) -> None:
        self._loop_thread = threading.current_thread()
        for client, host, port in connect:
            client.connect(host, port, keepalive=15)
        next_misc = time.monotonic() + 1.0
        while not self.stopping:
            self._apply()
            for key, events in self.selector.select(timeout=0.2):
                client = key.data
                if client is None:
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
                    continue
                if events & selectors.EVENT_READ:
                    client.loop_read()
                if events & selectors.EVENT_WRITE:
                    client.loop_write()
            now = time.monotonic()
            if now >= next_misc:
                next_misc = now + 1.0
                for client in self.clients:
                    client.loop_misc()


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_mode(
    mode: str, host: str, port: int, state_dir: str, seconds: float, interval_s: float, out: Any
) -> None:
    credentials = load_credentials(Path(state_dir))
    assert credentials is not None
    robots = sorted(credentials.robot_prefixes.items())
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

    clients: list[tuple[mqtt.Client, str]] = []
    for robot, prefix in robots:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-{robot}",
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        client.username_pw_set(*credentials.get(robot))
        client.on_connect, client.on_publish = on_connect, on_publish
        clients.append((client, f"{prefix}/telemetry"))
    started = time.monotonic()
    loop: SelectorLoop | None = None
    if mode == "threads":
        for client, _ in clients:
            client.connect_async(host, port, keepalive=15)
            client.loop_start()
    else:
        loop = SelectorLoop()
        for client, _ in clients:
            loop.attach(client)
        threading.Thread(
            target=loop.run, args=([(c, host, port) for c, _ in clients],), daemon=True
        ).start()
    while connected[0] < len(clients) and time.monotonic() - started < 120:
        time.sleep(0.01)
    connect_s = time.monotonic() - started
    cpu0, acked0, t0 = _cpu_s(), acked[0], time.monotonic()
    tick = t0
    while time.monotonic() - t0 < seconds:
        for client, topic in clients:
            client.publish(topic, PAYLOAD, qos=1)
        tick += interval_s
        time.sleep(max(0.0, tick - time.monotonic()))
    wall = time.monotonic() - t0
    cpu = _cpu_s() - cpu0
    result = {
        "mode": mode,
        "robots": len(clients),
        "connected": connected[0],
        "connect_s": round(connect_s, 2),
        "acked_per_s": round((acked[0] - acked0) / wall, 1),
        "offered_per_s": round(len(clients) / interval_s, 1),
        "cpu_s_per_wall_s": round(cpu / wall, 3),
        "cpu_ms_per_message": round(1000 * cpu / max(acked[0] - acked0, 1), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "threads": threading.active_count(),
        "open_fds": len(os.listdir("/proc/self/fd")),
    }
    # Reported before the teardown: the parent ends this process (a thread-per-client stop
    # waits out each client's reconnect back-off in turn, which is not what is measured here).
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
                for mode in ("threads", "loop"):
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
