"""Where amqtt 0.12 (the embedded broker) and Mosquitto 2 differ, pinned on both brokers.

Each test asserts what each broker actually does, so an amqtt upgrade that changes a behaviour
fails here and ``docs/broker.md`` ("amqtt differences") gets updated with it.
"""

from __future__ import annotations

import os
import socket
import struct
import threading

import pytest
from brokers import BrokerHandle, Will, robot_topic
from paho.mqtt.enums import MQTTProtocolVersion

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
        # without asking the receive ACL: B, which may read only its commands, got A's state.
        assert [(m.payload, m.retain) for m in leaked] == [(b"a is running", True)]
    else:
        assert leaked == []
    assert [m.payload for m in capture_b.messages] == [b"for b"]


def test_will_on_a_topic_the_client_may_not_publish(broker: BrokerHandle, topic_site: str) -> None:
    robot_a, robot_b = _robots(broker)
    state_b = robot_topic(topic_site, robot_b, Channel.STATE)
    watcher = broker.capture(f"factory/{topic_site}/#", who="service")
    client_a = broker.client(robot_a, will=Will(state_b, b"forged will"))
    broker.kill(client_a)
    marker = robot_topic(topic_site, robot_a, Channel.CMD)
    broker.publish(broker.client("service"), marker, b"marker")
    watcher.wait_for(lambda m: m.topic == marker)

    forged = [m.payload for m in watcher.messages if m.topic == state_b]
    if broker.impl == "amqtt":
        assert forged == [b"forged will"]  # amqtt does not check the will against the ACL
    else:
        assert forged == []


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
    """Stock amqtt 0.12.1 publishes the will here; ``amqtt_main.keep_early_disconnects`` fixes it.

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
