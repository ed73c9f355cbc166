"""NATS as the third broker: the ACL mapped to subjects (pure), enforced by a real 3-node
cluster, and the MQTT version each broker speaks found on the wire."""

from __future__ import annotations

import pytest
from brokers import BrokerHandle, ConnectRefused, robot_topic

from broker_config.acl import ANONYMOUS_RULES, SERVICE_RULES, robot_rules
from broker_config.nats_conf import MQTT_QOS1_DELIVERY, nats_permissions, nats_subjects
from broker_config.protocol import speaks_mqtt5
from contract.topics import Channel


def test_topic_filters_become_subjects() -> None:
    assert nats_subjects("factory/+/+/+/weld-01/cmd") == ["factory.*.*.*.weld-01.cmd"]
    assert nats_subjects("factory/#") == ["factory.>", "factory"]


def test_readers_may_take_qos1_deliveries_and_writers_only_their_topics() -> None:
    robot = nats_permissions(robot_rules("weld-01", "factory/+/+/+/weld-01"))
    # Its own commands, its site's pace and ingest progress (read, never written), plus QoS 1
    # deliveries.
    assert robot["subscribe"]["allow"] == [
        "factory.*.*.*.weld-01.cmd",
        "factory.*.pace",
        "factory.*.ingest",
        MQTT_QOS1_DELIVERY,
    ]
    assert "factory.*.pace" not in robot["publish"]["allow"]
    assert "factory.*.ingest" not in robot["publish"]["allow"]
    assert "factory.*.*.*.weld-01.telemetry" in robot["publish"]["allow"]
    assert not any("cmd" in s for s in robot["publish"]["allow"])
    service = nats_permissions(SERVICE_RULES)
    assert service["publish"]["allow"] == [
        "factory.*.*.*.*.cmd",
        "factory.*.pace",
        "factory.*.ingest",
    ]
    assert nats_permissions([]) == {"publish": {"deny": [">"]}, "subscribe": {"deny": [">"]}}
    anonymous = nats_permissions(ANONYMOUS_RULES)  # reads the plant, never the ground truth
    assert anonymous["subscribe"]["deny"] == ["factory.*.*.*.*.truth"]
    assert anonymous["publish"] == {"deny": [">"]}


@pytest.mark.integration
def test_the_cluster_enforces_the_policy_across_nodes(
    nats_broker: BrokerHandle, topic_site: str
) -> None:
    broker = nats_broker
    robot, other = broker.robot_ids[:2]
    nodes = broker.process.nodes  # type: ignore[attr-defined]
    assert len(nodes) == 3
    service = broker.capture(f"factory/{topic_site}/#", who="service")
    publisher = broker.client(robot)
    broker.publish(publisher, robot_topic(topic_site, robot, Channel.TELEMETRY), b"mine")
    broker.publish(publisher, robot_topic(topic_site, other, Channel.TELEMETRY), b"not mine")
    broker.publish(publisher, robot_topic(topic_site, robot, Channel.CMD), b"a robot commanding")
    service.wait_for(lambda m: m.payload == b"mine")
    marker = broker.client(robot)
    broker.publish(marker, robot_topic(topic_site, robot, Channel.EVENT), b"marker")
    service.wait_for(lambda m: m.payload == b"marker")
    assert [m.payload for m in service.messages] == [b"mine", b"marker"]
    # A robot may not read the plant, and a wrong password does not get in.
    spy = broker.client(robot)
    assert broker.subscribe(spy, "factory/#")[0] >= 0x80
    with pytest.raises(ConnectRefused):
        broker.client(robot, password="wrong")


@pytest.mark.integration
def test_the_mqtt_version_is_found_per_broker(
    mosquitto_broker: BrokerHandle, amqtt_broker: BrokerHandle, nats_broker: BrokerHandle
) -> None:
    assert speaks_mqtt5(mosquitto_broker.host, mosquitto_broker.port) is True
    assert speaks_mqtt5(amqtt_broker.host, amqtt_broker.port) is False
    for node in nats_broker.process.nodes:  # type: ignore[attr-defined]
        assert speaks_mqtt5(nats_broker.host, node.mqtt_port) is False
