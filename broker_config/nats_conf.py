"""The project's access policy rendered for a NATS JetStream cluster with MQTT listeners.

NATS has no MQTT ACL of its own: an MQTT topic is a NATS *subject* (``/`` → ``.``, ``+`` → ``*``,
``#`` → ``>``) and permissions are per user on subjects. The same rules as Mosquitto and amqtt
(:func:`broker_config.acl.acl_table`) map as follows (see ``docs/broker.md``):

- a ``write`` rule is a ``publish`` allow on the rule's subject;
- a ``read`` rule is a ``subscribe`` allow on the rule's subject, plus ``$MQTT.sub.>``: a QoS 1
  MQTT subscription is a JetStream durable consumer whose messages the server delivers to an
  internal ``$MQTT.sub.<nuid>`` subject *with the client's permissions*, so without it a QoS 1
  subscriber is refused (QoS 0 ones would work);
- ``factory/#`` (which MQTT also matches as ``factory`` alone) is ``factory.>`` plus ``factory``;
- a ``deny`` rule (participants may not read ``truth``) is a ``subscribe`` deny, which wins;
- anonymous MQTT clients are the ``anonymous`` user (``mqtt.no_auth_user``), read-only;
- every user may connect over MQTT only (``allowed_connection_types``), so a NATS client cannot
  log in with a robot's password and escape the topic mapping.

Each node of the cluster gets its own file: its name, client/cluster/MQTT ports, JetStream store,
and routes to the others. NATS speaks MQTT 3.1.1 only (no MQTT 5, no ``$share``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from broker_config.acl import ANONYMOUS_USER, Rule, acl_table
from broker_config.credentials import Credentials

CLUSTER_NAME = "factory"
#: Where a QoS 1 subscription's messages arrive inside the server (see the module docstring).
MQTT_QOS1_DELIVERY = "$MQTT.sub.>"


@dataclass(frozen=True, slots=True)
class NatsNode:
    name: str
    client_port: int  # NATS protocol (monitoring tools); bound to the host only
    cluster_port: int
    mqtt_port: int
    store_dir: Path


def nats_subjects(mqtt_filter: str) -> list[str]:
    """The NATS subjects an MQTT topic filter covers (``a/#`` is ``a.>`` and ``a`` itself)."""
    levels = [
        "*" if level == "+" else ">" if level == "#" else level for level in mqtt_filter.split("/")
    ]
    subject = ".".join(levels)
    if mqtt_filter.endswith("/#"):
        return [subject, ".".join(levels[:-1])]
    return [subject]


def nats_permissions(rules: Iterable[Rule]) -> dict[str, dict[str, list[str]]]:
    """One user's rules as a NATS permissions map (allow lists; everything else is denied)."""
    publish: list[str] = []
    subscribe: list[str] = []
    denied: list[str] = []
    for rule in rules:
        kind = {"write": publish, "read": subscribe, "deny": denied}[rule.access]
        kind.extend(nats_subjects(rule.topic))
    if subscribe:
        subscribe.append(MQTT_QOS1_DELIVERY)
    # An empty allow list would allow nothing only if present: say so explicitly with a deny.
    reading: dict[str, list[str]] = {"allow": subscribe} if subscribe else {"deny": [">"]}
    if subscribe and denied:
        reading["deny"] = denied  # deny wins over allow in NATS, as in the policy
    return {"publish": {"allow": publish} if publish else {"deny": [">"]}, "subscribe": reading}


def nats_users(
    credentials: Credentials,
    anonymous_password: str,
    robot_prefixes: Mapping[str, str] | None = None,
) -> list[dict[str, object]]:
    """Every login of ``credentials`` (robots, service, instructor, participants) plus the
    anonymous reader; ``robot_prefixes`` replaces the robots' own (tests: any site)."""
    prefixes = credentials.robot_prefixes if robot_prefixes is None else robot_prefixes
    table = acl_table(prefixes, credentials.participants)
    users: list[dict[str, object]] = []
    for username, rules in table.items():
        if username is not None and username not in credentials.passwords:
            continue
        name = ANONYMOUS_USER if username is None else username
        password = anonymous_password if username is None else credentials.passwords[username]
        users.append(
            {
                "user": name,
                "password": password,
                "permissions": nats_permissions(rules),
                "allowed_connection_types": ["MQTT"],
            }
        )
    return users


def render_nats_conf(
    node: NatsNode,
    cluster: Sequence[NatsNode],
    users: list[dict[str, object]],
    *,
    host: str = "127.0.0.1",
) -> str:
    """One node's configuration file. Values are JSON, which the NATS config format accepts."""
    routes = [f"nats-route://{host}:{other.cluster_port}" for other in cluster if other != node]
    nodes = len(cluster)
    lines = [
        "# Generated from broker_config/acl.py by broker_config/nats_conf.py; do not edit.",
        f"server_name: {json.dumps(node.name)}",
        f"host: {json.dumps(host)}",
        f"port: {node.client_port}",
        f"jetstream {{ store_dir: {json.dumps(str(node.store_dir))} }}",
        f"mqtt {{ host: {json.dumps(host)}, port: {node.mqtt_port}, "
        f"no_auth_user: {json.dumps(ANONYMOUS_USER)}, "
        f"stream_replicas: {min(nodes, 3)}, consumer_replicas: {min(nodes, 3)} }}",
        f"authorization {{ users: {json.dumps(users)} }}",
    ]
    if routes:
        lines.append(
            f"cluster {{ name: {json.dumps(CLUSTER_NAME)}, host: {json.dumps(host)}, "
            f"port: {node.cluster_port}, routes: {json.dumps(routes)} }}"
        )
    return "\n".join(lines) + "\n"
