"""The addresses participants on the same network use to reach this machine (``--bind 0.0.0.0``).

Found without extra libraries: the addresses the host name resolves to, plus the source address
the kernel would use for an outside destination (a UDP ``connect`` sends no packet). Loopback
addresses are left out; an offline laptop may have none, and then the banner says so.
"""

from __future__ import annotations

import ipaddress
import socket

#: TEST-NET-1 (RFC 5737): never routed, only used to ask which local address would be the source.
_PROBE_DESTINATION = ("192.0.2.1", 9)
WILDCARD = "0.0.0.0"


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and not ip.is_loopback and not ip.is_unspecified


def machine_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, best guess first."""
    found: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(_PROBE_DESTINATION)
            found.append(str(sock.getsockname()[0]))
    except OSError:
        pass  # no route: offline
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        found += [str(info[4][0]) for info in infos]
    except OSError:
        pass
    return list(dict.fromkeys(a for a in found if _usable(a)))


def lan_addresses(bind: str) -> list[str]:
    """Addresses other machines reach a listener bound to ``bind`` on (none for loopback)."""
    if bind == WILDCARD:
        return machine_addresses()
    return [bind] if _usable(bind) else []
