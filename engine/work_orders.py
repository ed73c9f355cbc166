"""Work orders and their lifecycle state machine.

::

    planned ──▶ dispatched ──▶ acknowledged ──▶ in_progress ──▶ done
       │            │  │            │  │
       │            │  └──────────────────▶ in_progress   (started before the ack arrived)
       ├────────────┴───────────────┴──▶ cancelled / expired
                    └───────────────┴──▶ rejected
                                    acknowledged, in_progress ──▶ interrupted (the robot rebooted)

A transition not drawn here is refused with :class:`IllegalTransition`. Events from a robot are
evidence of what happened, so :func:`advance` walks the implied legal path (an ``accepted`` ack on
a work order still marked planned proves it was dispatched). Work orders are plain dataclasses
(``dataclasses.asdict`` serialises them) so the service can persist and restore them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class WorkOrderState(StrEnum):
    PLANNED = "planned"
    DISPATCHED = "dispatched"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    INTERRUPTED = "interrupted"


S = WorkOrderState
TRANSITIONS: dict[WorkOrderState, frozenset[WorkOrderState]] = {
    S.PLANNED: frozenset({S.DISPATCHED, S.CANCELLED, S.EXPIRED}),
    S.DISPATCHED: frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS, S.CANCELLED, S.EXPIRED, S.REJECTED}),
    S.ACKNOWLEDGED: frozenset({S.IN_PROGRESS, S.CANCELLED, S.EXPIRED, S.REJECTED, S.INTERRUPTED}),
    S.IN_PROGRESS: frozenset({S.DONE, S.INTERRUPTED}),
    S.DONE: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
    S.INTERRUPTED: frozenset(),
}
#: States in which a work order still holds a slot (and a technician) in the schedule.
ACTIVE = frozenset({S.PLANNED, S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS})
#: States in which the planner may still move or cancel it.
MOVABLE = frozenset({S.PLANNED, S.DISPATCHED, S.ACKNOWLEDGED})
#: The forward path that events walk along.
_PATH = (S.PLANNED, S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.DONE)


class IllegalTransition(ValueError):
    """A lifecycle change the state machine does not allow."""


@dataclass(slots=True)
class Transition:
    ts: float
    from_state: str
    to_state: str
    reason: str


@dataclass(slots=True)
class WorkOrder:
    """A maintenance job on one component of one robot.

    ``origin`` is predictive, preventive or manual; ``placement`` says how the slot was chosen
    (window, fallback, late or requested). ``reference_ts`` is what the job was planned against:
    the predicted failure (predictive) or the due time (preventive); ``deadline_ts`` is the time
    the job had to end by. ``command_id`` is the id of the schedule_maintenance command.
    """

    id: str
    robot: str
    line: str
    component: str
    origin: str
    state: WorkOrderState
    start_ts: float
    duration_s: float
    expires_ts: float
    command_id: str
    created_ts: float
    reason: str
    placement: str
    lost_production_s: float = 0.0
    reference_ts: float | None = None
    deadline_ts: float | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    requested_by: str | None = None
    note: str | None = None
    updated_ts: float = 0.0
    history: list[Transition] = field(default_factory=list)

    @property
    def end_ts(self) -> float:
        return self.start_ts + self.duration_s

    @property
    def active(self) -> bool:
        return self.state in ACTIVE


def transition(wo: WorkOrder, to: WorkOrderState, ts: float, reason: str) -> None:
    """Move ``wo`` to ``to``, or raise :class:`IllegalTransition` if the lifecycle forbids it."""
    if to not in TRANSITIONS[wo.state]:
        raise IllegalTransition(
            f"work order {wo.id} is {wo.state.value}; it cannot become {to.value} "
            f"(allowed: {', '.join(sorted(s.value for s in TRANSITIONS[wo.state])) or 'none'})"
        )
    wo.history.append(Transition(ts, wo.state.value, to.value, reason))
    wo.state = to
    wo.updated_ts = ts


def advance(wo: WorkOrder, to: WorkOrderState, ts: float, reason: str) -> bool:
    """Move ``wo`` to ``to``, through the implied steps of the normal path if need be (an ack
    "rejected" for a planned order implies it was dispatched).

    Returns False (and changes nothing) when ``wo`` is already there; raises
    :class:`IllegalTransition` when ``to`` cannot be reached (e.g. the order was cancelled).
    """
    if wo.state == to:
        return False
    if to in TRANSITIONS[wo.state]:
        transition(wo, to, ts, reason)
        return True
    if wo.state in _PATH:
        here = _PATH.index(wo.state)
        for there in range(here + 1, len(_PATH)):
            if to != _PATH[there] and to not in TRANSITIONS[_PATH[there]]:
                continue
            for step in _PATH[here + 1 : there + 1]:
                transition(wo, step, ts, reason if step == to else f"implied by: {reason}")
            if to != _PATH[there]:
                transition(wo, to, ts, reason)
            return True
    transition(wo, to, ts, reason)  # raises with the allowed list
    return True  # pragma: no cover - transition() raised
