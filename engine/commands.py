"""Commands the planner wants sent to robots, and their contract payloads.

The engine does no I/O: a :class:`Decision` carries :class:`CommandSpec` values, and whoever
delivers them turns each into a strict contract payload with :func:`command_payload`, adding the
envelope it owns (issue time, boot id, sequence number). The service publishes the payload on the
robot's ``cmd`` topic; the offline experiment hands it straight to the simulated robot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from contract.payloads import CancelMaintenance, ScheduleMaintenance


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What to send: a schedule_maintenance (component, start, duration) or a
    cancel_maintenance (``target`` = the schedule command's id)."""

    id: str
    type: Literal["schedule_maintenance", "cancel_maintenance"]
    robot: str
    work_order: str
    expires_ts: float
    component: str | None = None
    start_ts: float | None = None
    duration_s: float | None = None
    target: str | None = None


def schedule_command_id(work_order_id: str) -> str:
    return f"{work_order_id}.schedule"


def cancel_command_id(work_order_id: str) -> str:
    return f"{work_order_id}.cancel"


def command_payload(
    spec: CommandSpec, *, ts: float, boot: str, seq: int
) -> ScheduleMaintenance | CancelMaintenance:
    """The contract payload for ``spec``, issued at simulated time ``ts`` by sender ``boot``.

    ``ts`` must not be after the command's expiry (an expired command is never sent).
    """
    if spec.type == "schedule_maintenance":
        if spec.component is None or spec.start_ts is None or spec.duration_s is None:
            raise ValueError(f"command {spec.id} lacks component, start_ts or duration_s")
        return ScheduleMaintenance(
            v=1,
            robot=spec.robot,
            ts=float(ts),
            boot=boot,
            seq=seq,
            id=spec.id,
            expires_ts=float(spec.expires_ts),
            type="schedule_maintenance",
            component=spec.component,
            start_ts=float(spec.start_ts),
            duration_s=float(spec.duration_s),
            work_order=spec.work_order,
        )
    if spec.target is None:
        raise ValueError(f"command {spec.id} lacks the target command id to cancel")
    return CancelMaintenance(
        v=1,
        robot=spec.robot,
        ts=float(ts),
        boot=boot,
        seq=seq,
        id=spec.id,
        expires_ts=float(spec.expires_ts),
        type="cancel_maintenance",
        target=spec.target,
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """One planning outcome: ``kind`` is new, replanned, cancelled or expired.

    ``work_order`` is the order it is about (for replanned: the new one; ``cancelled`` then
    names the order it replaced). ``commands`` are to be sent in order; ``reason`` explains it
    to a person.
    """

    kind: Literal["new", "replanned", "cancelled", "expired", "interrupted"]
    work_order: str
    robot: str
    component: str
    ts: float
    reason: str
    commands: tuple[CommandSpec, ...] = ()
    cancelled: str | None = None
