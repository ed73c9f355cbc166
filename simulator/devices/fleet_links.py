"""The fleet's broker connections, counted and closed together.

:func:`link_counts` says how many robots are online, still connecting (never connected yet),
reconnecting (connected before, lost it) or refused by the broker, with each refusal's reason,
so ``factory simulate`` can report robots that cannot connect while it runs instead of dropping
them silently. :func:`stop_all` stops a whole fleet in a few seconds: every robot publishes
OFFLINE first, all are awaited against one shared deadline, every connection is then closed
(a DISCONNECT each; a reconnect wait or a hold ends at once) and awaited against a second
deadline, and last the network loop they share is stopped (cutting what is still open). No
robot's back-off or slow acknowledgement is waited for in turn, and with one network thread per
process there are no per-robot threads to join.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from simulator.devices.agent import STOP_CLOSE_TIMEOUT_S, STOP_PUBLISH_TIMEOUT_S, DeviceAgent
from simulator.devices.net_loop import NetworkLoop
from simulator.devices.wire import await_ack


@dataclass(frozen=True, slots=True)
class LinkCounts:
    online: int = 0
    connecting: int = 0
    reconnecting: int = 0
    #: Refused robots per reason the broker gave.
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.online + self.connecting + self.reconnecting + sum(self.refused.values())

    def line(self) -> str:
        """``"98 of 100 robots online, 1 connecting, 1 refused (Not authorized: 1)"``."""
        parts = [f"{self.online} of {self.total} robots online"]
        if self.connecting:
            parts.append(f"{self.connecting} connecting (no answer from the broker yet)")
        if self.reconnecting:
            parts.append(f"{self.reconnecting} reconnecting (connection lost)")
        if self.refused:
            reasons = ", ".join(f"{r}: {n}" for r, n in sorted(self.refused.items()))
            parts.append(f"{sum(self.refused.values())} refused ({reasons})")
        return ", ".join(parts)


def link_counts(agents: Iterable[DeviceAgent]) -> LinkCounts:
    online = connecting = reconnecting = 0
    refused: Counter[str] = Counter()
    for agent in agents:
        if agent.connected:
            online += 1
        elif agent.refused:
            refused[agent.refused] += 1
        elif agent.stats.connects:
            reconnecting += 1
        else:
            connecting += 1
    return LinkCounts(online, connecting, reconnecting, dict(refused))


def stop_all(
    agents: Sequence[DeviceAgent],
    network: NetworkLoop | None = None,
    offline_timeout_s: float = STOP_PUBLISH_TIMEOUT_S,
    close_timeout_s: float = STOP_CLOSE_TIMEOUT_S,
) -> None:
    """Stop every robot: OFFLINE published by all, awaited against one deadline, every
    connection closed against another, then ``network`` (the loop they share) stopped; see the
    module docstring. At most ``offline_timeout_s + close_timeout_s`` plus the loop's stop."""
    pending = [agent.begin_stop() for agent in agents]
    deadline = time.monotonic() + offline_timeout_s
    for info in pending:
        await_ack(info, deadline - time.monotonic())
    for agent in agents:
        agent.disconnect()
    deadline = time.monotonic() + close_timeout_s
    for agent in agents:
        agent.join(deadline - time.monotonic())
    if network is not None:
        network.stop()
