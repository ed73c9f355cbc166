"""The planner: turns a policy's demands into work orders, re-plans and cancels them.

On every :meth:`Planner.plan` it expires orders whose command was not started in time, passes on
cancellations caused by failures, asks the policy for demands (most urgent first), books a new
order for each demand without one, re-places an order when its prediction has moved materially,
and cancels the policy's orders that no longer hold. Manual requests go through the same
scheduler and book.
"""

from __future__ import annotations

from engine.commands import Decision
from engine.config import PlanningConfig
from engine.fleet import Fleet
from engine.order_book import WorkOrderBook, schedule_spec
from engine.policies import Demand, Policy
from engine.reasons import when
from engine.risk import FailureRisk
from engine.scheduler import SAME_SLOT_S, Booking, Scheduler, SlotRequest
from engine.work_orders import MOVABLE, WorkOrder


class Planner:
    def __init__(
        self, fleet: Fleet, book: WorkOrderBook, policy: Policy, planning: PlanningConfig
    ) -> None:
        self.fleet = fleet
        self.book = book
        self.policy = policy
        self.planning = planning
        self.scheduler = Scheduler.for_scenario(fleet.scenario, planning)
        self.pending: list[Decision] = []
        self.rejected_ts: dict[tuple[str, str], float] = {}
        self.unplaced = 0

    # --- events ----------------------------------------------------------------------------

    def on_failure(self, robot: str, component: str, ts: float) -> None:
        """Planned work on a failed component is moot: cancel it at the next plan."""
        for wo in self.book.active(robot, component):
            if wo.state in MOVABLE:
                why = f"{component} failed at {when(ts)}; the unplanned repair replaces this job"
                self.pending.append(self.book.cancel(wo, ts, why))

    def on_rejected(self, wo: WorkOrder, ts: float) -> None:
        self.rejected_ts[(wo.robot, wo.component)] = ts

    # --- planning --------------------------------------------------------------------------

    def plan(self, now_ts: float) -> list[Decision]:
        decisions = self.book.expire(now_ts)
        decisions += self.pending
        self.pending = []
        demands = sorted(self.policy.demands(self.fleet, now_ts), key=lambda d: d.deadline_ts)
        wanted = set()
        for demand in demands:
            key = (demand.robot, demand.component)
            wanted.add(key)
            active = self.book.active(*key)
            if not active:
                rejected = self.rejected_ts.get(key)
                if rejected is not None and now_ts - rejected < self.planning.retry_after_reject_s:
                    continue
                decision = self._place_new(demand, now_ts)
            elif active[-1].origin == demand.origin and self.movable(active[-1], now_ts):
                decision = self._maybe_replan(active[-1], demand, now_ts)
            else:
                decision = None
            if decision is not None:
                decisions.append(decision)
        for wo in self.book.all_active():
            if wo.origin != self.policy.name or (wo.robot, wo.component) in wanted:
                continue
            if self.movable(wo, now_ts):
                why = self.policy.still_needed(self.fleet, wo, now_ts)
                if why is not None:
                    decisions.append(self.book.cancel(wo, now_ts, why))
        return decisions

    def movable(self, wo: WorkOrder, now_ts: float) -> bool:
        """Whether the planner may still move or cancel ``wo``."""
        return wo.state in MOVABLE and wo.start_ts - now_ts > self.planning.freeze_before_start_s

    def bookings(self, exclude: str | None = None) -> list[Booking]:
        """Active orders, plus unplanned repairs under way (they hold a technician)."""
        out = self.book.bookings(exclude)
        response_s = self.fleet.scenario.maintenance.technician_response_h * 3600.0
        for robot in self.fleet.robots.values():
            for part in robot.components.values():
                if part.failed_ts is not None:
                    end = part.failed_ts + response_s + part.spec.unplanned_repair_h * 3600.0
                    label = f"repair of {part.name}"
                    out.append(
                        Booking(robot.robot.id, robot.robot.line, part.failed_ts, end, label, False)
                    )
        return out

    def _request(self, demand: Demand, now_ts: float) -> SlotRequest:
        part = self.fleet.component(demand.robot, demand.component)
        risk = None
        if demand.band is not None and self.planning.wait_if_cheaper:
            low, point, high, coverage = demand.band
            response_h = self.fleet.scenario.maintenance.technician_response_h
            loss_s = (response_h + part.spec.unplanned_repair_h) * 3600.0
            risk = FailureRisk(now_ts, low, point, high, coverage, loss_s)
        return SlotRequest(
            demand.robot,
            self.fleet.robot(demand.robot).robot.line,
            part.spec.planned_repair_h * 3600.0,
            now_ts,
            demand.deadline_ts,
            demand.limit_ts,
            demand.prefer,
            "the due time" if demand.origin == "preventive" else "the predicted failure",
            risk,
        )

    def _place_new(self, demand: Demand, now_ts: float) -> Decision | None:
        placement = self.scheduler.place(self._request(demand, now_ts), self.bookings())
        if placement is None:
            self.unplaced += 1
            return None
        wo = self.book.create(
            demand.robot,
            self.fleet.robot(demand.robot).robot.line,
            demand.component,
            demand.origin,
            placement,
            now_ts,
            f"{demand.why}; {placement.reason}",
            demand.reference_ts,
            demand.deadline_ts,
        )
        return self.book.new_decision(wo)

    def _maybe_replan(self, wo: WorkOrder, demand: Demand, now_ts: float) -> Decision | None:
        if wo.reference_ts is None or demand.reference_ts is None:
            return None
        moved = abs(demand.reference_ts - wo.reference_ts)
        threshold = max(
            self.planning.replan_threshold_h * 3600.0,
            self.planning.replan_threshold_fraction * max(demand.reference_ts - now_ts, 0.0),
        )
        if moved < threshold:
            return None
        placement = self.scheduler.place(self._request(demand, now_ts), self.bookings(wo.id))
        if placement is None or abs(placement.start_ts - wo.start_ts) < SAME_SLOT_S:
            # Same slot: keep the order, remember the prediction it now stands on.
            wo.reference_ts, wo.deadline_ts = demand.reference_ts, demand.deadline_ts
            if demand.deadline_ts < wo.created_ts and "overdue" not in wo.reason:
                # A deadline before the order was made is never left unexplained.
                wo.reason += (
                    f"; overdue: re-estimated at {when(now_ts)}, its deadline "
                    f"{when(demand.deadline_ts)} is now before the order was created"
                )
            return None
        reason = (
            f"re-planned: {demand.why} (was {when(wo.reference_ts)}, moved "
            f"{moved / 3600.0:.0f} h); {placement.reason}"
        )
        new = self.book.create(
            wo.robot,
            wo.line,
            wo.component,
            wo.origin,
            placement,
            now_ts,
            reason,
            demand.reference_ts,
            demand.deadline_ts,
        )
        new.replaces, wo.replaced_by = wo.id, new.id
        cancel = self.book.cancel(wo, now_ts, f"re-planned as {new.id}")
        commands = (*cancel.commands, schedule_spec(new))
        return Decision(
            "replanned", new.id, new.robot, new.component, now_ts, reason, commands, wo.id
        )

    # --- people ----------------------------------------------------------------------------

    def request(
        self,
        robot: str,
        component: str,
        now_ts: float,
        start_ts: float | None,
        duration_s: float | None,
        reason: str,
    ) -> WorkOrder:
        """Book a manual job (see :meth:`MaintenanceEngine.request_work_order`)."""
        part = self.fleet.component(robot, component)
        for wo in self.book.active(robot, component):
            raise ValueError(
                f"{wo.id} already plans work on {robot} {component} at {when(wo.start_ts)}; "
                "cancel it first or leave it"
            )
        line = self.fleet.robot(robot).robot.line
        duration = duration_s if duration_s is not None else part.spec.planned_repair_h * 3600.0
        request = SlotRequest(robot, line, duration, now_ts)
        if start_ts is not None:
            placement = self.scheduler.place_at(request, start_ts, self.bookings())
        else:
            found = self.scheduler.place(request, self.bookings())
            if found is None:
                raise ValueError(
                    f"no free slot for {robot} in the next {self.planning.search_horizon_h:g} h; "
                    "cancel other work or give a start time"
                )
            placement = found
        text = f"{reason}; {placement.reason}"
        return self.book.create(robot, line, component, "manual", placement, now_ts, text)
