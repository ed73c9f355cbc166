"""The maintenance engine: the one object the live service and the offline experiment call.

It takes readings, states and events in simulated time, keeps health, alarms and prognoses up to
date (:mod:`engine.fleet`), and on :meth:`MaintenanceEngine.plan` turns the policy's demands
into work orders placed by the scheduler, with the commands to send (:mod:`engine.planner`).
Robot events (acks, maintenance started/finished, failures, repairs) move the work orders through
their lifecycle (:mod:`engine.order_book`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from engine.alarms import Alarm
from engine.commands import Decision
from engine.config import EngineConfig
from engine.fleet import Fleet
from engine.health import RobotHealth, robot_health
from engine.order_book import WorkOrderBook
from engine.planner import Planner
from engine.policies import Policy, make_policy
from engine.prognostics import Prognosis
from engine.reasons import when
from engine.work_orders import WorkOrder, WorkOrderState, transition
from plant import Plant

S = WorkOrderState
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
        scenario: Plant,
        policy: str | Policy = "predictive",
        config: EngineConfig | None = None,
        *,
        work_order_prefix: str = "wo",
    ) -> None:
        self.scenario = scenario
        self.config = config or EngineConfig()
        self.policy = make_policy(policy) if isinstance(policy, str) else policy
        self.fleet = Fleet(scenario, self.config)
        self.book = WorkOrderBook(work_order_prefix, self.config.planning.command_expiry_s)
        self.planner = Planner(self.fleet, self.book, self.policy, self.config.planning)
        self.unknown_commands = 0

    @property
    def policy_name(self) -> str:
        return self.policy.name

    @property
    def stats(self) -> dict[str, int]:
        """Counters worth watching: robot answers that did not fit the lifecycle, demands the
        scheduler could not place, events about commands this engine does not know."""
        return {
            "lifecycle_conflicts": self.book.conflicts,
            "unplaced": self.planner.unplaced,
            "unknown_commands": self.unknown_commands,
        }

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
        wo = self.book.by_command.get(command_id) if command_id else None
        if command_id and wo is None and kind in ("ack", "maintenance_started"):
            self.unknown_commands += 1
        if kind == "failure" and component in track.components:
            self._on_failure(robot, ts, component)
        elif kind == "repair_finished" and component in track.components:
            track.restore(component, ts)
        elif kind == "maintenance_started" and wo is not None:
            self.book.advance(wo, S.IN_PROGRESS, ts, "maintenance started")
        elif kind == "maintenance_finished":
            if wo is not None:
                self.book.advance(wo, S.DONE, ts, "maintenance finished")
            restored = component or (wo.component if wo is not None else None)
            if restored in track.components:
                track.restore(restored, ts)
        elif kind == "ack" and wo is not None and command_id == wo.command_id:
            if self.book.on_ack(wo, ts, status, reason):
                track.restore(wo.component, ts)  # done, and no maintenance_finished came first
            elif wo.state == S.REJECTED and status == "rejected":
                self.planner.on_rejected(wo, ts)

    def on_reboot(self, robot: str, ts: float) -> list[Decision]:
        """``robot`` came back with a new boot id: its accepted and running jobs are gone with
        its memory, so their orders end as interrupted and the next ``plan`` books again what
        the components still need (otherwise an order would stay in progress for ever and
        block new work on its component)."""
        return self.book.interrupt(robot, ts)

    def _on_failure(self, robot: str, ts: float, component: str) -> None:
        part = self.fleet.component(robot, component)
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
        self.planner.on_failure(robot, component, ts)

    # --- planning and people ---------------------------------------------------------------

    def plan(self, now_ts: float) -> list[Decision]:
        """New, re-planned, cancelled and expired work orders as of ``now_ts``, with commands."""
        return self.planner.plan(now_ts)

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
        in the earliest downtime window with capacity (else the least disruptive slot).
        ValueError if the component already has active work or nothing is free."""
        who = requested_by or "operator"
        reason = f"manual request by {who}" + (f" ({note})" if note else "")
        wo = self.planner.request(robot, component, now_ts, start_ts, duration_s, reason)
        wo.requested_by, wo.note = who, note
        return self.book.new_decision(wo)

    def cancel_work_order(self, work_order_id: str, now_ts: float, reason: str) -> Decision:
        """Cancel a planned/dispatched/acknowledged work order (IllegalTransition otherwise)."""
        return self.book.cancel(self.book.get(work_order_id), now_ts, reason)

    def mark_dispatched(self, work_order_id: str, ts: float) -> None:
        """The schedule command of ``work_order_id`` was sent."""
        wo = self.book.get(work_order_id)
        if wo.state == S.PLANNED:
            transition(wo, S.DISPATCHED, ts, "command sent")

    # --- outputs ---------------------------------------------------------------------------

    def health(self, robot: str) -> RobotHealth:
        track = self.fleet.robot(robot)
        return robot_health(track, self.fleet.alarm_book.active(robot), self.fleet.advance)

    def prognosis(self, robot: str, component: str) -> Prognosis | None:
        """The latest RUL estimate of a component (cheap; for scoring runs, which ask for every
        component at every reading: two dict look-ups, the checked path only for an error)."""
        track = self.fleet.robots.get(robot)
        part = track.components.get(component) if track is not None else None
        if part is None:
            part = self.fleet.component(robot, component)  # raises, naming what exists
        return None if part.failed_ts is not None else part.primary.prognosis

    def fits(self, robot: str) -> int:
        """How many RUL fits the engine has run for ``robot``'s components so far: while it is
        unchanged, no component of the robot has a new prognosis (a scoring run asks at every
        reading, and looks the prognoses up only when it has changed)."""
        return self.fleet.robot(robot).fits

    def alarms(self, active_only: bool = True, robot: str | None = None) -> list[Alarm]:
        book = self.fleet.alarm_book
        return book.active(robot) if active_only else book.all(robot)

    def work_orders(self, active_only: bool = False, robot: str | None = None) -> list[WorkOrder]:
        return [
            wo
            for wo in self.book.orders.values()
            if (not active_only or wo.active) and (robot is None or wo.robot == robot)
        ]

    def work_order(self, work_order_id: str) -> WorkOrder:
        """KeyError if there is no such work order."""
        return self.book.get(work_order_id)

    def restore_work_orders(self, orders: Iterable[WorkOrder]) -> None:
        """Load persisted work orders (e.g. after a service restart); ids continue after them.

        Accepts work orders rebuilt with ``WorkOrder(**asdict(wo))`` (history as dicts is fine).
        """
        self.book.restore(orders)
