"""Real-broker test harness: a Mosquitto and an amqtt broker per test session, and clients.

Import helpers with ``from brokers import ...`` (pytest puts ``tests/`` on ``sys.path``).

Fixtures (defined in ``tests/conftest.py``; use them in any test module)::

    broker              parametrized over "mosquitto" and "amqtt": a :class:`BrokerHandle`
    mosquitto_broker    the session's Mosquitto only (skipped if not installed, see below)
    amqtt_broker        the session's amqtt only
    topic_site          a unique site name per test, e.g. "t-3f9c01ab"

Each broker is started once per session from ``broker_config`` (the same rendered
``mosquitto.conf`` / amqtt config that ``factory broker`` uses) on an ephemeral port, with a
temporary state directory holding ``credentials.json`` for the default scenario's robots and the
``service``, and stopped by pid at the end. If Mosquitto is not installed its tests are skipped,
unless ``FACTORY_REQUIRE_BROKERS=1`` (CI), when they fail. Mark such tests
``@pytest.mark.integration``. A test that needs a broker of its own (a restart, other ports)
calls ``broker_config.embedded.start_broker(impl, free_port(), tmp_path, scenario=...)`` (robots
pinned to that scenario's prefixes) or with ``robot_prefixes=any_site_prefixes()`` (any site),
and ``.stop()``, after ``require_broker(impl)``. ``start_session_broker(impl, dir,
security=..., participants=N, robot_prefixes=None)`` starts one with a security profile
(tests/test_broker_security.py).

:class:`BrokerHandle` (what ``broker`` gives a test)::

    broker.impl            "mosquitto" | "amqtt"
    broker.url             "mqtt://127.0.0.1:PORT";  broker.host, broker.port
    broker.state_dir       Path with credentials.json (pass it to code that reads credentials)
    broker.robot_ids       robot ids that have credentials (default scenario), sorted
    broker.protocol        default protocol of clients: MQTTv5 on Mosquitto, MQTTv311 on amqtt
                           (amqtt 0.12 speaks only 3.1.1; see docs/broker.md)
    broker.credentials(who)        -> (username, password); who = "service" or a robot id
    broker.client(who=None, protocol=None, *, client_id=None, clean_session=True,
                  will=None, password=None, on_message=None)
                           (over TLS, verified with the broker's CA, on the tls profile)
                           -> a connected paho Client (VERSION2 callbacks, TCP_NODELAY, no
                              auto-reconnect, network loop running); who=None is anonymous;
                              will=Will(topic, payload, qos=1, retain=True). clean_session=False
                              on MQTT 5 also sets a 300 s session expiry. Raises
                              ConnectRefused(reason) if the CONNACK refuses. Every client made
                              this way is disconnected when the test ends.
    broker.connack(who=None, password=None, protocol=None, *, client_id=None, tls=None) -> int
                           CONNACK code; 0 accepted, 0x87 (135) "not authorised" for a bad login
                           on both brokers (paho 2 reports 3.1.1's code 5 as 0x87)
    broker.capture(*filters, who=None, qos=1, protocol=None, client_id=None,
                   clean_session=True) -> Capture (records from the CONNACK on; SUBACK received)
    broker.publish(client, topic, payload, qos=1, retain=False)  waits until acknowledged
    broker.subscribe(client, *filters, qos=1) -> SUBACK codes (0x80 = refused)
    broker.last_session_present   session-present flag of the last CONNACK
    broker.disconnect(client)  clean DISCONNECT, waits until sent (no will). Do not use
                           client.disconnect() + loop_stop(): the DISCONNECT may never be sent.
    broker.kill(client)    drop the TCP connection without DISCONNECT (the will fires)

:class:`Capture` records every message its client receives as :class:`Message`
``(topic, payload, qos, retain)``::

    capture.client                 its paho client
    capture.messages               those matching the capture's own filters
    capture.unfiltered             everything the client was sent
    capture.wait_for(predicate=None, timeout_s=15.0, count=1) -> list[Message]
                                   bounded wait for ``count`` matching messages; fails the test
                                   with what did arrive if they do not
    capture.topics()               topics of ``messages`` in arrival order
    capture.granted                SUBACK codes (0..2 granted, 0x80 refused)

Helpers: ``require_broker(impl)`` skips (or, with FACTORY_REQUIRE_BROKERS=1, fails) when ``impl``
is not installed. ``robot_topic(site, robot_id, channel, area="area-1", line="line-1")`` builds
a topic. The product pins each robot to its scenario prefix; the *session* brokers alone let the
default scenario's robots publish under any site/area/line (:func:`any_site_prefixes`), so any
``topic_site`` works. A test of the real prefixes starts its own broker from a scenario.

Writing tests that hold on both brokers (details and reasons in docs/broker.md):

- Put every topic under your ``topic_site``: retained messages outlive the test that made them.
- On CONNECT amqtt sends a client every retained message that matches *any* client's live
  filter (even one closed up to a second ago), so read ``capture.messages`` (filtered), not
  ``unfiltered``, and expect a retained message possibly twice (QoS 0 then QoS 1) on amqtt.
- To show that something was *not* delivered, follow it with a message that is, from the same
  publisher (same-publisher order is kept), wait for that one, then assert on what arrived.
- amqtt routes a message after its PUBACK: before asserting that a persistent session queued
  it, wait until a live subscriber has it.
"""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from broker_config.credentials import Credentials, load_credentials
from broker_config.embedded import (
    BrokerError,
    BrokerProcess,
    find_mosquitto,
    free_port,
    start_broker,
)
from contract.topics import Channel, Topic, matches
from plant import load_plant

