"""The security model, enforced by both real brokers (each test runs on Mosquitto and amqtt)."""

from __future__ import annotations

import pytest
from brokers import BrokerHandle, ConnectRefused, Will, robot_topic
from paho.mqtt.enums import MQTTProtocolVersion

from contract.codec import decode, encode
from contract.payloads import WILL_SEQ, State
from contract.topics import Channel

V311 = MQTTProtocolVersion.MQTTv311

pytestmark = pytest.mark.integration

#: "Not authorised": both brokers answer a bad login with CONNACK code 5 in MQTT 3.1.1, which
#: paho 2 reports as the MQTT 5 reason code 0x87; Mosquitto sends 0x87 itself over MQTT 5.
NOT_AUTHORISED = 0x87


def _robots(broker: BrokerHandle) -> tuple[str, str]:
    first, second = broker.robot_ids[:2]
    return first, second


def offline_will(robot_id: str, site: str) -> Will:
    payload = State(
        v=1, robot=robot_id, ts=0.0, boot="test-boot", seq=WILL_SEQ, state="OFFLINE", since=0.0
    )
    return Will(robot_topic(site, robot_id, Channel.STATE), encode(payload), qos=1, retain=True)


def test_anonymous_reads_robot_messages(broker: BrokerHandle, topic_site: str) -> None:
    robot, _ = _robots(broker)
    watcher = broker.capture(f"factory/{topic_site}/#")
    assert watcher.granted == [1]
    topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    broker.publish(broker.client(robot), topic, b'{"reading": 1}')

    (message,) = watcher.wait_for()
    assert (message.topic, message.payload, message.qos) == (topic, b'{"reading": 1}', 1)


def test_anonymous_publishes_are_not_delivered(broker: BrokerHandle, topic_site: str) -> None:
    robot, _ = _robots(broker)
    service = broker.capture(f"factory/{topic_site}/#", who="service")
    anonymous = broker.client()
    forged = [
        robot_topic(topic_site, robot, Channel.STATE),
        robot_topic(topic_site, robot, Channel.CMD),
    ]
    for topic in forged:
        broker.publish(anonymous, topic, b"forged")  # acknowledged, then dropped
    # A message that is allowed, sent after the broker acknowledged the forged ones: once it has
    # arrived, the forged ones would have arrived before it.
    marker = robot_topic(topic_site, robot, Channel.CMD)
    broker.publish(broker.client("service"), marker, b"marker")

    service.wait_for(lambda m: m.payload == b"marker")
    assert [m.payload for m in service.messages] == [b"marker"]


def test_robot_cannot_publish_on_another_robots_topics(
    broker: BrokerHandle, topic_site: str
) -> None:
    robot_a, robot_b = _robots(broker)
    service = broker.capture(f"factory/{topic_site}/#", who="service")
    client_a = broker.client(robot_a)
    for channel in (Channel.STATE, Channel.TELEMETRY, Channel.CMD):
        broker.publish(client_a, robot_topic(topic_site, robot_b, channel), b"forged")
    own = robot_topic(topic_site, robot_a, Channel.EVENT)
    broker.publish(client_a, own, b"own")  # same client, so it arrives after the forged ones

    service.wait_for(lambda m: m.topic == own)
    assert service.topics() == [own]


def test_robot_reads_only_its_own_commands(broker: BrokerHandle, topic_site: str) -> None:
    robot_a, robot_b = _robots(broker)
    cmd_a = robot_topic(topic_site, robot_a, Channel.CMD)
    cmd_b = robot_topic(topic_site, robot_b, Channel.CMD)
    capture_a = broker.capture(cmd_a, who=robot_a)
    assert capture_a.granted == [1]
    codes = broker.subscribe(capture_a.client, cmd_b, f"factory/{topic_site}/#")
    if broker.impl == "amqtt":
        assert codes == [0x80, 0x80]  # amqtt refuses the subscription itself
    else:
        assert codes == [1, 1]  # Mosquitto grants it, then filters every delivery by the ACL

    service = broker.client("service")
    broker.publish(service, cmd_b, b"for b")
    broker.publish(service, cmd_a, b"for a")

    capture_a.wait_for(lambda m: m.payload == b"for a")
    assert [m for m in capture_a.unfiltered if m.topic == cmd_b] == []
    assert {m.payload for m in capture_a.messages} == {b"for a"}


