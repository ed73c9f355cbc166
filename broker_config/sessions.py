"""MQTT sessions belong to logins: whose client ids are whose, and ids no one else can guess.

A persistent session is found by client id alone. If anyone can connect with the service's or a
robot's client id, they kick it off and take its session: the readings queued for the service,
the commands queued for a robot. Two defences, on every broker and security profile:

1. **Ids no one else can guess.** The service and each robot connect with
   :func:`session_client_id`: the public name (``factory-service``, ``robot-weld-05``) plus a
   tag derived from the login's password. Only a holder of the password can name the session.
   This is what protects sessions on Mosquitto 2.0, which cannot tie a client id to a login
   without ``use_username_as_clientid`` (which refuses anonymous clients and lets each login
   hold only one connection at a time: a participant's ``mosquitto_sub`` would be kicked by
   their own ``mosquitto_pub``).
2. **Reserved names.** A client id that starts with ``factory-service`` or ``robot-<id>`` belongs
   to that login (:func:`client_id_owner`); amqtt's auth plugin refuses anyone else using one,
   before amqtt looks the session up.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from broker_config.acl import SERVICE_USER

SERVICE_CLIENT_ID = "factory-service"
ROBOT_CLIENT_PREFIX = "robot-"
#: 12 hex digits = 48 bits from the login's 144-bit password: not guessable over a network.
TAG_HEX_DIGITS = 12


def robot_client_id(robot_id: str) -> str:
    return f"{ROBOT_CLIENT_PREFIX}{robot_id}"


def session_client_id(base: str, password: str | None) -> str:
    """``base`` plus a tag only the password's holder can compute (``base`` if no password)."""
    if not password:
        return base
    digest = hashlib.sha256(f"factory-session:{base}:{password}".encode()).hexdigest()
    return f"{base}-{digest[:TAG_HEX_DIGITS]}"


def _is_named(client_id: str, base: str) -> bool:
    return client_id == base or client_id.startswith(base + "-")


def client_id_owner(client_id: str, robot_ids: Iterable[str]) -> str | None:
    """The login a client id is reserved for, or ``None`` if anyone may use it."""
    if _is_named(client_id, SERVICE_CLIENT_ID):
        return SERVICE_USER
    if not client_id.startswith(ROBOT_CLIENT_PREFIX):
        return None
    owners = [r for r in robot_ids if _is_named(client_id, robot_client_id(r))]
    return max(owners, key=len) if owners else None