REQUIRE_ENV = "FACTORY_REQUIRE_BROKERS"
IMPLS = ("mosquitto", "amqtt")
#: Bounds of the waits below: generous, as a loaded laptop may take seconds to answer; a wait
#: ends as soon as its condition holds.
CONNECT_TIMEOUT_S = 15.0
WAIT_TIMEOUT_S = 15.0
START_ATTEMPTS = 3
#: How long a persistent MQTT 5 session outlives its connection in tests.
SESSION_EXPIRY_S = 300


class ConnectRefused(Exception):
    def __init__(self, reason: int) -> None:
        super().__init__(f"CONNACK refused the connection: reason code {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


def robot_topic(
    site: str, robot_id: str, channel: Channel | str, area: str = "area-1", line: str = "line-1"
) -> str:
    return str(Topic(site, area, line, robot_id, Channel(channel)))


def _release(client: mqtt.Client) -> None:
    """Stop the network thread and close paho's wake-up socket pair.

    paho 2.2 opens a socket pair in ``loop_start`` and closes it only when the client object is
    garbage-collected; a test making hundreds of clients would pass fd 1024, past which paho's
    ``select()`` fails and clients silently stop receiving. (Private API: no public one exists.)
    """
    client.loop_stop()
    client._reset_sockets(sockpair_only=True)


def _nodelay(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Capture:
    """Messages received by one subscribed client; thread-safe, waits are bounded."""

    def __init__(self, filters: tuple[str, ...]) -> None:
        self.client: mqtt.Client  # set once connected; recording starts before the CONNACK
        self.filters = filters
        self.granted: list[int] = []
        self._all: list[Message] = []
        self._cond = threading.Condition()

    def record(self, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self._all.append(
                Message(message.topic, bytes(message.payload), message.qos, bool(message.retain))
            )
            self._cond.notify_all()

    @property
    def unfiltered(self) -> list[Message]:
        with self._cond:
            return list(self._all)

    @property
    def messages(self) -> list[Message]:
        return [m for m in self.unfiltered if any(matches(f, m.topic) for f in self.filters)]

    def topics(self) -> list[str]:
        return [m.topic for m in self.messages]

    def wait_for(
        self,
        predicate: Callable[[Message], bool] | None = None,
        timeout_s: float = WAIT_TIMEOUT_S,
        count: int = 1,
    ) -> list[Message]:
        def found() -> list[Message]:
            return [m for m in self.messages if predicate is None or predicate(m)]

        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(hits := found()) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(
                        f"waited {timeout_s} s for {count} message(s) on {self.filters}; "
                        f"got {len(hits)} matching, received: {[m.topic for m in self._all]}"
                    )
                self._cond.wait(left)
        return hits


@dataclass
class BrokerHandle:
    """One session broker, seen from one test; clients it makes are closed after the test."""

    process: BrokerProcess
    credentials_: Credentials
    _clients: list[mqtt.Client] = field(default_factory=list)
    #: The session-present flag of the last CONNACK this handle received.
    last_session_present: bool = False

    @property
    def impl(self) -> str:
        return self.process.impl

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def host(self) -> str:
        return self.process.host

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def state_dir(self) -> Path:
        return self.process.state_dir

    @property
    def robot_ids(self) -> list[str]:
        return self.credentials_.robot_ids

    @property
    def protocol(self) -> MQTTProtocolVersion:
        return (
            MQTTProtocolVersion.MQTTv5 if self.impl == "mosquitto" else MQTTProtocolVersion.MQTTv311
        )

    def credentials(self, who: str) -> tuple[str, str]:
        return self.credentials_.get(who)

    def _new_client(
        self,
        who: str | None,
        protocol: MQTTProtocolVersion | None,
        client_id: str | None,
        clean_session: bool,
        will: Will | None,
        password: str | None,
        tls: ssl.SSLContext | None = None,
    ) -> tuple[mqtt.Client, MQTTProtocolVersion]:
        proto = protocol or self.protocol
        v5 = proto == MQTTProtocolVersion.MQTTv5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{os.urandom(4).hex()}",
            clean_session=None if v5 else clean_session,
            protocol=proto,
            reconnect_on_failure=False,
        )
        client.on_socket_open = _nodelay
        context = tls or self.process.tls_context()
        if context is not None:
            client.tls_set_context(context)
        if who is not None:
            username, secret = self.credentials(who) if password is None else (who, password)
            client.username_pw_set(username, secret)
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        return client, proto

    def _connect(self, client: mqtt.Client, proto: MQTTProtocolVersion, clean_session: bool) -> int:
        done = threading.Event()
        result: list[int] = []

        def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
            result.append(int(reason.value))
            self.last_session_present = bool(flags.session_present)
            done.set()

        client.on_connect = on_connect
        kwargs: dict[str, Any] = {}
        if proto == MQTTProtocolVersion.MQTTv5:
            kwargs["clean_start"] = clean_session
            if not clean_session:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.SessionExpiryInterval = SESSION_EXPIRY_S
                kwargs["properties"] = props
        client.connect(self.host, self.port, keepalive=30, **kwargs)
        client.loop_start()
        if not done.wait(CONNECT_TIMEOUT_S):
            _release(client)
            pytest.fail(f"no CONNACK from {self.impl} within {CONNECT_TIMEOUT_S} s")
        return result[0]

    def client(
        self,
        who: str | None = None,
        protocol: MQTTProtocolVersion | None = None,
        *,
        client_id: str | None = None,
        clean_session: bool = True,
        will: Will | None = None,
        password: str | None = None,
        on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None] | None = None,
    ) -> mqtt.Client:
        client, proto = self._new_client(who, protocol, client_id, clean_session, will, password)
        return self.connected(client, proto, clean_session, on_message)

    def connected(
        self,
        client: mqtt.Client,
        proto: MQTTProtocolVersion,
        clean_session: bool,
        on_message: Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None] | None = None,
    ) -> mqtt.Client:
        """Connect a client made by ``_new_client``; raise ConnectRefused if refused."""
        if on_message is not None:
            client.on_message = on_message
        self._clients.append(client)
        code = self._connect(client, proto, clean_session)
        if code != 0:
            _release(client)
            self._clients.remove(client)
            raise ConnectRefused(code)
        return client

    def connack(
        self,
        who: str | None = None,
        password: str | None = None,
        protocol: MQTTProtocolVersion | None = None,
        *,
        client_id: str | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> int:
        """Connect once and return the CONNACK code (0 accepted; 4/5 or 0x86/0x87 refused)."""
        client, proto = self._new_client(who, protocol, client_id, True, None, password, tls)
        try:
            return self._connect(client, proto, True)
        finally:
            client.disconnect()
            _release(client)

    def capture(
        self,
        *filters: str,
        who: str | None = None,
        qos: int = 1,
        protocol: MQTTProtocolVersion | None = None,
        client_id: str | None = None,
        clean_session: bool = True,
    ) -> Capture:
        # Record from the first byte: a returning persistent session gets its queued messages,
        # and amqtt pushes retained ones, right after the CONNACK.
        capture = Capture(filters)
        capture.client = self.client(
            who,
            protocol,
            client_id=client_id,
            clean_session=clean_session,
            on_message=lambda c, u, m: capture.record(m),
        )
        if filters:
            capture.granted = self.subscribe(capture.client, *filters, qos=qos)
        return capture

    def subscribe(self, client: mqtt.Client, *filters: str, qos: int = 1) -> list[int]:
        """Subscribe and wait for the SUBACK; return its codes (128 / 0x80+ = refused)."""
        done = threading.Event()
        codes: list[int] = []

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
            codes.extend(int(r.value) for r in reasons)
            done.set()

        client.on_subscribe = on_subscribe
        client.subscribe([(f, qos) for f in filters])
        if not done.wait(WAIT_TIMEOUT_S):
            pytest.fail(f"no SUBACK from {self.impl} for {filters}")
        return codes

    def publish(
        self, client: mqtt.Client, topic: str, payload: bytes, qos: int = 1, retain: bool = False
    ) -> None:
        info = client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(WAIT_TIMEOUT_S)
        if not info.is_published():
            pytest.fail(f"{self.impl} did not acknowledge a publish on {topic}")

    def disconnect(self, client: mqtt.Client) -> None:
        """Clean MQTT DISCONNECT, waiting until paho has sent it and closed the socket.

        (``client.disconnect()`` followed at once by ``loop_stop()`` can stop the network thread
        before the DISCONNECT is written, leaving the broker with a half-dead session.)
        """
        if client.is_connected():
            gone = threading.Event()
            client.on_disconnect = lambda c, u, flags, reason, props: gone.set()
            client.disconnect()
            if not gone.wait(WAIT_TIMEOUT_S):
                pytest.fail(f"paho did not disconnect from {self.impl} within {WAIT_TIMEOUT_S} s")
        _release(client)
        if client in self._clients:
            self._clients.remove(client)

    def kill(self, client: mqtt.Client) -> None:
        """Close the client's socket without an MQTT DISCONNECT, as a crash or cable pull does."""
        sock = client.socket()
        client.loop_stop()
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        _release(client)

    def close_clients(self) -> None:
        for client in self._clients:
            if client.is_connected():
                client.disconnect()
            _release(client)
        self._clients.clear()


def require_broker(impl: str) -> None:
    """Skip the test if ``impl`` cannot run here; fail instead when FACTORY_REQUIRE_BROKERS=1."""
    if impl == "mosquitto" and find_mosquitto() is None:
        message = "Mosquitto is not installed (apt install mosquitto mosquitto-clients)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires it")
        pytest.skip(message)


