"""A NATS JetStream cluster with MQTT listeners, as local child processes (``--impl nats``).

``start_nats_cluster(state_dir, nodes=3)`` renders one config per node (:mod:`broker_config.
nats_conf`, logins from ``STATE_DIR/credentials.json``), starts ``nats-server`` for each on
ephemeral ports (each in its own session, stopped if we die), and waits until the cluster really
carries MQTT: a QoS 1 message published on the first node reaches a subscriber on the last one.
A single CONNACK is not enough — JetStream must elect its meta leader and create the MQTT
streams before a QoS 1 subscription works.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import ssl
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from broker_config.acl import SERVICE_USER
from broker_config.credentials import Credentials
from broker_config.layout import broker_dir
from broker_config.nats_conf import NatsNode, nats_users, render_nats_conf
from broker_config.ports import free_port

NATS_PATHS = ("/usr/sbin/nats-server", "/usr/local/bin/nats-server", "/usr/bin/nats-server")
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 5.0
#: A cmd topic only the service may publish: the readiness round trip.
PROBE_TOPIC = "factory/probe/probe/probe/probe/cmd"


class NatsError(Exception):
    """The cluster cannot be started; ``str()`` says what to do."""


def find_nats_server() -> str | None:
    found = shutil.which("nats-server")
    return found or next((p for p in NATS_PATHS if os.access(p, os.X_OK)), None)


@dataclass
class NatsCluster:
    """Running nodes; ``url``/``port`` are the first node's MQTT listener (any node works)."""

    nodes: list[NatsNode]
    processes: list[subprocess.Popen[bytes]]
    state_dir: Path
    host: str
    logs: list[Path]
    impl: str = "nats"
    ws_port: int | None = None
    _outputs: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def port(self) -> int:
        return self.nodes[0].mqtt_port

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def urls(self) -> list[str]:
        return [f"mqtt://{self.host}:{n.mqtt_port}" for n in self.nodes]

    @property
    def pid(self) -> int:
        return self.processes[0].pid

    def tls_context(self) -> ssl.SSLContext | None:
        """No TLS on these listeners (a ``BrokerProcess`` has one when started with it)."""
        return None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout_s)
        for output in self._outputs:
            output.close()
        self._outputs.clear()
        return max(abs(int(p.returncode)) for p in self.processes)

    def wait_ready(self, credentials: Credentials, timeout_s: float = READY_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not _round_trip(self, credentials):
            for process, log in zip(self.processes, self.logs, strict=True):
                if process.poll() is not None:
                    self.stop()
                    tail = log.read_text(errors="replace").strip().splitlines()[-1:]
                    raise NatsError(f"nats-server exited at start: {' '.join(tail)} (see {log})")
            if time.monotonic() > deadline:
                self.stop()
                raise NatsError(f"the NATS cluster did not carry MQTT within {timeout_s:.0f} s")
            time.sleep(0.2)


def _client(cluster: NatsCluster, credentials: Credentials, port: int) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"probe-{secrets.token_hex(4)}",
        protocol=MQTTProtocolVersion.MQTTv311,
        reconnect_on_failure=False,
    )
    client.username_pw_set(*credentials.get(SERVICE_USER))
    client.connect(cluster.host, port, keepalive=10)
    return client


def _round_trip(cluster: NatsCluster, credentials: Credentials, timeout_s: float = 3.0) -> bool:
    """A QoS 1 message from the first node to a subscriber on the last one."""
    got = threading.Event()
    subscribed = threading.Event()
    token = secrets.token_hex(8).encode()
    try:
        sub = _client(cluster, credentials, cluster.nodes[-1].mqtt_port)
        pub = _client(cluster, credentials, cluster.nodes[0].mqtt_port)
    except OSError:
        return False

    def on_message(c: Any, u: Any, message: mqtt.MQTTMessage) -> None:
        if message.payload == token:
            got.set()

    def on_subscribe(c: Any, u: Any, mid: Any, codes: Any, props: Any) -> None:
        if all(not code.is_failure for code in codes):
            subscribed.set()

    sub.on_message = on_message
    sub.on_subscribe = on_subscribe
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe(PROBE_TOPIC, qos=1)
    try:
        sub.loop_start()
        pub.loop_start()
        if not subscribed.wait(timeout_s):
            return False
        pub.publish(PROBE_TOPIC, token, qos=1)
        return got.wait(timeout_s)
    finally:
        for client in (sub, pub):
            client.disconnect()
            client.loop_stop()


