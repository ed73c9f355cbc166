"""Where amqtt 0.12 (the embedded broker) and Mosquitto 2 differ, pinned on both brokers.

Each test asserts what each broker actually does, so an amqtt upgrade that changes a behaviour
fails here and ``docs/broker.md`` ("amqtt differences") gets updated with it.
"""

from __future__ import annotations

import itertools
import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
from brokers import (
    BrokerHandle,
    Will,
    any_site_prefixes,
    handle_for,
    require_broker,
    robot_topic,
)
from paho.mqtt.enums import MQTTProtocolVersion

from broker_config.embedded import free_port, start_broker
from contract.codec import MAX_PAYLOAD_BYTES
from contract.topics import Channel

pytestmark = pytest.mark.integration

V311 = MQTTProtocolVersion.MQTTv311
V5 = MQTTProtocolVersion.MQTTv5


def _robots(broker: BrokerHandle) -> tuple[str, str]:
    first, second = broker.robot_ids[:2]
    return first, second


def _offline_delivery(
    broker: BrokerHandle, site: str, who: str | None
) -> tuple[list[bytes], list[bool]]:
    """Subscribe with a persistent session, go away, let a robot publish, come back.

    Returns the payloads the returning session got (in order) and their retain flags.
    """
    robot, _ = _robots(broker)
    client_id = f"persistent-{os.urandom(4).hex()}"
    topic = robot_topic(site, robot, Channel.EVENT)
    first = broker.capture(topic, who=who, client_id=client_id, clean_session=False)
    broker.disconnect(first.client)

    publisher = broker.client(robot)
    watcher = broker.capture(topic, who="service")
    broker.publish(publisher, topic, b"while away")
    # Once a live subscriber has it, the broker has routed it (amqtt routes asynchronously, after
    # the PUBACK): it is queued for the absent session rather than racing its return.
    watcher.wait_for()
    back = broker.capture(topic, who=who, client_id=client_id, clean_session=False)
    broker.publish(publisher, topic, b"after return")  # same publisher: arrives after the queue
    back.wait_for(lambda m: m.payload == b"after return")
    return [m.payload for m in back.messages], [m.retain for m in back.messages]


def test_offline_qos1_is_queued_for_an_authenticated_persistent_session(
    broker: BrokerHandle, topic_site: str
) -> None:
    payloads, retain_flags = _offline_delivery(broker, topic_site, "service")
    assert payloads == [b"while away", b"after return"]
    # amqtt hands the queued message over with the retain flag set; Mosquitto does not.
    assert retain_flags == ([True, False] if broker.impl == "amqtt" else [False, False])


def test_offline_qos1_for_an_anonymous_persistent_session(
    broker: BrokerHandle, topic_site: str
) -> None:
    payloads, _ = _offline_delivery(broker, topic_site, None)
    if broker.impl == "amqtt":
        assert payloads == [b"after return"]  # amqtt never queues for anonymous sessions
    else:
        assert payloads == [b"while away", b"after return"]


def test_mqtt5(broker: BrokerHandle) -> None:
    code = broker.connack(protocol=V5)
    if broker.impl == "amqtt":
        assert code != 0  # amqtt 0.12 speaks MQTT 3.1.1 only
    else:
        assert code == 0
    assert broker.connack(protocol=V311) == 0


def test_retained_messages_pushed_on_connect_for_other_clients_filters(
    broker: BrokerHandle, topic_site: str
) -> None:
    robot_a, robot_b = _robots(broker)
    watcher = broker.capture(f"factory/{topic_site}/#", who="service")  # stays connected
    state_a = robot_topic(topic_site, robot_a, Channel.STATE)
    broker.publish(broker.client(robot_a), state_a, b"a is running", retain=True)
    watcher.wait_for(lambda m: m.topic == state_a)

    # Robot B connects and subscribes only to its own commands.
    cmd_b = robot_topic(topic_site, robot_b, Channel.CMD)
    capture_b = broker.capture(cmd_b, who=robot_b)
    broker.publish(broker.client("service"), cmd_b, b"for b")
    capture_b.wait_for()

    leaked = [m for m in capture_b.unfiltered if m.topic == state_a]
    if broker.impl == "amqtt":
        # On CONNECT amqtt sends every retained message that matches *any* client's filter,
        # without asking the receive ACL: B, which may read only its commands, got A's state
        # (once per live filter that matches it, and other tests' clients may have some).
        assert leaked
        assert {(m.payload, m.retain, m.qos) for m in leaked} == {(b"a is running", True, 0)}
    else:
        assert leaked == []
    assert [m.payload for m in capture_b.messages] == [b"for b"]


