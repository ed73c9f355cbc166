"""A scenario's scripted fault timeline: the ``[[faults]]`` entries of a scenario file.

Each entry says when (``at``: a UTC time, or seconds after the scenario's start), which robot,
which fault and its parameters. :func:`scripted_commands` turns them into the contract's
``inject_fault`` commands and :func:`schedule_faults` hands each to its robot at its time through
:meth:`Factory.handle <simulator.model.factory.Factory.handle>` — the path a command from the
service takes — so a scripted fault and an injected one behave the same. No randomness is drawn:
the same scenario and seed give the same run, and a scenario without ``[[faults]]`` runs exactly
as before. docs/scenario.md documents the fields.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from datetime import datetime
from typing import Annotated, Any

import simpy
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.payloads import FaultKind, InjectFault, MetricName, Name

#: Boot id of scripted commands (a robot keeps command ids per run, not per boot).
SCRIPT_BOOT = "scenario-script"
#: How long after its time a scripted command may still run (it runs at once; this is the
#: contract's required expiry).
SCRIPT_EXPIRY_S = 60.0


class FaultSpec(BaseModel):
    """One scripted fault: what ``POST /api/robots/{id}/faults`` would send, at a fixed time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: datetime | Annotated[float, Field(ge=0.0, le=10 * 365 * 86400.0)] = Field(
        description="When: a UTC time (TOML datetime) or simulated seconds after the start."
    )
    robot: Name
    fault: FaultKind
    component: Name | None = None
    sensor: MetricName | None = None
    magnitude: Annotated[float, Field(gt=0.0, le=1000.0)] = 1.0
    duration_s: Annotated[float, Field(gt=0.0, le=365 * 86400.0)] | None = None

    @field_validator("at")
    @classmethod
    def _utc(cls, at: datetime | float) -> datetime | float:
        if isinstance(at, datetime) and (at.utcoffset() is None or at.utcoffset().total_seconds()):  # type: ignore[union-attr]
            raise ValueError("a time must be UTC, e.g. 2026-01-05T08:00:00Z")
        return at

    def at_ts(self, start_ts: float) -> float:
        """The fault's time, Unix seconds."""
        return self.at.timestamp() if isinstance(self.at, datetime) else start_ts + self.at


def scripted_commands(faults: Sequence[FaultSpec], start_ts: float) -> list[InjectFault]:
    """The timeline as ``inject_fault`` commands with ids ``script-1``, ``script-2``, …"""
    commands = []
    for n, spec in enumerate(faults, start=1):
        ts = spec.at_ts(start_ts)
        commands.append(
            InjectFault(
                v=1,
                robot=spec.robot,
                ts=ts,
                boot=SCRIPT_BOOT,
                seq=n,
                id=f"script-{n}",
                expires_ts=ts + SCRIPT_EXPIRY_S,
                type="inject_fault",
                fault=spec.fault,
                component=spec.component,
                sensor=spec.sensor,
                magnitude=spec.magnitude,
                duration_s=spec.duration_s,
            )
        )
    return commands


def schedule_faults(
    env: simpy.Environment,
    commands: Sequence[InjectFault],
    start_ts: float,
    handle: Callable[[InjectFault], str],
) -> None:
    """Register one SimPy process per command that hands it to ``handle`` at its time."""

    def fire(command: InjectFault) -> Generator[simpy.Event, Any, None]:
        yield env.timeout(max(command.ts - start_ts - env.now, 0.0))
        handle(command)

    for command in commands:
        env.process(fire(command))
