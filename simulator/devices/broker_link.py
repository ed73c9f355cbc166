"""Whether the robots of ``factory simulate`` reach their broker, said in one line.

A broker that does not answer, or that refuses every robot's login, ends the command with a
non-zero exit and one line naming ``host:port`` and the reason — never a silent run that sends
nothing. When only some robots connect, a warning says how many and why each other one did not
(they keep what they make and retry).
"""

from __future__ import annotations

import socket
from typing import Protocol

from rich.console import Console

from simulator.devices.agent import DeviceAgent

#: How long ``factory simulate`` waits for a TCP connection to the broker, then for every robot
#: to be connected or refused, before it says so (both well within 30 s together).
REACH_TIMEOUT_S = 5.0
CONNECT_WAIT_S = 20.0


class Fleet(Protocol):
    """What is checked here of :class:`simulator.devices.run.LiveFactory`."""

    @property
    def agents(self) -> dict[str, DeviceAgent]: ...

    def connect(self, timeout_s: float) -> None: ...

    def connection_problems(self) -> dict[str, str]: ...

    def stop(self) -> None: ...


def check_reachable(host: str, port: int, timeout_s: float = REACH_TIMEOUT_S) -> None:
    """Raise :class:`BrokerUnreachable` (one line naming ``host:port`` and why) unless a TCP
    connection to the broker can be opened."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise BrokerUnreachable(
            f"cannot reach the broker at {host}:{port} ({reason}); start one (`factory broker`"
            " or `factory up`) or point --broker at it"
        ) from None


class BrokerUnreachable(Exception):
    """The broker does not answer or refuses every robot; ``str()`` is one line."""


def summarise_problems(problems: dict[str, str]) -> str:
    """``{"weld-01": "x", "weld-02": "x"}`` → ``"weld-01, weld-02: x"``, one group per reason."""
    by_reason: dict[str, list[str]] = {}
    for robot_id, reason in problems.items():
        by_reason.setdefault(reason, []).append(robot_id)
    return "; ".join(f"{', '.join(ids)}: {reason}" for reason, ids in by_reason.items())


def connect_or_fail(live: Fleet, host: str, port: int, console: Console) -> None:
    """Connect the robots: fail if none can, say how many and why if only some do."""
    live.connect(CONNECT_WAIT_S)
    problems = live.connection_problems()
    waited = any(not live.agents[r].refused for r in problems)
    try:
        judge_connects(len(live.agents), problems, waited, host, port, console)
    except BrokerUnreachable:
        live.stop()
        raise


def judge_connects(
    total: int, problems: dict[str, str], waited: bool, host: str, port: int, console: Console
) -> None:
    """Raise :class:`BrokerUnreachable` if none of ``total`` robots connected, else say how many
    did and why each other did not (``problems``: robot id → reason; ``waited``: some robot got
    no answer at all, rather than a refusal)."""
    if len(problems) == total:
        within = f" within {CONNECT_WAIT_S:g} s" if waited else ""
        raise BrokerUnreachable(
            f"no robot could connect to the broker at {host}:{port}{within}: "
            f"{summarise_problems(problems)}"
        )
    if problems:
        console.print(
            f"[yellow]warning:[/] {total - len(problems)} of {total} robots connected to "
            f"{host}:{port}; {summarise_problems(problems)} (they buffer and keep retrying)"
        )
    else:
        console.print(f"all {total} robots connected to {host}:{port}")


def why_nothing(live: Fleet) -> str:
    problems = {
        robot_id: f"the broker refused its login ({agent.refused})"
        if agent.refused
        else "never connected"
        for robot_id, agent in live.agents.items()
        if agent.stats.connects == 0
    }
    if problems:
        return summarise_problems(problems)
    return "the robots were connected but made nothing to send (is --duration too short?)"
