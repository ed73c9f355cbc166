"""Two small amqtt 0.12 plugins that make the embedded broker enforce our security model.

Loaded by dotted path from the broker config that :func:`broker_config.amqtt_main.amqtt_config`
writes; amqtt imports them inside the broker subprocess only.

- :class:`AnonymousOrFileAuthPlugin` replaces amqtt's ``AnonymousAuthPlugin``. With
  ``allow_anonymous`` on, the stock plugin marks *every* session anonymous, including robots that
  logged in with a password, and amqtt never queues offline QoS 1 messages for an anonymous
  session. Ours accepts a client without a username as anonymous (unless the profile requires
  logins) and leaves clients with a username to ``FileAuthPlugin`` (which refuses a wrong
  password), so authenticated persistent sessions keep their offline queue. It refuses a client
  id that belongs to another login (:func:`broker_config.sessions.client_id_owner`), and drops a
  will the client may not publish.
- :class:`PolicyTopicPlugin` asks :func:`broker_config.acl.permits` for every publish, subscribe
  and delivery, so amqtt enforces exactly the table Mosquitto's ACL file is rendered from
  (including the ``deny`` rule that keeps ``truth`` private, which amqtt's stock
  ``TopicAccessControlListPlugin`` cannot express).

amqtt 0.12 takes over (and, for a clean session, deletes) an existing session *before* it asks
the auth plugins; :func:`broker_config.amqtt_main.authenticate_before_session` makes it ask first.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker_config.acl import Rule, acl_table, permits
from broker_config.sessions import client_id_owner

log = logging.getLogger(__name__)

_ACTIONS: dict[Action, Literal["publish", "subscribe", "receive"]] = {
    Action.PUBLISH: "publish",
    Action.SUBSCRIBE: "subscribe",
    Action.RECEIVE: "receive",
}


def _table(config: Any) -> dict[str | None, list[Rule]]:
    table: dict[str | None, list[Rule]] | None = getattr(config, "_factory_table", None)
    if table is None:
        table = acl_table(config.robot_prefixes, config.participants)
        config._factory_table = table
    return table


class AnonymousOrFileAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped
    """No username: anonymous (if allowed). A username: no opinion (``FileAuthPlugin`` decides).

    A client id that belongs to another login is refused. A will on a topic the client may not
    publish to is dropped (the client still connects), as Mosquitto does: amqtt would publish it
    unchecked, so an anonymous watcher could leave a forged command on a robot's ``cmd`` topic.
    """

    async def authenticate(self, *, session: Session) -> bool | None:
        owner = client_id_owner(session.client_id or "", self.config.robot_prefixes)
        if owner is not None and session.username != owner:
            log.warning(
                "refused %s: client id %r belongs to login %r",
                session.username or "an anonymous client",
                session.client_id,
                owner,
            )
            return False
        if self.config.topic_rules:
            self._check_will(session)
        if session.username is None:
            session.is_anonymous = True
            return bool(self.config.allow_anonymous)
        session.is_anonymous = False
        return True if self.config.open else None

    def _check_will(self, session: Session) -> None:
        if not session.will_flag or session.will_topic is None:
            return
        if not permits(_table(self.config), session.username, "publish", session.will_topic):
            log.warning(
                "dropped the will of %s on %s: not a topic it may publish to",
                session.username or "an anonymous client",
                session.will_topic,
            )
            session.will_flag = False
            session.will_topic = session.will_message = None

    @dataclass
    class Config:
        robot_prefixes: dict[str, str] = field(default_factory=dict)
        participants: list[str] = field(default_factory=list)
        #: Clients without a username may connect (profiles ``open`` and ``acl``/``tls``).
        allow_anonymous: bool = True
        #: Any username is accepted without a password check (profile ``open``).
        open: bool = False
        #: Topic rules apply, so a will is checked against them (profiles ``acl``/``tls``).
        topic_rules: bool = True


class PolicyTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Publish, subscribe and delivery checked against :func:`broker_config.acl.permits`."""

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        if not topic or action not in _ACTIONS:
            return False
        username = session.username if session else None
        allowed = permits(_table(self.config), username, _ACTIONS[action], topic)
        return bool(allowed)

    @dataclass
    class Config:
        robot_prefixes: dict[str, str] = field(default_factory=dict)
        participants: list[str] = field(default_factory=list)
