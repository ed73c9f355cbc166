"""Who may do what on the broker: one policy, rendered for Mosquitto and for amqtt.

The policy (see ``docs/broker.md``):

- a robot (username = robot id) may publish only on its own ``birth``, ``state``, ``telemetry``,
  ``event`` and ``truth`` topics, and may read only its own ``cmd`` topic and the fleet's pace
  (``factory/{site}/pace``, :mod:`contract.pace`);
- the ``service`` may read everything under ``factory/`` and publish only commands and the pace;
- anonymous clients may read everything under ``factory/`` and publish nothing.

A robot's site, area and line are ``+`` in its rules: credentials belong to the robot id, so the
same ACL serves every scenario that places that robot, and tests can use a unique site per test.
Everything here is pure; :func:`permits` evaluates the policy without a broker so unit tests can
check it, and the integration tests check that both brokers enforce the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from contract.pace import PACE_FILTER
from contract.topics import ROBOT_CHANNELS, Channel, matches, topic_filter, validate_name

SERVICE_USER = "service"
#: The name amqtt's ACL plugin gives a client that connected without a username.
ANONYMOUS_USER = "anonymous"
#: Usernames a robot id may not take, because they already mean something to the ACL.
RESERVED_USERS = frozenset({SERVICE_USER, ANONYMOUS_USER})

Access = Literal["read", "write"]


@dataclass(frozen=True, slots=True)
class Rule:
    """Permission to ``read`` (subscribe and receive) or ``write`` (publish) a topic filter."""

    access: Access
    topic: str


def robot_rules(robot_id: str) -> list[Rule]:
    """A robot writes its own robot-to-service channels and reads its own commands."""
    validate_name(robot_id, "robot id")
    if robot_id in RESERVED_USERS:
        raise ValueError(f"robot id {robot_id!r} is reserved for the broker's own users")
    writes = [Rule("write", topic_filter(robot=robot_id, channel=c)) for c in ROBOT_CHANNELS]
    return [
        *writes,
        Rule("read", topic_filter(robot=robot_id, channel=Channel.CMD)),
        Rule("read", PACE_FILTER),
    ]


SERVICE_RULES: tuple[Rule, ...] = (
    Rule("read", "factory/#"),
    Rule("write", topic_filter(channel=Channel.CMD)),
    Rule("write", PACE_FILTER),
)
ANONYMOUS_RULES: tuple[Rule, ...] = (Rule("read", "factory/#"),)


def acl_table(robot_ids: Iterable[str]) -> dict[str | None, list[Rule]]:
    """Rules per username; the key ``None`` holds the rules of anonymous clients."""
    table: dict[str | None, list[Rule]] = {None: list(ANONYMOUS_RULES)}
    table[SERVICE_USER] = list(SERVICE_RULES)
    for robot_id in robot_ids:
        table[robot_id] = robot_rules(robot_id)
    return table


def _filter_within(requested: str, allowed: str) -> bool:
    """True if every topic ``requested`` can match is also matched by ``allowed``."""
    req, alw = requested.split("/"), allowed.split("/")
    for i, level in enumerate(alw):
        if level == "#":
            return True
        if i >= len(req) or req[i] == "#":
            return False
        if level != "+" and level != req[i]:
            return False
    return len(req) == len(alw)


def permits(
    table: Mapping[str | None, list[Rule]],
    username: str | None,
    action: Literal["publish", "subscribe", "receive"],
    topic: str,
) -> bool:
    """What the policy says: may ``username`` publish/subscribe to/receive ``topic``?

    For ``subscribe`` the topic is a filter, allowed only if it lies wholly within a read rule.
    An unknown username has no rules, so it may do nothing.
    """
    rules = table.get(username, [])
    if action == "publish":
        return any(r.access == "write" and matches(r.topic, topic) for r in rules)
    if action == "receive":
        return any(r.access == "read" and matches(r.topic, topic) for r in rules)
    return any(r.access == "read" and _filter_within(topic, r.topic) for r in rules)


def render_mosquitto_acl(robot_ids: Iterable[str]) -> str:
    """The policy as a Mosquitto ``acl_file``; lines before the first ``user`` are anonymous."""
    out = [
        "# Generated from broker_config/acl.py for the robots in credentials.json; do not edit.",
        "# Lines before the first 'user' apply to anonymous clients.",
    ]
    for username, rules in acl_table(robot_ids).items():
        if username is not None:
            out += ["", f"user {username}"]
        out += [f"topic {rule.access} {rule.topic}" for rule in rules]
    return "\n".join(out) + "\n"


def render_amqtt_acl(robot_ids: Iterable[str]) -> dict[str, dict[str, list[str]]]:
    """The policy as amqtt ``TopicAccessControlListPlugin`` options.

    ``publish-acl`` gates publishing, ``subscribe-acl`` subscribing and ``receive-acl`` delivery.
    An amqtt filter allows a requested filter level by level (``+`` allows any one level), the
    same reading as :func:`permits`.
    """
    acl: dict[str, dict[str, list[str]]] = {
        "publish-acl": {},
        "subscribe-acl": {},
        "receive-acl": {},
    }
    for username, rules in acl_table(robot_ids).items():
        name = ANONYMOUS_USER if username is None else username
        writes = [r.topic for r in rules if r.access == "write"]
        reads = [r.topic for r in rules if r.access == "read"]
        # An empty list denies everything; amqtt treats a missing user the same way.
        acl["publish-acl"][name] = writes
        acl["subscribe-acl"][name] = reads
        acl["receive-acl"][name] = reads
    return acl
