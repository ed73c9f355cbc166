"""The book of work orders: ids, creation, cancellation, expiry, and robot events on them.

It owns every work order the engine made or was given back (:meth:`WorkOrderBook.restore`), finds
them by schedule or cancel command id, and applies the robots' answers to their lifecycle. Events
are facts about the robot, so a late or crossed one never raises: it is counted in ``conflicts``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from contract.payloads import TS_MAX
from engine.commands import CommandSpec, Decision, cancel_command_id, schedule_command_id
from engine.reasons import when
from engine.scheduler import Booking, Placement
from engine.work_orders import (
    MOVABLE,
    IllegalTransition,
    Transition,
    WorkOrder,
    WorkOrderState,
    advance,
    transition,
)

S = WorkOrderState
_PATH = (S.PLANNED, S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.DONE)
_CLOSED = frozenset({S.CANCELLED, S.EXPIRED, S.REJECTED, S.INTERRUPTED})


class WorkOrderBook:
    """All work orders; ``prefix`` makes ids unique across engine instances."""

    def __init__(self, prefix: str = "wo", command_expiry_s: float = 3600.0) -> None:
        self.prefix = prefix
        self.command_expiry_s = command_expiry_s
        self.orders: dict[str, WorkOrder] = {}
        #: The orders that were active when last looked at (a small subset of all orders).
        self.live: dict[str, WorkOrder] = {}
        self.by_command: dict[str, WorkOrder] = {}
        self.conflicts = 0
        self._next_id = 1

    def get(self, work_order_id: str) -> WorkOrder:
        try:
            return self.orders[work_order_id]
        except KeyError:
            raise KeyError(f"no work order {work_order_id!r}") from None

    def active(self, robot: str, component: str | None = None) -> list[WorkOrder]:
        """Active orders of a robot (and component), oldest first."""
        self.live = {k: wo for k, wo in self.live.items() if wo.active}
        return [
            wo
            for wo in self.live.values()
            if wo.robot == robot and (component is None or wo.component == component)
        ]

    def all_active(self) -> list[WorkOrder]:
        self.live = {k: wo for k, wo in self.live.items() if wo.active}
        return list(self.live.values())

    def bookings(self, exclude: str | None = None) -> list[Booking]:
        """The time the active orders hold, for the scheduler."""
        return [
            Booking(wo.robot, wo.line, wo.start_ts, wo.end_ts, wo.id)
            for wo in self.all_active()
            if wo.id != exclude
        ]

    # --- changes the planner makes ---------------------------------------------------------

    def create(
        self,
        robot: str,
        line: str,
        component: str,
        origin: str,
        placement: Placement,
        now_ts: float,
        reason: str,
        reference_ts: float | None = None,
        deadline_ts: float | None = None,
    ) -> WorkOrder:
        wo_id = f"{self.prefix}-{self._next_id:06d}"
        self._next_id += 1
        wo = WorkOrder(
            id=wo_id,
            robot=robot,
            line=line,
            component=component,
            origin=origin,
            state=S.PLANNED,
            start_ts=placement.start_ts,
            duration_s=placement.end_ts - placement.start_ts,
            expires_ts=min(placement.start_ts + self.command_expiry_s, TS_MAX),
            command_id=schedule_command_id(wo_id),
            created_ts=now_ts,
            reason=reason,
            placement=placement.mode,
            lost_production_s=placement.lost_production_s,
            reference_ts=reference_ts,
            deadline_ts=deadline_ts,
            updated_ts=now_ts,
            history=[Transition(now_ts, "", S.PLANNED.value, reason)],
        )
        self.orders[wo.id] = self.live[wo.id] = self.by_command[wo.command_id] = wo
        return wo

    def new_decision(self, wo: WorkOrder) -> Decision:
        return Decision(
            "new", wo.id, wo.robot, wo.component, wo.created_ts, wo.reason, (schedule_spec(wo),)
        )

    def cancel(self, wo: WorkOrder, now_ts: float, why: str) -> Decision:
        """Cancel ``wo`` (IllegalTransition unless planned/dispatched/acknowledged)."""
        transition(wo, S.CANCELLED, now_ts, why)
        command = CommandSpec(
            id=cancel_command_id(wo.id),
            type="cancel_maintenance",
            robot=wo.robot,
            work_order=wo.id,
            expires_ts=max(now_ts, wo.expires_ts),
            target=wo.command_id,
        )
        self.by_command[command.id] = wo
        return Decision("cancelled", wo.id, wo.robot, wo.component, now_ts, why, (command,))

    def expire(self, now_ts: float) -> list[Decision]:
        """Orders whose command was not started by its expiry."""
        out = []
        for wo in self.all_active():
            if wo.state in MOVABLE and now_ts > wo.expires_ts:
                why = f"not started by {when(wo.expires_ts)}"
                transition(wo, S.EXPIRED, now_ts, why)
                out.append(Decision("expired", wo.id, wo.robot, wo.component, now_ts, why))
        return out

    def interrupt(self, robot: str, now_ts: float) -> list[Decision]:
        """``robot`` rebooted: it has forgotten the jobs it accepted and the one it was doing,
        so those orders end (no command: the robot would not know what it cancels)."""
        out = []
        why = "the robot restarted and forgot this job"
        for wo in self.active(robot):
            if wo.state in (S.ACKNOWLEDGED, S.IN_PROGRESS):
                transition(wo, S.INTERRUPTED, now_ts, why)
                out.append(Decision("interrupted", wo.id, wo.robot, wo.component, now_ts, why))
        return out

    # --- what the robots say ---------------------------------------------------------------

    def advance(self, wo: WorkOrder, to: WorkOrderState, ts: float, why: str) -> bool:
        """Move ``wo`` along its lifecycle on a robot's word; False if nothing changed."""
        if wo.state in _PATH and to in _PATH and _PATH.index(to) < _PATH.index(wo.state):
            return False  # a message that arrived after a later one (ack after "started")
        if wo.state in _CLOSED and to in _CLOSED:
            return False  # already closed: the robot's "rejected" for a job we cancelled
        try:
            return advance(wo, to, ts, why)
        except IllegalTransition:
            self.conflicts += 1
            return False

    def on_ack(self, wo: WorkOrder, ts: float, status: str | None, reason: str | None) -> bool:
        """Apply an ack of ``wo``'s schedule command; True when it reports the job done."""
        if status == "accepted":
            self.advance(wo, S.ACKNOWLEDGED, ts, "accepted by the robot")
        elif status == "rejected":
            self.advance(wo, S.REJECTED, ts, f"rejected by the robot: {reason or 'no reason'}")
        elif status == "done" and wo.state != S.DONE:
            return self.advance(wo, S.DONE, ts, "robot reports the job done")
        return False

    # --- persistence -----------------------------------------------------------------------

    def restore(self, orders: Iterable[WorkOrder]) -> None:
        """Load persisted orders (``WorkOrder(**asdict(wo))`` is fine); ids continue after them."""
        for loaded in orders:
            raw: list[Any] = list(loaded.history)  # asdict() turned them into dicts
            history = [Transition(**h) if isinstance(h, dict) else h for h in raw]
            wo = replace(loaded, state=WorkOrderState(loaded.state), history=history)
            self.orders[wo.id] = self.by_command[wo.command_id] = wo
            self.by_command[cancel_command_id(wo.id)] = wo
            if wo.active:
                self.live[wo.id] = wo
            number = wo.id.rsplit("-", 1)[-1]
            if wo.id.startswith(f"{self.prefix}-") and number.isdigit():
                self._next_id = max(self._next_id, int(number) + 1)


def schedule_spec(wo: WorkOrder) -> CommandSpec:
    """The schedule_maintenance command of a work order."""
    return CommandSpec(
        id=wo.command_id,
        type="schedule_maintenance",
        robot=wo.robot,
        work_order=wo.id,
        expires_ts=wo.expires_ts,
        component=wo.component,
        start_ts=wo.start_ts,
        duration_s=wo.duration_s,
    )