def start_nats_cluster(
    state_dir: Path,
    credentials: Credentials,
    nodes: int = 3,
    *,
    host: str = "127.0.0.1",
    ready_timeout_s: float | None = READY_TIMEOUT_S,
    robot_prefixes: Mapping[str, str] | None = None,
) -> NatsCluster:
    """Start ``nodes`` nats-server processes on free ports; wait until MQTT crosses the cluster."""
    binary = find_nats_server()
    if binary is None:
        raise NatsError("nats-server is not installed (apt install nats-server)")
    if not 1 <= nodes <= 9:
        raise NatsError(f"--cluster: 1 to 9 nodes, not {nodes}")
    root = broker_dir(state_dir) / "nats"
    shutil.rmtree(root, ignore_errors=True)  # a new cluster: stale JetStream metadata would
    root.mkdir(parents=True)  # make the nodes wait for peers that no longer exist
    members = [
        NatsNode(f"n{i}", free_port(), free_port(), free_port(), root / f"n{i}-jetstream")
        for i in range(nodes)
    ]
    users = nats_users(credentials, secrets.token_urlsafe(18), robot_prefixes)
    from broker_config.embedded import die_with_parent

    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    outputs: list[IO[bytes]] = []
    for node in members:
        config = root / f"{node.name}.conf"
        config.write_text(render_nats_conf(node, members, users, host=host), encoding="utf-8")
        config.chmod(0o600)  # it holds every password
        log = root / f"{node.name}.log"
        output = log.open("wb")
        outputs.append(output)
        logs.append(log)
        processes.append(
            subprocess.Popen(
                [*die_with_parent(), binary, "-c", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    cluster = NatsCluster(members, processes, state_dir, host, logs, _outputs=outputs)
    if ready_timeout_s is not None:
        try:
            cluster.wait_ready(credentials, ready_timeout_s)
        except BaseException:
            cluster.stop()
            raise
    return cluster


def run_nats_broker(state_dir: Path, scenario: str | None, nodes: int) -> None:
    """``factory broker --impl nats --cluster N``: the cluster in the foreground until Ctrl-C."""
    import sys

    from broker_config.credentials import CredentialsError, ensure_credentials
    from broker_config.layout import RunningBroker, clear_running, write_running
    from plant import PlantError, load_plant

    def fail(message: str) -> None:
        print(f"error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        credentials = ensure_credentials(state_dir, load_plant(scenario).robots)
    except (PlantError, CredentialsError) as exc:
        fail(str(exc).splitlines()[0])
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)
    try:
        cluster = start_nats_cluster(state_dir, credentials, nodes)
    except NatsError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        return
    write_running(state_dir, RunningBroker("nats", cluster.pid, cluster.host, cluster.port))
    print(
        f"NATS JetStream cluster of {nodes} node(s), MQTT 3.1.1 on "
        f"{', '.join(cluster.urls)} (logs in {cluster.logs[0].parent})\n"
        "  robots and the service may use any node; Ctrl-C stops the cluster.",
        flush=True,
    )
    try:
        while all(p.poll() is None for p in cluster.processes):
            time.sleep(0.5)
        print("error: a nats-server node exited; stopping the cluster", file=sys.stderr)
    except KeyboardInterrupt:
        print("stopping the cluster …", flush=True)
    finally:
        cluster.stop()
        clear_running(state_dir, cluster.pid)
