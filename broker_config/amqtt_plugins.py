"""Two small amqtt 0.12 plugins that make the embedded broker enforce our security model.

Loaded by dotted path from the broker config that :func:`broker_config.amqtt_main.amqtt_config`
writes; amqtt imports them inside the broker subprocess only.

- :class:`AnonymousOrFileAuthPlugin` replaces amqtt's ``AnonymousAuthPlugin``. With
  ``allow_anonymous`` on, the stock plugin marks *every* session anonymous, including robots that
  logged in with a password, and amqtt never queues offline QoS 1 messages for an anonymous
  session. Ours accepts a client without a username as anonymous and leaves clients with a
  username to ``FileAuthPlugin`` (which refuses a wrong password), so authenticated persistent
  sessions keep their offline queue. It also drops a will the client may not publish.
- :class:`TopicACLPlugin` is amqtt's ``TopicAccessControlListPlugin`` with a ``Config`` that
  declares ``subscribe_acl`` and ``receive_acl``. The stock ``Config`` dataclass declares only
  ``publish_acl`` and the deprecated ``acl``, and plugin-style config is loaded strictly, so the
  stock plugin cannot be given a subscribe or receive ACL except through the deprecated
  ``topic-check`` section.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.plugins.topic_checking import TopicAccessControlListPlugin
from amqtt.session import Session

from broker_config.acl import acl_table, permits

log = logging.getLogger(__name__)


class AnonymousOrFileAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped
    """No username: allowed, as anonymous. A username: no opinion (``FileAuthPlugin`` decides).

    Either way a will on a topic the client may not publish to is dropped (the client still
    connects), as Mosquitto does: amqtt would publish it unchecked, so an anonymous watcher could
    leave a forged command on a robot's ``cmd`` topic and disconnect.
    """

    async def authenticate(self, *, session: Session) -> bool | None:
        self._check_will(session)
        if session.username is None:
            session.is_anonymous = True
            return True
        session.is_anonymous = False
        return None

    def _check_will(self, session: Session) -> None:
        if not session.will_flag or session.will_topic is None:
            return
        table = acl_table(self.config.robot_ids)
        if not permits(table, session.username, "publish", session.will_topic):
            log.warning(
                "dropped the will of %s on %s: not a topic it may publish to",
                session.username or "an anonymous client",
                session.will_topic,
            )
            session.will_flag = False
            session.will_topic = session.will_message = None

    @dataclass
    class Config:
        robot_ids: list[str] = field(default_factory=list)


class TopicACLPlugin(TopicAccessControlListPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Per-user topic lists for publishing, subscribing and receiving (user ``anonymous`` too)."""

    @dataclass
    class Config:
        publish_acl: dict[str, list[str]] = field(default_factory=dict)
        subscribe_acl: dict[str, list[str]] = field(default_factory=dict)
        receive_acl: dict[str, list[str]] = field(default_factory=dict)
