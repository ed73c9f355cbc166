"""TCP ports for local brokers: is one free, find a free one, suggest the next free one.

A broker binds with SO_REUSEADDR, so the check does too: a port left in TIME_WAIT by a broker
that just stopped counts as free, a port with a listener (another broker) does not.
"""

from __future__ import annotations

import socket

from broker_config.layout import DEFAULT_HOST

#: How far above a taken port to look for a free one to suggest.
SUGGEST_RANGE = 50


def port_is_free(host: str, port: int) -> bool:
    """True if a listener could bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port the OS considers free right now (bind port 0). Tests use it for ephemeral brokers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def suggest_port(host: str, taken: int) -> int | None:
    """The first free port above ``taken``, for the "pick another" hint."""
    upper = min(taken + SUGGEST_RANGE, 65536)
    return next((p for p in range(taken + 1, upper) if port_is_free(host, p)), None)
