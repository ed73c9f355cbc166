"""The fleet's broker connections, counted and closed together.

:func:`link_counts` says how many robots are online, still connecting (never connected yet),
reconnecting (connected before, lost it) or refused by the broker, with each refusal's reason,
so ``factory simulate`` can report robots that cannot connect while it runs instead of dropping
them silently. :func:`stop_all` stops a whole fleet in a few seconds: every robot publishes
OFFLINE first, all are awaited against one shared deadline, every network loop is told to end,
and only then are the threads joined (several at a time), so no robot's back-off or slow
acknowledgement is waited for in turn.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from simulator.devices.agent import STOP_PUBLISH_TIMEOUT_S, DeviceAgent

#: Network threads joined at once when stopping (each ends within about a second).
JOIN_WORKERS = 64


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
    agents: Sequence[DeviceAgent], offline_timeout_s: float = STOP_PUBLISH_TIMEOUT_S
) -> None:
    """Stop every robot: OFFLINE published by all, awaited against one deadline, then every
    connection closed; see the module docstring."""
    pending = [(agent, agent.begin_stop()) for agent in agents]
    deadline = time.monotonic() + offline_timeout_s
    for _agent, info in pending:
        DeviceAgent.await_offline(info, deadline - time.monotonic())
    for agent in agents:
        agent.disconnect()
    if agents:
        with ThreadPoolExecutor(min(JOIN_WORKERS, len(agents)), "robot-stop") as pool:
            for _ in pool.map(DeviceAgent.join, agents):
                pass
