"""Maintenance policies: which components need a job, and by when.

A policy looks at the fleet and returns :class:`Demand` values; the engine places them with the
scheduler and runs the work orders. Three policies, compared by the offline experiment:

* **reactive** — no planned work at all; failures are repaired by the robots' unplanned repair.
* **preventive** — a job every ``preventive_interval_h`` operating hours per component (counted
  from the engine's start or the component's last restoration), placed in the *latest* downtime
  window before it falls due.
* **predictive** — the engine's advisory (ISO 13374 block 6): a job when the planning deadline
  (predicted failure, by default the low end of the RUL interval, minus the safety margin) is
  within ``advisory_lead_h``, or at once when a primary signal reaches ``advise_severity`` (zone D),
  or within the lead when it is in the alert zone (C) without a usable trend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from engine.fleet import ComponentTrack, Fleet, RobotTrack
from engine.prognostics import MODELS, Prognosis
from engine.reasons import hours, when
from engine.work_orders import WorkOrder

POLICIES = ("reactive", "preventive", "predictive")


@dataclass(frozen=True, slots=True)
class Demand:
    """A component that needs a job. The job must end by ``deadline_ts`` to go in a downtime
    window, and by ``limit_ts`` (predicted failure or due time) if at all possible.
    ``reference_ts`` is what the plan is built on; re-planning watches it move."""

    robot: str
    component: str
    origin: Literal["predictive", "preventive"]
    deadline_ts: float
    limit_ts: float | None
    reference_ts: float | None
    prefer: Literal["earliest", "latest"]
    why: str
    #: The predicted failure as (low, point, high) calendar times and the interval's coverage.
    band: tuple[float, float, float, float] | None = None


def basis_kind(prognosis: Prognosis) -> str:
    """What a prognosis stands on, in words: an extrapolated "trend", or the design-data
    "wear model" (engine/wear_model.py)."""
    return "trend" if prognosis.model in MODELS else "wear model"


class Policy(Protocol):
    name: str

    def demands(self, fleet: Fleet, now_ts: float) -> list[Demand]: ...

    def still_needed(self, fleet: Fleet, wo: WorkOrder, now_ts: float) -> str | None:
        """None if ``wo`` (of this policy's origin) still holds, else why to cancel it."""
        ...


def _restored_since(component: ComponentTrack, wo: WorkOrder) -> bool:
    return component.installed_ts is not None and component.installed_ts > wo.created_ts


class Reactive:
    name = "reactive"

    def demands(self, fleet: Fleet, now_ts: float) -> list[Demand]:
        return []

    def still_needed(self, fleet: Fleet, wo: WorkOrder, now_ts: float) -> str | None:
        return None


class Preventive:
    name = "preventive"

    def demands(self, fleet: Fleet, now_ts: float) -> list[Demand]:
        interval_s = fleet.scenario.maintenance.preventive_interval_h * 3600.0
        lead_s = fleet.config.planning.preventive_lead_h * 3600.0
        out = []
        for robot in fleet.robots.values():
            for component in robot.components.values():
                if component.failed_ts is not None:
                    continue
                worked_s = robot.op_s - component.installed_op_s
                remaining_s = interval_s - worked_s
                if remaining_s > lead_s:  # calendar time to it is at least the operating time
                    continue
                due = fleet.advance(now_ts, max(remaining_s, 0.0))
                if due - now_ts > lead_s:
                    continue
                why = (
                    f"preventive: {hours(worked_s)} of {hours(interval_s)} operating time since "
                    f"{'restoration' if component.installed_ts is not None else 'tracking began'}"
                    f"; due {when(due)}"
                )
                out.append(
                    Demand(
                        robot.robot.id, component.name, "preventive", due, due, due, "latest", why
                    )
                )
        return out

    def still_needed(self, fleet: Fleet, wo: WorkOrder, now_ts: float) -> str | None:
        component = fleet.component(wo.robot, wo.component)
        if _restored_since(component, wo):
            return f"{wo.component} was restored at {when(component.installed_ts or now_ts)}"
        return None


class Predictive:
    name = "predictive"

    def demands(self, fleet: Fleet, now_ts: float) -> list[Demand]:
        lead_s = fleet.config.planning.advisory_lead_h * 3600.0
        out = []
        for robot in fleet.robots.values():
            for component in robot.components.values():
                demand = self.assess(fleet, robot, component, now_ts, lead_s)
                if demand is not None:
                    out.append(demand)
        return out

    def assess(
        self,
        fleet: Fleet,
        robot: RobotTrack,
        component: ComponentTrack,
        now_ts: float,
        lead_s: float,
    ) -> Demand | None:
        """The advisory for one component, if its RUL or zone warrants work within ``lead_s``."""
        if component.failed_ts is not None:
            return None
        planning = fleet.config.planning
        margin_s = fleet.scenario.maintenance.safety_margin_h * 3600.0
        signal = component.primary
        severity = signal.severity
        urgent = severity >= planning.advise_severity
        prognosis = signal.prognosis
        robot_id = robot.robot.id
        if prognosis is not None:
            basis_op_h = (
                prognosis.rul_low_op_h if planning.plan_on_lower_bound else prognosis.rul_op_h
            )
            # Calendar time is never shorter than operating time: skip the calendar if far off.
            if not urgent and prognosis.as_of_ts + basis_op_h * 3600 - margin_s - now_ts > lead_s:
                return None
            point, low, high = prognosis.to_calendar(fleet.advance)
            basis = low if planning.plan_on_lower_bound else point
            deadline = basis - margin_s
            if deadline - now_ts > lead_s and not urgent:
                return None
            if urgent:
                deadline = min(deadline, now_ts + margin_s)
            why = (
                f"predicted failure {when(point)} (RUL {prognosis.rul_op_h:.0f} operating h, "
                f"{prognosis.coverage * 100:.0f} % interval {prognosis.rul_low_op_h:.0f}–"
                f"{prognosis.rul_high_op_h:.0f} h, {prognosis.model} {basis_kind(prognosis)} "
                f"of {signal.name})"
            )
            if urgent:
                why += f"; {signal.name} at failure level ({signal.zone()})"
            band = (low, point, high, prognosis.coverage)
            return Demand(
                robot_id,
                component.name,
                "predictive",
                deadline,
                basis,
                point,
                "earliest",
                why,
                band,
            )
        if urgent:
            why = (
                f"{signal.name} {signal.level:.3g} {signal.unit} at failure level ({signal.zone()})"
            )
            deadline = now_ts + margin_s
            return Demand(
                robot_id, component.name, "predictive", deadline, deadline, None, "earliest", why
            )
        if severity >= 2:
            why = (
                f"{signal.name} {signal.level:.3g} {signal.unit} in alert zone ({signal.zone()}), "
                "no usable trend yet: plan maintenance"
            )
            deadline = now_ts + lead_s
            return Demand(
                robot_id, component.name, "predictive", deadline, None, None, "earliest", why
            )
        return None

    def still_needed(self, fleet: Fleet, wo: WorkOrder, now_ts: float) -> str | None:
        robot = fleet.robot(wo.robot)
        component = fleet.component(wo.robot, wo.component)
        if _restored_since(component, wo):
            return f"{wo.component} was restored at {when(component.installed_ts or now_ts)}"
        if component.failed_ts is not None:
            return None  # the failure handler cancels it
        if component.primary.severity >= 1:
            # Only a signal back in its healthy zone counts as recovered: a trend that briefly
            # fades (a noisy bin, a refit) must not make the plan flap.
            return None
        lead_s = fleet.config.planning.advisory_lead_h * 3600.0
        loose_s = lead_s * fleet.config.planning.cancel_lead_factor
        if self.assess(fleet, robot, component, now_ts, loose_s) is not None:
            return None
        signal = component.primary
        return (
            f"health recovered: {signal.name} {signal.level:.3g} {signal.unit} is back in zone "
            f"{signal.zone()} (health index {component.health_index():.2f}) and no failure is "
            f"predicted within {hours(loose_s)} plus the safety margin"
        )


def make_policy(name: str) -> Policy:
    policies: dict[str, type[Reactive] | type[Preventive] | type[Predictive]] = {
        "reactive": Reactive,
        "preventive": Preventive,
        "predictive": Predictive,
    }
    try:
        return policies[name]()
    except KeyError:
        raise ValueError(
            f"unknown maintenance policy {name!r}; use one of {', '.join(POLICIES)}"
        ) from None