@pytest.mark.parametrize("who", ["robot", "anonymous"])
def test_a_will_on_a_topic_the_client_may_not_publish_is_dropped(
    broker: BrokerHandle, topic_site: str, who: str
) -> None:
    """Mosquitto checks a will against the ACL; stock amqtt does not (our auth plugin does), so
    without it a robot could forge another's state, and an anonymous watcher a command."""
    robot_a, robot_b = _robots(broker)
    target = robot_topic(topic_site, robot_b, Channel.STATE if who == "robot" else Channel.CMD)
    watcher = broker.capture(f"factory/{topic_site}/#", who="service")
    client = broker.client(robot_a if who == "robot" else None, will=Will(target, b"forged"))
    broker.kill(client)
    marker = robot_topic(topic_site, robot_a, Channel.CMD)
    broker.publish(broker.client("service"), marker, b"marker")
    watcher.wait_for(lambda m: m.topic == marker)
    assert [m.payload for m in watcher.messages if m.topic == target] == []


def _connect_and_disconnect(client_id: str, username: str, password: str, will: Will) -> bytes:
    """CONNECT with a will and DISCONNECT in one write, as a client that quits at once does."""

    def field(value: str | bytes) -> bytes:
        data = value.encode() if isinstance(value, str) else value
        return struct.pack("!H", len(data)) + data

    flags = 0x80 | 0x40 | 0x04 | (will.qos << 3) | (0x20 if will.retain else 0) | 0x02
    body = field("MQTT") + bytes([4, flags]) + struct.pack("!H", 30)
    body += field(client_id) + field(will.topic) + field(will.payload)
    body += field(username) + field(password)
    length = len(body)
    encoded = bytes([length & 0x7F | 0x80, length >> 7]) if length >= 128 else bytes([length])
    return b"\x10" + encoded + body + b"\xe0\x00"


def test_disconnect_during_the_retained_push_on_connect_sends_no_will(
    broker: BrokerHandle, topic_site: str
) -> None:
    """Stock amqtt 0.12.1 publishes the will here; ``finish_before_disconnect`` fixes it.

    A retained message matching a live filter makes amqtt push it to every connecting client
    before its session loop starts; a DISCONNECT read meanwhile used to be forgotten.
    """
    robot, _ = _robots(broker)
    watcher = broker.capture(f"factory/{topic_site}/#", who="service")
    birth = robot_topic(topic_site, robot, Channel.BIRTH)
    broker.publish(broker.client(robot), birth, b"retained birth", retain=True)
    watcher.wait_for(lambda m: m.topic == birth)

    will = Will(robot_topic(topic_site, robot, Channel.STATE), b"will", retain=False)
    username, password = broker.credentials(robot)
    for attempt in range(5):
        with socket.create_connection((broker.host, broker.port), timeout=5) as sock:
            sock.sendall(_connect_and_disconnect(f"quick-{attempt}", username, password, will))
            assert sock.recv(4) == b"\x20\x02\x00\x00"  # CONNACK, accepted
    marker = robot_topic(topic_site, robot, Channel.CMD)
    broker.publish(broker.client("service"), marker, b"marker")

    watcher.wait_for(lambda m: m.topic == marker)
    assert [m.payload for m in watcher.messages if m.topic == will.topic] == []


def test_oversize_payload(broker: BrokerHandle, topic_site: str) -> None:
    robot, _ = _robots(broker)
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    watcher = broker.capture(topic, who="service")
    client = broker.client(robot, V311)
    broker.publish(client, topic, b"x" * (MAX_PAYLOAD_BYTES + 1))
    broker.publish(client, topic, b"small")
    watcher.wait_for(lambda m: m.payload == b"small")

    sizes = [len(m.payload) for m in watcher.messages]
    if broker.impl == "amqtt":
        assert sizes == [MAX_PAYLOAD_BYTES + 1, 5]  # no size limit: consumers must check
    else:
        assert sizes == [5]  # message_size_limit drops it at the broker


