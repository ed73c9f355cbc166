"""A scenario's fleet scaled to N robots, the same way for every command (``--robots N``).

``factory simulate``, ``broker``, ``serve`` and ``up`` take ``--robots N`` as a suffix of the
scenario reference, ``default?robots=1000`` (:func:`with_robots`), and every reader of a scenario
applies it (:func:`split_reference`, :func:`scale_fleet`), so the robots the simulator runs, the
logins and ACL the broker has and the robots the engine follows are the same list.

The rule: the scenario's robots, in file order, are the pattern. Robot ``i`` of the scaled fleet
is pattern robot ``i mod P`` (``P`` robots in the file), in copy ``c = i div P``: copy 0 is the
file as written; copy ``c > 0`` gets the id ``{id}-c{c}`` on the line ``{line}-c{c}`` (same area,
same limits), so a line never grows past its designed size. Fewer robots than the file keeps the
first N and drops lines left empty. A scripted fault (``[[faults]]``) stays with its robot in
copy 0, and is dropped with it.
"""

from __future__ import annotations

import copy
import re
from typing import Any

#: Most robots a scenario may be scaled to (ids and lines stay within 32 characters).
MAX_ROBOTS = 1_000_000
_SUFFIX = re.compile(r"^(?P<base>.*)\?robots=(?P<n>[0-9]+)$")


class FleetSizeError(ValueError):
    """A ``?robots=N`` that cannot be used; the message says why."""


def with_robots(scenario: str | None, robots: int | None) -> str | None:
    """The scenario reference for ``--robots N`` (``None``: the scenario as it is)."""
    if robots is None:
        return scenario
    if not 1 <= robots <= MAX_ROBOTS:
        raise FleetSizeError(f"--robots: 1 to {MAX_ROBOTS:,}, not {robots}")
    base, _ = split_reference(scenario)
    return f"{base or 'default'}?robots={robots}"


def split_reference(scenario: str | None) -> tuple[str | None, int | None]:
    """``"default?robots=1000"`` → ``("default", 1000)``; without the suffix, ``(ref, None)``."""
    if scenario is None:
        return None, None
    match = _SUFFIX.match(scenario)
    if match is None:
        return scenario, None
    robots = int(match["n"])
    if not 1 <= robots <= MAX_ROBOTS:
        raise FleetSizeError(f"?robots=: 1 to {MAX_ROBOTS:,}, not {robots}")
    return match["base"] or None, robots


def scale_fleet(data: dict[str, Any], robots: int) -> dict[str, Any]:
    """The scenario ``data`` (parsed TOML) with its fleet scaled to ``robots`` (see above)."""
    lines = data.get("lines")
    if not isinstance(lines, list) or not lines:
        return data  # the model says what is wrong with it
    pattern = [
        (index, robot)
        for index, line in enumerate(lines)
        if isinstance(line, dict)
        for robot in line.get("robots", [])
        if isinstance(robot, dict)
    ]
    if not pattern:
        return data
    scaled: dict[tuple[int, int], dict[str, Any]] = {}  # (copy, line index) → line
    for i in range(robots):
        copy_no, (line_index, robot) = i // len(pattern), pattern[i % len(pattern)]
        line = scaled.get((copy_no, line_index))
        if line is None:
            line = copy.deepcopy({k: v for k, v in lines[line_index].items() if k != "robots"})
            if copy_no:
                line["id"] = f"{line['id']}-c{copy_no}"
            line["robots"] = []
            scaled[(copy_no, line_index)] = line
        member = dict(robot)
        if copy_no:
            member["id"] = f"{robot['id']}-c{copy_no}"
        line["robots"].append(member)
    out = dict(data)
    out["lines"] = [scaled[key] for key in sorted(scaled)]
    faults = data.get("faults")
    if isinstance(faults, list):
        # A scripted fault stays with its robot (copy 0); one of a robot left out goes too.
        kept = {m.get("id") for line in out["lines"] for m in line["robots"]}
        out["faults"] = [f for f in faults if not isinstance(f, dict) or f.get("robot") in kept]
    return out