def any_site_prefixes() -> dict[str, str]:
    """The default scenario's robots, each allowed under any site/area/line (``+``).

    The product's ACL pins each robot to its full prefix from the scenario; the session brokers
    loosen only that, so that every test can put its topics under its own ``topic_site``.
    tests/test_broker_security.py checks the full prefix on brokers started from a scenario.
    """
    return {robot.id: f"factory/+/+/+/{robot.id}" for robot in load_plant(None).robots}


def start_session_broker(impl: str, state_dir: Path, **options: Any) -> BrokerProcess:
    """Start ``impl`` on a free port (retrying if another process takes the port first)."""
    require_broker(impl)
    last: BrokerError | None = None
    options.setdefault("robot_prefixes", any_site_prefixes())
    for _ in range(START_ATTEMPTS):
        try:
            return start_broker(impl, free_port(), state_dir, scenario=None, **options)
        except BrokerError as exc:  # the port was taken between choosing and binding it
            last = exc
    pytest.fail(f"could not start {impl}: {last}")


def handle_for(process: BrokerProcess) -> BrokerHandle:
    credentials = load_credentials(process.state_dir)
    assert credentials is not None
    return BrokerHandle(process, credentials)


#: Brokers the ingest-and-maintenance integration test runs on: the two above and a 3-node
#: NATS JetStream cluster (MQTT 3.1.1 listeners). Not in ``IMPLS``: most broker tests check
#: Mosquitto/amqtt behaviour (MQTT 5, their ACL files) that NATS does not have.
CLUSTER_IMPLS = (*IMPLS, "nats")
NATS_NODES = 3


def start_session_nats(state_dir: Path) -> Any:
    """A 3-node NATS cluster for the session (``broker_config.nats_cluster.NatsCluster``, which
    has what :class:`BrokerHandle` reads of a broker: impl, host, port, url, state_dir)."""
    from broker_config.credentials import ensure_credentials
    from broker_config.nats_cluster import NatsError, find_nats_server, start_nats_cluster
    from plant import load_plant

    if find_nats_server() is None:
        message = "nats-server is not installed (apt install nats-server)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_ENV}=1 requires it")
        pytest.skip(message)
    credentials = ensure_credentials(state_dir, load_plant().robots)
    last: Exception | None = None
    for _ in range(START_ATTEMPTS):
        try:
            return start_nats_cluster(
                state_dir, credentials, NATS_NODES, robot_prefixes=any_site_prefixes()
            )
        except NatsError as exc:  # a port taken between choosing and binding it
            last = exc
    pytest.fail(f"could not start a NATS cluster: {last}")
