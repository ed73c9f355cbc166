"""How many file descriptors a process of robots needs, checked before the first connect.

A robot on the shared :class:`~simulator.devices.net_loop.NetworkLoop` holds one descriptor, its
TCP socket (paho makes its wake-up socket pair only for ``loop_start``/``loop_forever``, which
the loop does not use). The rest of the process — the selector, the loop's wake-up pair,
standard streams, the broker reachability check, log files, imported libraries — stays within
:data:`RESERVED_FDS`. So N robots need about ``N + RESERVED_FDS`` descriptors. Many systems start
a process with a soft limit of 1,024 and a much higher hard limit: :func:`ensure_descriptors`
raises the soft limit (up to the hard one) when N robots need it, and otherwise fails at once
with a message naming the limit — not 300 robots into the run with ``Too many open files``.
"""

from __future__ import annotations

import resource

#: Descriptors kept for everything in the process that is not a robot's socket.
RESERVED_FDS = 64


class DescriptorLimit(Exception):
    """The robots cannot fit in this process's descriptor limit; ``str()`` says which."""


def descriptors_needed(robots: int) -> int:
    return robots + RESERVED_FDS


def ensure_descriptors(robots: int) -> int:
    """Make sure ``robots`` sockets fit; return the soft limit now in force. Raises the soft
    ``RLIMIT_NOFILE`` toward the hard one if needed; :class:`DescriptorLimit` if even that is
    too low."""
    need = descriptors_needed(robots)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= need:
        return soft
    if hard != resource.RLIM_INFINITY and hard < need:
        raise DescriptorLimit(
            f"{robots:,} robots need about {need:,} open files (a socket each and "
            f"{RESERVED_FDS} for the rest of the process), but the hard limit of this process "
            f"is {hard:,} (RLIMIT_NOFILE); raise it (`ulimit -Hn`, systemd `LimitNOFILE=`, "
            "`docker run --ulimit nofile=`) or run fewer robots per process"
        )
    raised = hard if hard != resource.RLIM_INFINITY else need
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    return raised
