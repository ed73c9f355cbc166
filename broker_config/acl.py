"""Who may do what on the broker: one policy, rendered for Mosquitto and for amqtt.

The policy of the ``acl`` and ``tls`` security profiles (see ``docs/broker.md``):

- a robot (username = robot id) may publish only on its own ``birth``, ``state``, ``telemetry``,
  ``event`` and ``truth`` topics under its *full* prefix ``factory/{site}/{area}/{line}/{robot}``
  from the scenario, and may read only its own ``cmd`` topic, its site's pace
  (``factory/{site}/pace``, :mod:`contract.pace`) and its site's ingest progress
  (``factory/{site}/ingest``, :mod:`contract.ingest`): it cannot move itself;
- the ``service`` may read everything under ``factory/`` and publish only commands, the pace and
  its ingest progress;
- the ``instructor`` may do what the service does and read ``workshop/#``;
- a participant ``pNN`` may read ``factory/#`` except ``truth``, read ``workshop/#`` and publish
  only under ``workshop/pNN/#``;
- anonymous clients may read ``factory/#`` except ``truth`` and publish nothing.

``truth`` (true wear and remaining life) is the answer the service is scored against: only the
service and the instructor may receive it. A ``deny`` rule wins over every ``read`` rule.

Everything here is pure; :func:`permits` evaluates the policy without a broker (the amqtt plugins
use it) and the integration tests check that both brokers enforce the same answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from contract.ingest import INGEST_FILTER, ingest_topic
from contract.pace import PACE_FILTER, pace_topic
from contract.topics import ROBOT_CHANNELS, Channel, matches, topic_filter, validate_name

SERVICE_USER = "service"
INSTRUCTOR_USER = "instructor"
#: The name amqtt's ACL plugin gives a client that connected without a username.
ANONYMOUS_USER = "anonymous"
#: Usernames a robot id may not take, because they already mean something to the ACL.
RESERVED_USERS = frozenset({SERVICE_USER, INSTRUCTOR_USER, ANONYMOUS_USER})
WORKSHOP_ROOT = "workshop"
TRUTH_FILTER = topic_filter(channel=Channel.TRUTH)
CMD_FILTER = topic_filter(channel=Channel.CMD)

Access = Literal["read", "write", "deny"]


@dataclass(frozen=True, slots=True)
class Rule:
    """``read`` (subscribe and receive), ``write`` (publish) or ``deny`` (neither) a filter."""

    access: Access
    topic: str


def participant_name(number: int) -> str:
    """``p01`` … ``p99`` (three digits past 99)."""
    if number < 1:
        raise ValueError("participants are numbered from 1")
    return f"p{number:02d}"


def is_participant(username: str) -> bool:
    return len(username) >= 3 and username[0] == "p" and username[1:].isdigit()


def robot_rules(robot_id: str, prefix: str) -> list[Rule]:
    """A robot writes its own channels under its own full prefix and reads its own commands."""
    validate_name(robot_id, "robot id")
    if robot_id in RESERVED_USERS or is_participant(robot_id):
        raise ValueError(f"robot id {robot_id!r} is reserved for the broker's own users")
    if prefix.rsplit("/", 1)[-1] != robot_id or not prefix.startswith("factory/"):
        raise ValueError(f"{prefix!r} is not a topic prefix of robot {robot_id!r}")
    writes = [Rule("write", f"{prefix}/{c.value}") for c in ROBOT_CHANNELS]
    site = prefix.split("/")[1]
    return [
        *writes,
        Rule("read", f"{prefix}/{Channel.CMD.value}"),
        Rule("read", PACE_FILTER if site == "+" else pace_topic(site)),
        Rule("read", INGEST_FILTER if site == "+" else ingest_topic(site)),
    ]


def participant_rules(username: str) -> list[Rule]:
    return [
        Rule("read", "factory/#"),
        Rule("deny", TRUTH_FILTER),
        Rule("read", f"{WORKSHOP_ROOT}/#"),
        Rule("write", f"{WORKSHOP_ROOT}/{username}/#"),
    ]


SERVICE_RULES: tuple[Rule, ...] = (
    Rule("read", "factory/#"),
    Rule("write", CMD_FILTER),
    Rule("write", PACE_FILTER),
    Rule("write", INGEST_FILTER),
)
INSTRUCTOR_RULES: tuple[Rule, ...] = (*SERVICE_RULES, Rule("read", f"{WORKSHOP_ROOT}/#"))
ANONYMOUS_RULES: tuple[Rule, ...] = (Rule("read", "factory/#"), Rule("deny", TRUTH_FILTER))


def acl_table(
    robot_prefixes: Mapping[str, str], participants: Iterable[str] = ()
) -> dict[str | None, list[Rule]]:
    """Rules per username; the key ``None`` holds the rules of anonymous clients."""
    table: dict[str | None, list[Rule]] = {None: list(ANONYMOUS_RULES)}
    table[SERVICE_USER] = list(SERVICE_RULES)
    table[INSTRUCTOR_USER] = list(INSTRUCTOR_RULES)
    for username in participants:
        table[username] = participant_rules(username)
    for robot_id in sorted(robot_prefixes):
        table[robot_id] = robot_rules(robot_id, robot_prefixes[robot_id])
    return table


def filter_within(requested: str, allowed: str) -> bool:
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

    For ``subscribe`` the topic is a filter, allowed if it lies wholly within a read rule (a
    ``deny`` rule then stops delivery of the topics it covers, as Mosquitto does). An unknown
    username has no rules, so it may do nothing.
    """
    rules = table.get(username, [])
    if action == "subscribe":
        return any(r.access == "read" and filter_within(topic, r.topic) for r in rules)
    if any(r.access == "deny" and matches(r.topic, topic) for r in rules):
        return False
    wanted = "write" if action == "publish" else "read"
    return any(r.access == wanted and matches(r.topic, topic) for r in rules)


def render_mosquitto_acl(
    robot_prefixes: Mapping[str, str], participants: Iterable[str] = ()
) -> str:
    """The policy as a Mosquitto ``acl_file``; lines before the first ``user`` are anonymous."""
    out = [
        "# Generated from broker_config/acl.py for the scenario's robots; do not edit.",
        "# Lines before the first 'user' apply to anonymous clients; 'deny' wins over 'read'.",
    ]
    for username, rules in acl_table(robot_prefixes, participants).items():
        if username is not None:
            out += ["", f"user {username}"]
        out += [f"topic {rule.access} {rule.topic}" for rule in rules]
    return "\n".join(out) + "\n"
