"""How ``factory simulate --processes P`` cuts a scenario's fleet into P shards (pure).

A shard is a scenario of its own, run by one worker process on its own SimPy environment:

* **Whole lines.** A shard holds consecutive lines of the scenario file (after ``--robots N``
  scaling), never part of one: a line's ``max_concurrent_maintenance`` and the engine's view of
  a line stay whole. The cuts balance robots: shard ``s`` ends at the line whose middle robot
  comes closest to ``(s + 1) · N / P`` robots, and every shard has at least one line.
* **Technicians split in proportion.** The scenario's ``T`` technicians are apportioned by
  robots (largest remainder), at least one a shard: with ``T < P`` the fleet has ``P``
  technicians in all, more than the file says.
* **Scripted faults** go with their robot.

Each robot's random streams are seeded by ``"{seed}:{robot}:…"`` (:mod:`simulator.model.robot`),
so a robot draws the same component lives, cycles and noise in any shard. What a shard changes
is who waits for whom: a robot queues only for its shard's technicians, so once repairs or
planned jobs compete (across what are now shards) its timeline can differ from a one-process
run. ``docs/scale.md`` says the whole rule.

The default number of processes (:func:`default_processes`): one per
:data:`ROBOTS_PER_PROCESS` robots, at most one per core and at most one per line, at least one —
the 12-robot default scenario runs in one process.
"""

from __future__ import annotations

import math
import os
from typing import Any

from simulator.model.scenario import Scenario, parse_scenario

#: Robots one worker process is given before the default adds another (a core's share).
ROBOTS_PER_PROCESS = 500


class ShardError(ValueError):
    """A ``--processes`` that cannot be honoured; the message says why."""


def cores() -> int:
    """CPUs this process may run on (its affinity where the platform says it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_processes(robots: int, lines: int, cpus: int) -> int:
    """``min(ceil(robots / ROBOTS_PER_PROCESS), cpus, lines)``, at least 1."""
    return max(1, min(math.ceil(robots / ROBOTS_PER_PROCESS), cpus, lines))


def choose_processes(scenario: Scenario, processes: int | None, cpus: int | None = None) -> int:
    """The number of worker processes for ``scenario``: ``processes`` if given and possible,
    else :func:`default_processes` for this machine."""
    lines = len(scenario.lines)
    if processes is None:
        return default_processes(len(scenario.robots), lines, cores() if cpus is None else cpus)
    if processes < 1:
        raise ShardError(f"--processes must be ≥ 1, not {processes}")
    if processes > lines:
        raise ShardError(
            f"--processes {processes}: scenario {scenario.name!r} has {lines} line(s) and a line "
            f"is never split across processes (at most {lines}; --robots N adds lines)"
        )
    return processes


def split_lines(sizes: list[int], parts: int) -> list[range]:
    """Consecutive groups of line indexes, one per part, balanced by ``sizes`` (robots a line);
    every group non-empty. ``1 ≤ parts ≤ len(sizes)``."""
    if not 1 <= parts <= len(sizes):
        raise ShardError(f"cannot cut {len(sizes)} line(s) into {parts} shard(s)")
    total = sum(sizes)
    groups: list[range] = []
    start, done = 0, 0
    for part in range(parts):
        if part == parts - 1:
            groups.append(range(start, len(sizes)))
            break
        last_allowed = len(sizes) - (parts - part - 1)  # leave a line for each part to come
        target = total * (part + 1) / parts
        end = start + 1
        done += sizes[start]
        while end < last_allowed and done + sizes[end] / 2 <= target:
            done += sizes[end]
            end += 1
        groups.append(range(start, end))
        start = end
    return groups


def split_technicians(total: int, robots: list[int]) -> list[int]:
    """``total`` technicians apportioned to shards of ``robots`` robots (largest remainder),
    at least one each: a shard whose share is under one gets one and the rest is apportioned
    among the others. Only ``total < len(robots)`` gives more than ``total`` in all."""
    if total <= len(robots):
        return [1] * len(robots)
    shares = [1] * len(robots)
    free = list(range(len(robots)))
    while True:  # ends: each round fixes a shard at one, and one share is always over one
        left = total - (len(robots) - len(free))
        fleet = sum(robots[i] for i in free)
        quotas = {i: left * robots[i] / fleet for i in free}
        small = [i for i in free if quotas[i] < 1]
        if not small:
            break
        free = [i for i in free if i not in small]
    for i in free:
        shares[i] = math.floor(quotas[i])
    by_remainder = sorted(free, key=lambda i: (shares[i] - quotas[i], i))
    for i in by_remainder[: left - sum(shares[i] for i in free)]:
        shares[i] += 1
    return shares


def shard_data(scenario: Scenario, parts: int) -> list[dict[str, Any]]:
    """The ``parts`` shards of ``scenario`` as scenario data (plain Python values, as
    :func:`~simulator.model.scenario.parse_scenario` takes them); see the module docstring."""
    data = scenario.model_dump()
    lines = data["lines"]
    groups = split_lines([len(line["robots"]) for line in lines], parts)
    robots = [sum(len(lines[i]["robots"]) for i in group) for group in groups]
    technicians = split_technicians(scenario.maintenance.technicians, robots)
    shards = []
    for group, crew in zip(groups, technicians, strict=True):
        members = [lines[i] for i in group]
        ids = {robot["id"] for line in members for robot in line["robots"]}
        shard = dict(data)
        shard["lines"] = members
        shard["maintenance"] = {**data["maintenance"], "technicians": crew}
        shard["faults"] = [fault for fault in data["faults"] if fault["robot"] in ids]
        shards.append(shard)
    return shards


def shard_scenarios(scenario: Scenario, parts: int) -> list[Scenario]:
    """The ``parts`` shards of ``scenario``, validated like any scenario."""
    return [
        parse_scenario(data, f"{scenario.name} shard {index + 1} of {parts}")
        for index, data in enumerate(shard_data(scenario, parts))
    ]
