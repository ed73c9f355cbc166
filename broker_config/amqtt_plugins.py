"""Two small amqtt 0.12 plugins that make the embedded broker enforce our security model.

Loaded by dotted path from the broker config that :func:`broker_config.amqtt_main.amqtt_config`
writes; amqtt imports them inside the broker subprocess only.

- :class:`AnonymousOrFileAuthPlugin` replaces amqtt's ``AnonymousAuthPlugin``. With
  ``allow_anonymous`` on, the stock plugin marks *every* session anonymous, including robots that
  logged in with a password, and amqtt never queues offline QoS 1 messages for an anonymous
  session. Ours accepts a client without a username as anonymous and leaves clients with a
  username to ``FileAuthPlugin`` (which refuses a wrong password), so authenticated persistent
  sessions keep their offline queue.
- :class:`TopicACLPlugin` is amqtt's ``TopicAccessControlListPlugin`` with a ``Config`` that
  declares ``subscribe_acl`` and ``receive_acl``. The stock ``Config`` dataclass declares only
  ``publish_acl`` and the deprecated ``acl``, and plugin-style config is loaded strictly, so the
  stock plugin cannot be given a subscribe or receive ACL except through the deprecated
  ``topic-check`` section.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amqtt.plugins.base import BaseAuthPlugin
from amqtt.plugins.topic_checking import TopicAccessControlListPlugin
from amqtt.session import Session


class AnonymousOrFileAuthPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt is untyped
    """No username: allowed, as anonymous. A username: no opinion (``FileAuthPlugin`` decides)."""

    async def authenticate(self, *, session: Session) -> bool | None:
        if session.username is None:
            session.is_anonymous = True
            return True
        session.is_anonymous = False
        return None

    @dataclass
    class Config:
        """No options."""


class TopicACLPlugin(TopicAccessControlListPlugin):  # type: ignore[misc]  # amqtt is untyped
    """Per-user topic lists for publishing, subscribing and receiving (user ``anonymous`` too)."""

    @dataclass
    class Config:
        publish_acl: dict[str, list[str]] = field(default_factory=dict)
        subscribe_acl: dict[str, list[str]] = field(default_factory=dict)
        receive_acl: dict[str, list[str]] = field(default_factory=dict)
