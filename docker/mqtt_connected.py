#!/usr/bin/env python3
"""Healthcheck of the compose ``simulator``: is any robot connected to the broker right now?

The simulator has no HTTP endpoint; what makes it healthy is that its robots hold MQTT
connections. This reads the container's own TCP table (``/proc/net/tcp`` and ``tcp6``, which in a
container cover only its network namespace) and succeeds if at least ``--min`` connections to the
broker port are established. No network traffic, no credentials, no third-party code.

Usage (installed in the image as ``factory-mqtt-connected``)::

    factory-mqtt-connected 1883            # exit 0 if connected, 1 otherwise
    factory-mqtt-connected 1883 --min 12
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

TCP_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
#: ``st`` column value of an established connection (include/net/tcp_states.h).
TCP_ESTABLISHED = "01"


def established_to(port: int, table_lines: Iterable[str]) -> int:
    """How many lines of a ``/proc/net/tcp*`` table are established connections to ``port``."""
    count = 0
    for line in table_lines:
        fields = line.split()
        # sl, local_address, rem_address, st, ...; the header line has "local_address" etc.
        if len(fields) < 4 or ":" not in fields[2]:
            continue
        remote_port_hex = fields[2].rsplit(":", 1)[1]
        try:
            remote_port = int(remote_port_hex, 16)
        except ValueError:
            continue
        if remote_port == port and fields[3] == TCP_ESTABLISHED:
            count += 1
    return count


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="the broker's TCP port")
    parser.add_argument("--min", type=int, default=1, help="connections needed (default 1)")
    args = parser.parse_args(argv)
    count = 0
    for table in TCP_TABLES:
        try:
            count += established_to(args.port, table.read_text().splitlines())
        except OSError:
            continue  # no IPv6 table in this kernel/container
    if count >= args.min:
        return 0
    print(f"{count} connection(s) to port {args.port}, {args.min} needed", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