def test_oversize_payload_over_mqtt5_costs_a_paho_client_its_connection(
    mosquitto_broker: BrokerHandle, topic_site: str
) -> None:
    """Mosquitto 2.0 refuses it in a PUBACK that paho 2.2 cannot parse: paho disconnects."""
    robot, _ = _robots(mosquitto_broker)
    client = mosquitto_broker.client(robot, V5)
    gone = threading.Event()
    client.on_disconnect = lambda c, u, flags, reason, props: gone.set()
    client.publish(
        robot_topic(topic_site, robot, Channel.TELEMETRY), b"x" * (MAX_PAYLOAD_BYTES + 1), qos=1
    )
    assert gone.wait(5.0)


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    """One MQTT packet: (first byte, body)."""

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the broker")
            data += chunk
        return data

    first = exactly(1)[0]
    length, shift = 0, 0
    while True:
        byte = exactly(1)[0]
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return first, exactly(length)


def _connect_and_ping(host: str, port: int, client_id: str) -> bool:
    """CONNECT, then PINGREQ: True if the broker answers both (it did not drop the client).

    Retained messages the broker pushes in between (amqtt does) are skipped.
    """
    body = struct.pack("!H", 4) + b"MQTT" + bytes([4, 0x02]) + struct.pack("!H", 30)
    body += struct.pack("!H", len(client_id)) + client_id.encode()
    try:
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(bytes([0x10, len(body)]) + body)
            first, connack = _read_packet(sock)
            if first != 0x20 or connack[1] != 0:
                return False
            sock.sendall(b"\xc0\x00")  # PINGREQ
            while first != 0xD0:  # PINGRESP
                first, _ = _read_packet(sock)
    except OSError:
        return False
    return True


PROBES = 25


def test_clients_connecting_while_others_come_and_go_are_not_dropped(
    broker: BrokerHandle, topic_site: str
) -> None:
    """Stock amqtt 0.12.1 drops ~half of these (``amqtt_main.SnapshotDict`` fixes it).

    Its retained push on CONNECT loops over the subscription table while awaiting; a session
    cleaned up meanwhile changes the table and the loop raises, closing the new connection.
    """
    robot, _ = _robots(broker)
    retained = [robot_topic(topic_site, robot, c) for c in (Channel.BIRTH, Channel.STATE)]
    publisher = broker.client(robot)
    for topic in retained:
        broker.publish(publisher, topic, b"retained", retain=True)
    forms = [f"factory/{topic_site}/#", f"factory/{topic_site}/+/+/+/+", *retained]
    stop = threading.Event()
    churn_errors: list[BaseException] = []

    def churn(worker: int) -> None:
        # Subscriptions come and go (amqtt cleans up a gone session within a second).
        try:
            for n in itertools.count():
                if stop.is_set():
                    return
                client = broker.client(client_id=f"churn-{worker}-{n}-{os.urandom(2).hex()}")
                broker.subscribe(client, forms[n % len(forms)])
                broker.disconnect(client)
        except BaseException as exc:  # reported by the test thread
            churn_errors.append(exc)

    workers = [threading.Thread(target=churn, args=(w,), daemon=True) for w in range(2)]
    for worker in workers:
        worker.start()
    answered = []
    try:
        # At least PROBES probes, and for at least 2.5 s (amqtt's 1 s session cleanup must run
        # while they connect): a slow machine makes fewer probes a second, so it probes longer.
        started = time.monotonic()
        while len(answered) < PROBES or time.monotonic() - started < 2.5:
            assert time.monotonic() - started < 120, f"only {len(answered)} probes in 120 s"
            answered.append(_connect_and_ping(broker.host, broker.port, f"c-{len(answered)}"))
            time.sleep(0.02)  # pace the probes: this is about interleaving, not load
    finally:
        stop.set()
        for worker in workers:
            worker.join(10)
    assert churn_errors == []
    assert answered.count(False) == 0