def test_service_reads_everything_and_writes_only_commands(
    broker: BrokerHandle, topic_site: str
) -> None:
    robot, _ = _robots(broker)
    service = broker.capture("factory/#", who="service")
    robot_capture = broker.capture(robot_topic(topic_site, robot, Channel.CMD), who=robot)
    robot_client = broker.client(robot)
    telemetry = robot_topic(topic_site, robot, Channel.TELEMETRY)
    broker.publish(robot_client, telemetry, b"t")
    service.wait_for(lambda m: m.topic == telemetry)

    broker.publish(service.client, telemetry, b"forged by service")  # not a command: dropped
    cmd = robot_topic(topic_site, robot, Channel.CMD)
    broker.publish(service.client, cmd, b"do it")

    (command,) = robot_capture.wait_for()
    assert (command.topic, command.payload) == (cmd, b"do it")
    service.wait_for(lambda m: m.topic == cmd)
    assert b"forged by service" not in [m.payload for m in service.messages]


def test_wrong_password_and_unknown_user_are_refused(broker: BrokerHandle) -> None:
    robot, _ = _robots(broker)
    assert broker.connack(robot) == 0
    assert broker.connack(robot, password="not-the-password") == NOT_AUTHORISED
    assert broker.connack("intruder", password="whatever") == NOT_AUTHORISED
    assert broker.connack(robot, password="not-the-password", protocol=V311) == NOT_AUTHORISED
    with pytest.raises(ConnectRefused):
        broker.client("service", password="")


def test_retained_message_reaches_a_late_subscriber(broker: BrokerHandle, topic_site: str) -> None:
    robot, _ = _robots(broker)
    topic = robot_topic(topic_site, robot, Channel.BIRTH)
    broker.publish(broker.client(robot), topic, b"birth", retain=True)

    late = broker.capture(f"factory/{topic_site}/#")
    late.wait_for()
    # amqtt may send it twice: once on CONNECT, if another client's live filter matches it (see
    # test_broker_differences), and once for the SUBSCRIBE.
    copies = {(m.topic, m.payload, m.retain) for m in late.messages}
    assert copies == {(topic, b"birth", True)}


def test_last_will_is_delivered_and_retained(broker: BrokerHandle, topic_site: str) -> None:
    robot, _ = _robots(broker)
    will = offline_will(robot, topic_site)
    watcher = broker.capture(will.topic)
    client = broker.client(robot, will=will)
    broker.publish(client, robot_topic(topic_site, robot, Channel.TELEMETRY), b"alive")

    broker.kill(client)  # no DISCONNECT: the broker must publish the will

    (live,) = watcher.wait_for()
    assert live.payload == will.payload
    state = decode(Channel.STATE, live.payload)
    assert isinstance(state, State)
    assert (state.state, state.seq) == ("OFFLINE", WILL_SEQ)
    late = broker.capture(will.topic)
    late.wait_for()
    assert {(m.payload, m.retain) for m in late.messages} == {(will.payload, True)}


def test_clean_disconnect_sends_no_will(broker: BrokerHandle, topic_site: str) -> None:
    robot, _ = _robots(broker)
    will = offline_will(robot, topic_site)
    watcher = broker.capture(f"factory/{topic_site}/#", who="service")
    client = broker.client(robot, will=will)
    broker.disconnect(client)
    marker = robot_topic(topic_site, robot, Channel.CMD)
    broker.publish(broker.client("service"), marker, b"marker")

    watcher.wait_for(lambda m: m.topic == marker)
    assert watcher.topics() == [marker]


def test_a_running_factory_shows_anonymous_watchers_no_truth(
    broker: BrokerHandle, topic_site: str
) -> None:
    """Robots publish their ground truth with every sample; only the service receives it."""
    from test_devices_agent import live_factory, scenario_for

    anonymous = broker.capture(f"factory/{topic_site}/#")
    service = broker.capture(f"factory/{topic_site}/#", who="service")
    factory = live_factory(broker, scenario_for(topic_site))
    factory.start()
    try:
        service.wait_for(lambda m: m.topic.endswith("/truth"), count=5, timeout_s=20.0)
        later = len([m for m in service.messages if m.topic.endswith("/telemetry")]) + 1
        # Same publisher, same order: telemetry sent after those truths reaches the watcher
        # only after the truths would have.
        anonymous.wait_for(lambda m: m.topic.endswith("/telemetry"), count=later, timeout_s=20.0)
    finally:
        factory.stop()
    assert [m.topic for m in anonymous.unfiltered if m.topic.endswith("/truth")] == []
