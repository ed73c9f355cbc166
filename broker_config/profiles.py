"""The security ladder: four profiles a broker can run with, from a classroom toy to TLS.

=========  ==========================================================================
open       anonymous clients may read and write everything (a banner warns)
password   every client logs in; a login may read and write everything
acl        logins, per-robot topic rules, private ``truth``; anonymous may only read
tls        ``acl`` plus MQTT over TLS (8883) and WebSockets over TLS, local CA
=========  ==========================================================================

``acl`` is the default and what the demo always did. The table with who may do what and how to
connect is in ``docs/broker.md``.
"""

from __future__ import annotations

from enum import StrEnum


class Security(StrEnum):
    OPEN = "open"
    PASSWORD = "password"
    ACL = "acl"
    TLS = "tls"

    @property
    def logins_required(self) -> bool:
        """Anonymous clients are refused (``password``); ``acl``/``tls`` let them read."""
        return self is Security.PASSWORD

    @property
    def checks_passwords(self) -> bool:
        return self is not Security.OPEN

    @property
    def topic_rules(self) -> bool:
        return self in (Security.ACL, Security.TLS)

    @property
    def tls(self) -> bool:
        return self is Security.TLS


DEFAULT_SECURITY = Security.ACL
DEFAULT_TLS_PORT = 8883
SECURITY_CHOICES = ", ".join(s.value for s in Security)

OPEN_WARNING = (
    "WARNING: security profile 'open': anyone who can reach the broker may publish anything, "
    "including commands to robots and forged telemetry, and read the ground truth. Use it only "
    "on a network you trust; --security acl (the default) or tls for a room."
)


def parse_security(value: str) -> Security:
    try:
        return Security(value.lower())
    except ValueError:
        raise ValueError(
            f"unknown security profile {value!r}; use one of {SECURITY_CHOICES}"
        ) from None