@pytest.mark.parametrize("impl", ["mosquitto", "amqtt"])
def test_retained_messages_after_a_restart(impl: str, tmp_path: Path) -> None:
    """Mosquitto persists retained messages (and sessions); amqtt keeps them in memory only."""
    require_broker(impl)
    first = start_broker(impl, free_port(), tmp_path, robot_prefixes=any_site_prefixes())
    try:
        handle = handle_for(first)
        topic = robot_topic("restart", handle.robot_ids[0], Channel.STATE)
        handle.publish(handle.client(handle.robot_ids[0]), topic, b"kept?", retain=True)
        handle.close_clients()
    finally:
        first.stop()  # SIGTERM: Mosquitto saves its database on the way out
    second = start_broker(impl, free_port(), tmp_path, robot_prefixes=any_site_prefixes())
    try:
        handle = handle_for(second)
        marker = robot_topic("restart", handle.robot_ids[0], Channel.CMD)
        late = handle.capture(topic, marker)
        handle.publish(handle.client("service"), marker, b"marker")
        late.wait_for(lambda m: m.topic == marker)  # a retained message would have come first
        kept = [m.payload for m in late.messages if m.topic == topic]
        assert kept == ([b"kept?"] if impl == "mosquitto" else [])
        handle.close_clients()
    finally:
        second.stop()


def test_messages_published_just_before_a_clean_disconnect_all_arrive(
    broker: BrokerHandle, topic_site: str
) -> None:
    """Stock amqtt 0.12.1 loses about a third of these (``finish_before_disconnect`` fixes it).

    It acknowledges each PUBLISH at once but routes it later, from a queue that it throws away
    when the DISCONNECT comes: a robot's last messages before a clean stop would vanish.
    """
    robot, _ = _robots(broker)
    topic = robot_topic(topic_site, robot, Channel.EVENT)
    watcher = broker.capture(topic, who="service")
    for burst in range(3):
        client = broker.client(robot)
        sent = [f"{burst}-{i}".encode() for i in range(20)]
        infos = [client.publish(topic, payload, qos=1) for payload in sent]
        for info in infos:
            info.wait_for_publish(5)  # every one acknowledged by the broker
        broker.disconnect(client)
        got = watcher.wait_for(lambda m, b=burst: m.payload.startswith(b"%d-" % b), count=20)
        assert [m.payload for m in got] == sent


@pytest.mark.parametrize("impl", ["mosquitto", "amqtt"])
def test_a_restart_loses_nothing_the_broker_acknowledged(impl: str, tmp_path: Path) -> None:
    """Mosquitto keeps what a persistent session has not received yet across the restart; amqtt
    keeps nothing, so it must deliver everything before it stops (``amqtt_main.drain``; stock
    amqtt drops what it has not routed yet)."""
    require_broker(impl)
    client_id = f"persistent-{os.urandom(4).hex()}"
    process = start_broker(impl, free_port(), tmp_path, robot_prefixes=any_site_prefixes())
    handle = handle_for(process)
    try:
        robot = handle.robot_ids[0]
        topic = robot_topic("restarting", robot, Channel.TELEMETRY)
        before = handle.capture(topic, who="service", client_id=client_id, clean_session=False)
        client = handle.client(robot)
        sent = [b"%d" % i for i in range(200)]
        infos = [client.publish(topic, payload, qos=1) for payload in sent]
        for info in infos:
            info.wait_for_publish(5)
        process.stop()  # SIGTERM right after the last PUBACK
    finally:
        handle.close_clients()
        process.stop()
    # Read once paho has stopped: what it had not processed, it had not acknowledged either.
    received_before = [m.payload for m in before.messages]
    if impl == "amqtt":
        assert received_before == sent  # delivered in full before it stopped
    process = start_broker(impl, free_port(), tmp_path, robot_prefixes=any_site_prefixes())
    handle = handle_for(process)
    try:
        after = handle.capture(topic, who="service", client_id=client_id, clean_session=False)
        missing = set(sent) - set(received_before)
        if missing:  # Mosquitto may also resend some that arrived just before it stopped
            after.wait_for(lambda m: m.payload in missing, count=len(missing))
        assert sorted(set(received_before) | {m.payload for m in after.messages}) == sorted(sent)
    finally:
        handle.close_clients()
        process.stop()
