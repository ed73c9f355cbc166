"""The maintenance engine: the one object the live service and the offline experiment call.

It takes readings, states and events in simulated time, keeps health, alarms and prognoses up to
date, and on :meth:`MaintenanceEngine.plan` turns the policy's demands into work orders placed by
the scheduler, with the commands to send. Robot events (acks, maintenance started/finished,
failures, repairs) move the work orders through their lifecycle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from api.engine.alarms import Alarm
from api.engine.commands import CommandSpec, Decision, cancel_command_id, schedule_command_id
from api.engine.config import EngineConfig
from api.engine.fleet import Fleet
from api.engine.health import RobotHealth, robot_health
from api.engine.policies import Demand, Policy, make_policy
from api.engine.prognostics import Prognosis
from api.engine.reasons import when
from api.engine.scheduler import SAME_SLOT_S, Booking, Placement, Scheduler, SlotRequest
from api.engine.work_orders import (
    MOVABLE,
    IllegalTransition,
    Transition,
    WorkOrder,
    WorkOrderState,
    advance,
    transition,
)
from simulator.scenario import Scenario

S = WorkOrderState
_PATH = (S.PLANNED, S.DISPATCHED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.DONE)
_CLOSED = frozenset({S.CANCELLED, S.EXPIRED, S.REJECTED})
EVENT_KINDS = frozenset(
    {
        "failure",
        "repair_started",
        "repair_finished",
        "maintenance_started",
        "maintenance_finished",
        "ack",
        "parts",
        "fault_started",
        "fault_cleared",
    }
)


class MaintenanceEngine:
    """Health, alarms, RUL, advisories and work orders for every robot of a scenario.

    ``policy`` is "reactive", "preventive" or "predictive" (or a policy object);
    ``work_order_prefix`` makes ids unique across engine instances (e.g. per service boot).
    """

    def __init__(
        self,
        scenario: Scenario,
        policy: str | Policy = "predictive",
        config: EngineConfig | None = None,
        *,
        work_order_prefix: str = "wo",
    ) -> None:
        self.scenario = scenario
        self.config = config or EngineConfig()
        self.policy = make_policy(policy) if isinstance(policy, str) else policy
        self.fleet = Fleet(scenario, self.config)
        self.scheduler = Scheduler.for_scenario(scenario, self.config.planning)
        self._prefix = work_order_prefix
        self._next_id = 1
        self._orders: dict[str, WorkOrder] = {}
        #: The orders that were active when last looked at (a small subset of all orders).
        self._live: dict[str, WorkOrder] = {}
        self._by_command: dict[str, WorkOrder] = {}
        self._pending: list[Decision] = []
        self._rejected_ts: dict[tuple[str, str], float] = {}
        self.stats = {"lifecycle_conflicts": 0, "unplaced": 0, "unknown_commands": 0}

    @property
    def policy_name(self) -> str:
        return self.policy.name

    # --- inputs ----------------------------------------------------------------------------

    def on_reading(self, robot: str, ts: float, values: Mapping[str, float]) -> None:
        """One telemetry sample (any subset of the four metrics)."""
        self.fleet.robot(robot).on_reading(ts, values)

    def on_state(self, robot: str, ts: float, state: str) -> None:
        """RUNNING / IDLE / MAINTENANCE / BROKEN / OFFLINE."""
        self.fleet.robot(robot).on_state(ts, state)

    def on_event(
        self,
        robot: str,
        ts: float,
        kind: str,
        component: str | None = None,
        command_id: str | None = None,
        status: str | None = None,
        reason: str | None = None,
    ) -> None:
        """A robot event: failure, repair_started/finished, maintenance_started/finished, ack
        (``status`` accepted/rejected/done for ``command_id``); parts and faults are ignored."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r}; expected one of {sorted(EVENT_KINDS)}")
        track = self.fleet.robot(robot)
        wo = self._by_command.get(command_id) if command_id else None
        if command_id and wo is None and kind in ("ack", "maintenance_started"):
            self.stats["unknown_commands"] += 1
        if kind == "failure" and component in track.components:
            self._on_failure(robot, ts, component)
        elif kind == "repair_finished" and component in track.components:
            track.restore(component, ts)
        elif kind == "maintenance_started" and wo is not None:
            self._advance(wo, S.IN_PROGRESS, ts, "maintenance started")
        elif kind == "maintenance_finished":
            if wo is not None:
                self._advance(wo, S.DONE, ts, "maintenance finished")
            if component in track.components:
                track.restore(component, ts)
        elif kind == "ack" and wo is not None and command_id == wo.command_id:
            self._on_ack(wo, ts, status, reason)

    def _on_ack(self, wo: WorkOrder, ts: float, status: str | None, reason: str | None) -> None:
        if status == "accepted":
            self._advance(wo, S.ACKNOWLEDGED, ts, "accepted by the robot")
        elif status == "rejected":
            if self._advance(wo, S.REJECTED, ts, f"rejected by the robot: {reason or 'no reason'}"):
                self._rejected_ts[(wo.robot, wo.component)] = ts
        elif (
            status == "done"
            and wo.state != S.DONE
            and self._advance(wo, S.DONE, ts, "robot reports the job done")
        ):
            self.fleet.robot(wo.robot).restore(wo.component, ts)

    def _on_failure(self, robot: str, ts: float, component: str) -> None:
        track = self.fleet.robot(robot)
        part = track.components[component]
        part.failed_ts = ts
        self.fleet.alarm_book.raise_alarm(
            (robot, part.primary.name, "failure"),
            component=component,
            severity="critical",
            limit="failure",
            value=part.primary.level,
            message=f"{component} failed at {when(ts)}: the robot is broken until it is repaired",
            ts=ts,
        )
        for wo in self._active(robot, component):
            if wo.state in MOVABLE:
                why = f"{component} failed at {when(ts)}; the unplanned repair replaces this job"
                self._pending.append(self._cancel(wo, ts, why))

    def _advance(self, wo: WorkOrder, to: WorkOrderState, ts: float, why: str) -> bool:
        if wo.state in _PATH and to in _PATH and _PATH.index(to) < _PATH.index(wo.state):
            return False  # a message that arrived after a later one (ack after "started")
        if wo.state in _CLOSED and to in _CLOSED:
            return False  # already closed: the robot's "rejected" for a job we cancelled
        try:
            return advance(wo, to, ts, why)
        except IllegalTransition:
            # Events are facts about the robot; a late or crossed message must not stop ingest.
            self.stats["lifecycle_conflicts"] += 1
            return False

    # --- planning --------------------------------------------------------------------------

    def plan(self, now_ts: float) -> list[Decision]:
        """New, re-planned, cancelled and expired work orders as of ``now_ts``, with commands."""
        self._live = {k: wo for k, wo in self._live.items() if wo.active}
        decisions = self._expire(now_ts)
        decisions += self._pending
        self._pending = []
        demands = sorted(self.policy.demands(self.fleet, now_ts), key=lambda d: d.deadline_ts)
        wanted = set()
        planning = self.config.planning
        for demand in demands:
            key = (demand.robot, demand.component)
            wanted.add(key)
            active = self._active(*key)
            if not active:
                rejected = self._rejected_ts.get(key)
                if rejected is not None and now_ts - rejected < planning.retry_after_reject_s:
                    continue
                decision = self._place_new(demand, now_ts)
                if decision is not None:
                    decisions.append(decision)
                continue
            wo = active[-1]
            if wo.origin == demand.origin and self._movable(wo, now_ts):
                decision = self._maybe_replan(wo, demand, now_ts)
                if decision is not None:
                    decisions.append(decision)
        for wo in list(self._live.values()):
            if wo.origin != self.policy.name or (wo.robot, wo.component) in wanted:
                continue
            if not self._movable(wo, now_ts):
                continue
            why = self.policy.still_needed(self.fleet, wo, now_ts)
            if why is not None:
                decisions.append(self._cancel(wo, now_ts, why))
        return decisions

    def _movable(self, wo: WorkOrder, now_ts: float) -> bool:
        freeze = self.config.planning.freeze_before_start_s
        return wo.state in MOVABLE and wo.start_ts - now_ts > freeze

    def _expire(self, now_ts: float) -> list[Decision]:
        out = []
        for wo in self._live.values():
            if wo.state in MOVABLE and now_ts > wo.expires_ts:
                transition(wo, S.EXPIRED, now_ts, f"not started by {when(wo.expires_ts)}")
                out.append(
                    Decision(
                        "expired", wo.id, wo.robot, wo.component, now_ts, wo.history[-1].reason
                    )
                )
        return out

    def _bookings(self, exclude: str | None = None) -> list[Booking]:
        out = [
            Booking(wo.robot, wo.line, wo.start_ts, wo.end_ts, wo.id)
            for wo in self._live.values()
            if wo.active and wo.id != exclude
        ]
        response_s = self.scenario.maintenance.technician_response_h * 3600.0
        for robot in self.fleet.robots.values():
            for part in robot.components.values():
                if part.failed_ts is not None:
                    end = part.failed_ts + response_s + part.spec.unplanned_repair_h * 3600.0
                    out.append(
                        Booking(
                            robot.robot.id,
                            robot.robot.line,
                            part.failed_ts,
                            end,
                            f"repair of {part.name}",
                            stops_robot=False,
                        )
                    )
        return out

    def _request(self, demand: Demand, now_ts: float) -> SlotRequest:
        track = self.fleet.robot(demand.robot)
        part = self.fleet.component(demand.robot, demand.component)
        return SlotRequest(
            demand.robot,
            track.robot.line,
            part.spec.planned_repair_h * 3600.0,
            now_ts,
            demand.deadline_ts,
            demand.limit_ts,
            demand.prefer,
        )

    def _place_new(self, demand: Demand, now_ts: float) -> Decision | None:
        placement = self.scheduler.place(self._request(demand, now_ts), self._bookings())
        if placement is None:
            self.stats["unplaced"] += 1
            return None
        wo = self._create(
            demand.robot,
            demand.component,
            demand.origin,
            placement,
            now_ts,
            f"{demand.why}; {placement.reason}",
            demand,
        )
        return Decision(
            "new", wo.id, wo.robot, wo.component, now_ts, wo.reason, (self._schedule_cmd(wo),)
        )

    def _maybe_replan(self, wo: WorkOrder, demand: Demand, now_ts: float) -> Decision | None:
        if wo.reference_ts is None or demand.reference_ts is None:
            return None
        planning = self.config.planning
        moved = abs(demand.reference_ts - wo.reference_ts)
        threshold = max(
            planning.replan_threshold_h * 3600.0,
            planning.replan_threshold_fraction * max(demand.reference_ts - now_ts, 0.0),
        )
        if moved < threshold:
            return None
        placement = self.scheduler.place(self._request(demand, now_ts), self._bookings(wo.id))
        if placement is None or abs(placement.start_ts - wo.start_ts) < SAME_SLOT_S:
            wo.reference_ts, wo.deadline_ts = demand.reference_ts, demand.deadline_ts
            return None
        reason = (
            f"re-planned: {demand.why} (was {when(wo.reference_ts)}, moved "
            f"{moved / 3600.0:.0f} h); {placement.reason}"
        )
        new = self._create(wo.robot, wo.component, wo.origin, placement, now_ts, reason, demand)
        new.replaces, wo.replaced_by = wo.id, new.id
        cancel = self._cancel(wo, now_ts, f"re-planned as {new.id}")
        return Decision(
            "replanned",
            new.id,
            new.robot,
            new.component,
            now_ts,
            reason,
            (*cancel.commands, self._schedule_cmd(new)),
            cancelled=wo.id,
        )

    def _create(
        self,
        robot: str,
        component: str,
        origin: str,
        placement: Placement,
        now_ts: float,
        reason: str,
        demand: Demand | None = None,
    ) -> WorkOrder:
        wo_id = f"{self._prefix}-{self._next_id:06d}"
        self._next_id += 1
        wo = WorkOrder(
            id=wo_id,
            robot=robot,
            line=self.fleet.robot(robot).robot.line,
            component=component,
            origin=origin,
            state=S.PLANNED,
            start_ts=placement.start_ts,
            duration_s=placement.end_ts - placement.start_ts,
            expires_ts=placement.start_ts + self.config.planning.command_expiry_s,
            command_id=schedule_command_id(wo_id),
            created_ts=now_ts,
            reason=reason,
            placement=placement.mode,
            lost_production_s=placement.lost_production_s,
            reference_ts=demand.reference_ts if demand else None,
            deadline_ts=demand.deadline_ts if demand else None,
            updated_ts=now_ts,
            history=[Transition(now_ts, "", S.PLANNED.value, reason)],
        )
        self._orders[wo.id] = wo
        self._live[wo.id] = wo
        self._by_command[wo.command_id] = wo
        return wo

    def _schedule_cmd(self, wo: WorkOrder) -> CommandSpec:
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

    def _cancel(self, wo: WorkOrder, now_ts: float, why: str) -> Decision:
        transition(wo, S.CANCELLED, now_ts, why)
        self._by_command[cancel_command_id(wo.id)] = wo
        command = CommandSpec(
            id=cancel_command_id(wo.id),
            type="cancel_maintenance",
            robot=wo.robot,
            work_order=wo.id,
            expires_ts=max(now_ts, wo.expires_ts),
            target=wo.command_id,
        )
        return Decision("cancelled", wo.id, wo.robot, wo.component, now_ts, why, (command,))

    def _active(self, robot: str, component: str) -> list[WorkOrder]:
        return [
            wo
            for wo in self._live.values()
            if wo.active and wo.robot == robot and wo.component == component
        ]

    # --- people ----------------------------------------------------------------------------

    def request_work_order(
        self,
        robot: str,
        component: str,
        now_ts: float,
        start_ts: float | None = None,
        *,
        duration_s: float | None = None,
        requested_by: str | None = None,
        note: str | None = None,
    ) -> Decision:
        """A manual job: at ``start_ts`` exactly (or :class:`SlotUnavailable`), or, with None,
        in the earliest downtime window with capacity (else the least disruptive slot)."""
        part = self.fleet.component(robot, component)
        for wo in self._active(robot, component):
            raise ValueError(
                f"{wo.id} already plans work on {robot} {component} at {when(wo.start_ts)}; "
                "cancel it first or leave it"
            )
        request = SlotRequest(
            robot,
            self.fleet.robot(robot).robot.line,
            duration_s if duration_s is not None else part.spec.planned_repair_h * 3600.0,
            now_ts,
        )
        if start_ts is None:
            placement = self.scheduler.place(request, self._bookings())
            if placement is None:
                horizon_h = self.config.planning.search_horizon_h
                raise ValueError(
                    f"no free slot for {robot} in the next {horizon_h:g} h; "
                    "cancel other work or give a start time"
                )
        else:
            placement = self.scheduler.place_at(request, start_ts, self._bookings())
        who = requested_by or "operator"
        reason = f"manual request by {who}" + (f" ({note})" if note else "")
        wo = self._create(
            robot, component, "manual", placement, now_ts, f"{reason}; {placement.reason}"
        )
        wo.requested_by, wo.note = who, note
        return Decision(
            "new", wo.id, wo.robot, wo.component, now_ts, wo.reason, (self._schedule_cmd(wo),)
        )

    def cancel_work_order(self, work_order_id: str, now_ts: float, reason: str) -> Decision:
        """Cancel a planned/dispatched/acknowledged work order (IllegalTransition otherwise)."""
        return self._cancel(self.work_order(work_order_id), now_ts, reason)

    def mark_dispatched(self, work_order_id: str, ts: float) -> None:
        """The schedule command of ``work_order_id`` was sent."""
        wo = self.work_order(work_order_id)
        if wo.state == S.PLANNED:
            transition(wo, S.DISPATCHED, ts, "command sent")

    # --- outputs ---------------------------------------------------------------------------

    def health(self, robot: str) -> RobotHealth:
        track = self.fleet.robot(robot)
        return robot_health(track, self.fleet.alarm_book.active(robot), self.fleet.advance)

    def prognosis(self, robot: str, component: str) -> Prognosis | None:
        """The latest RUL estimate of a component (cheap; for scoring runs)."""
        part = self.fleet.component(robot, component)
        return None if part.failed_ts is not None else part.primary.prognosis

    def alarms(self, active_only: bool = True, robot: str | None = None) -> list[Alarm]:
        book = self.fleet.alarm_book
        return book.active(robot) if active_only else book.all(robot)

    def work_orders(self, active_only: bool = False, robot: str | None = None) -> list[WorkOrder]:
        return [
            wo
            for wo in self._orders.values()
            if (not active_only or wo.active) and (robot is None or wo.robot == robot)
        ]

    def work_order(self, work_order_id: str) -> WorkOrder:
        try:
            return self._orders[work_order_id]
        except KeyError:
            raise KeyError(f"no work order {work_order_id!r}") from None

    def restore_work_orders(self, orders: Iterable[WorkOrder]) -> None:
        """Load persisted work orders (e.g. after a service restart); ids continue after them.

        Accepts work orders rebuilt with ``WorkOrder(**asdict(wo))`` (history as dicts is fine).
        """
        for loaded in orders:
            raw: list[Any] = list(loaded.history)  # asdict() turned them into dicts
            history = [Transition(**h) if isinstance(h, dict) else h for h in raw]
            wo = replace(loaded, state=WorkOrderState(loaded.state), history=history)
            self._orders[wo.id] = wo
            if wo.active:
                self._live[wo.id] = wo
            self._by_command[wo.command_id] = wo
            number = wo.id.rsplit("-", 1)[-1]
            if wo.id.startswith(f"{self._prefix}-") and number.isdigit():
                self._next_id = max(self._next_id, int(number) + 1)
