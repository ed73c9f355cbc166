"""The project's logins and access policy rendered for an EMQX cluster (compose profile ``emqx``).

EMQX 5 reads both from files the compose ``init`` service writes next to Mosquitto's
(``emqx/`` in the same volume; the EMQX nodes mount it read-only, see ``docker-compose.yml``):

- ``users.csv``: the *bootstrap file* of the built-in database authenticator
  (``bootstrap_type = hash``): every login of ``credentials.json`` as PBKDF2-HMAC-SHA512 (the
  parameters in :data:`PBKDF2`, which emqx.conf repeats), lowercase hex, with a random
  salt. EMQX imports it on every start and overwrites a user whose hash changed, so the file is
  the truth, as Mosquitto's password file is.
- ``acl.conf``: the rules of :func:`broker_config.acl.acl_table` as an EMQX *file* authorization
  source, with ``authorization.no_match = deny``. EMQX takes the first rule that matches, so a
  user's ``deny`` rules come first; and EMQX checks a subscription when it is made, never a
  message when it is delivered, so "read ``factory/#`` except ``truth``" (participants) cannot
  be one rule: it becomes one allowed filter per topic shape of the contract outside the denied
  ones (``factory/+/+/+/+/telemetry``, …, ``factory/+/pace``); a participant's ``factory/#``
  subscription is then refused, not silently cut. Stricter than Mosquitto, never looser.
- Anonymous clients: EMQX's built-in database refuses a CONNECT without a password, so the
  anonymous read-only rules do not apply: on EMQX everyone logs in (a participant login for
  watching). ``open`` and ``password`` let every login read and write everything.

``tests/test_compose_emqx.py`` evaluates the rendered rules the way EMQX does and compares every
answer with :func:`broker_config.acl.permits`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping

from broker_config.acl import Rule, acl_table, filter_within
from broker_config.profiles import Security
from contract.pace import PACE_FILTER
from contract.topics import Channel, topic_filter

EMQX_DIR = "emqx"
EMQX_ACL_FILE = "acl.conf"
EMQX_USERS_FILE = "users.csv"
PBKDF2_MAC = "sha512"
PBKDF2_ITERATIONS = 4096
PBKDF2_DK_LENGTH = 64
#: EMQX's ``password_hash_algorithm`` for the built-in database (``emqx.conf`` says the same).
PBKDF2: dict[str, str | int] = {
    "name": "pbkdf2",
    "mac_fun": PBKDF2_MAC,
    "iterations": PBKDF2_ITERATIONS,
    "dk_length": PBKDF2_DK_LENGTH,
}
#: Every topic shape of the contract under ``factory/``: what a ``read`` with a ``deny`` inside
#: it is spelled out as.
CONTRACT_SHAPES: tuple[str, ...] = (
    *(topic_filter(channel=c.value) for c in Channel),
    PACE_FILTER,
)


def pbkdf2_hex(password: str, salt: str) -> str:
    """The hash EMQX computes for ``password`` with :data:`PBKDF2` (salt used as its bytes)."""
    digest = hashlib.pbkdf2_hmac(
        PBKDF2_MAC, password.encode(), salt.encode(), PBKDF2_ITERATIONS, PBKDF2_DK_LENGTH
    )
    return digest.hex()


def render_emqx_users(passwords: Mapping[str, str]) -> str:
    """The bootstrap CSV: ``user_id,password_hash,salt,is_superuser``; nobody is a superuser."""
    lines = ["user_id,password_hash,salt,is_superuser"]
    for username in sorted(passwords):
        salt = secrets.token_hex(16)
        lines.append(f"{username},{pbkdf2_hex(passwords[username], salt)},{salt},false")
    return "\n".join(lines) + "\n"


def _reads(topic: str, denied: list[str]) -> list[str]:
    """``topic`` as allowed subscribe filters, without any topic a ``deny`` filter covers."""
    if not any(filter_within(d, topic) or filter_within(topic, d) for d in denied):
        return [topic]
    return [
        shape
        for shape in CONTRACT_SHAPES
        if filter_within(shape, topic) and not any(filter_within(shape, d) for d in denied)
    ]


def _term(access: str, username: str, action: str, topics: Iterable[str]) -> str:
    quoted = ", ".join(json.dumps(t) for t in topics)
    return f"{{{access}, {{username, {json.dumps(username)}}}, {action}, [{quoted}]}}."


def user_terms(username: str, rules: list[Rule]) -> list[str]:
    """One user's rules as EMQX terms, denies first (EMQX stops at the first match)."""
    denied = [r.topic for r in rules if r.access == "deny"]
    terms = [_term("deny", username, "subscribe", denied)] if denied else []
    writes = [r.topic for r in rules if r.access == "write"]
    reads = [f for r in rules if r.access == "read" for f in _reads(r.topic, denied)]
    if writes:
        terms.append(_term("allow", username, "publish", writes))
    if reads:
        terms.append(_term("allow", username, "subscribe", reads))
    return terms


def render_emqx_acl(
    robot_prefixes: Mapping[str, str],
    participants: Iterable[str] = (),
    security: Security = Security.ACL,
) -> str:
    """The policy as an EMQX ``acl.conf`` (Erlang terms), ending in an explicit deny."""
    out = [
        "%% Generated from broker_config/acl.py by broker_config/emqx_conf.py; do not edit.",
        "%% First match wins; subscriptions are checked when made (see the module docstring).",
    ]
    if security.topic_rules:
        for username, rules in acl_table(robot_prefixes, participants).items():
            if username is not None:  # anonymous clients cannot log in to EMQX
                out += ["", *user_terms(username, rules)]
    else:
        out += ["", f"%% Security profile {security}: every login reads and writes everything."]
        out.append('{allow, all, all, ["#"]}.')
    out += ["", "{deny, all}."]
    return "\n".join(out) + "\n"
