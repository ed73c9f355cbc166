"""What the maintenance endpoints serve and the store keeps: alarms, work orders, health.

These are the shapes agreed with the dashboard (``/work/notes/MAINTENANCE_API.md`` has the
minimum; every engine field is here too). A :class:`WorkOrder` carries everything the engine needs
to take the order back after a restart, so the store persists this one model and nothing else.
The conversions from and to the engine's dataclasses live here as well, so routes, store and
maintenance loop agree on one mapping. All times are simulated Unix seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.payloads import TS_MAX, FaultKind, MetricName
from engine import Alarm as EngineAlarm
from engine import ComponentHealth as EngineComponentHealth
from engine import WorkOrder as EngineWorkOrder
from engine import WorkOrderState
from engine.work_orders import Transition as EngineTransition

WorkOrderStatus = Literal[
    "planned",
    "dispatched",
    "acknowledged",
    "in_progress",
    "done",
    "cancelled",
    "expired",
    "rejected",
    "interrupted",
]
WorkOrderSource = Literal["predictive", "preventive", "manual"]
PolicyName = Literal["reactive", "preventive", "predictive"]
Severity = Literal["warning", "critical"]
Zone = Literal["A", "B", "C", "D"]
#: Severity 0–3 of a signal on the one scale the API shows (ISO 10816 names for every signal).
ZONES: tuple[Zone, ...] = ("A", "B", "C", "D")


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Alarm(_Record):
    """An alarm on a robot's signal; active until ``cleared_ts`` is set."""

    id: str
    robot: str
    component: str | None = Field(description="The component the signal shows the wear of.")
    signal: str = Field(description="The metric it is about, e.g. vibration_rms_mm_s.")
    severity: Severity
    limit: str = Field(description="Zone or limit reached (e.g. C, alert, stuck, failure).")
    value: float = Field(description="The smoothed reading when it was raised.")
    message: str
    raised_ts: float
    cleared_ts: float | None = None
    cleared_reason: str | None = None


class Transition(_Record):
    """One step of a work order's lifecycle, with why it happened."""

    ts: float
    status: WorkOrderStatus
    from_status: WorkOrderStatus | None = Field(description="Null for the creation.")
    reason: str


class WorkOrder(_Record):
    """A maintenance job on one component, with its whole lifecycle."""

    id: str
    robot: str
    line: str
    component: str
    status: WorkOrderStatus
    source: WorkOrderSource = Field(description="Who asked for it: a policy or a person.")
    active: bool = Field(description="Planned, dispatched, acknowledged or in progress.")
    start_ts: float
    duration_s: float
    end_ts: float
    expires_ts: float = Field(description="The robot rejects the job if it has not started by.")
    created_ts: float
    updated_ts: float
    reason: str = Field(description="Why the job exists and where it was placed.")
    status_reason: str = Field(description="Why it is in its current status.")
    command_id: str = Field(description="Id of its schedule_maintenance command.")
    placement: str = Field(description="window, fallback, late or requested.")
    lost_production_s: float
    reference_ts: float | None = Field(
        default=None,
        description="What it was planned against: the predicted failure (predictive) or the "
        "due time (preventive).",
    )
    deadline_ts: float | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    requested_by: str | None = None
    note: str | None = None
    history: list[Transition]


class ComponentHealth(_Record):
    name: str
    kind: str
    indicator: str = Field(description="The metric that shows this component's wear.")
    value: float | None = Field(description="Its smoothed value; null before the first reading.")
    unit: str
    health_index: float | None = Field(description="1 = as new, 0 = at the failure level.")
    zone: Zone | None = Field(
        description="A–D: ISO 10816-1 zones for vibration; the same four levels "
        "(normal/watch/alert/danger) for the other signals."
    )
    zone_name: str | None = Field(description="The level's own name (A–D or normal…danger).")
    failed: bool
    rul_h: float | None = Field(
        description="Remaining useful life in operating hours (running time); null without a "
        "rising trend. The calendar time is predicted_failure_ts."
    )
    rul_low_h: float | None
    rul_high_h: float | None
    interval_coverage: float | None = Field(description="Coverage of the low–high interval.")
    predicted_failure_ts: float | None
    predicted_failure_low_ts: float | None
    predicted_failure_high_ts: float | None
    model: str | None = Field(
        description="Model of the estimate: gamma (design-data wear model) or a trend (linear, …)."
    )
    operating_h_since_restore: float
    alarms: list[Alarm]


class RobotHealth(_Record):
    robot: str
    ts: float | None = Field(description="Simulated time of the newest reading it is based on.")
    policy: PolicyName
    kind: str
    line: str
    state: str | None
    operating_h: float = Field(description="Operating hours the engine has followed.")
    components: list[ComponentHealth]
    alarms: list[Alarm] = Field(description="Every active alarm of the robot.")


_NAME = r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class WorkOrderRequest(_Body):
    """A manual job: it goes through the same scheduler and lifecycle as the engine's own."""

    robot: str = Field(min_length=1, max_length=32, pattern=_NAME)
    component: str = Field(min_length=1, max_length=32, pattern=_NAME)
    start_ts: float | None = Field(
        default=None, ge=0.0, le=TS_MAX, description="Exact start; null = earliest feasible slot."
    )
    duration_s: float | None = Field(
        default=None,
        gt=0.0,
        le=7 * 86400.0,
        description="Null = the component's planned repair time from the scenario.",
    )
    note: str | None = Field(default=None, max_length=200)


class CancelRequest(_Body):
    """Why a work order is cancelled (optional); kept in its history."""

    reason: str | None = Field(default=None, max_length=200)


class FaultRequest(_Body):
    """A fault to inject (workshops); sent to the robot as an ``inject_fault`` command."""

    fault: FaultKind
    component: str | None = Field(default=None, min_length=1, max_length=32, pattern=_NAME)
    sensor: MetricName | None = None
    magnitude: float = Field(default=1.0, gt=0.0, le=1000.0)
    duration_s: float | None = Field(
        default=None, gt=0.0, le=365 * 86400.0, description="Null = until the robot is serviced."
    )


class FaultAccepted(_Record):
    command_id: str
    robot: str
    fault: str
    topic: str = Field(description="The cmd topic it was published on (QoS 1).")
    expires_ts: float = Field(description="A robot that receives it later rejects it.")


def alarm_record(alarm: EngineAlarm, alarm_id: str) -> Alarm:
    return Alarm(
        id=alarm_id,
        robot=alarm.robot,
        component=alarm.component,
        signal=alarm.signal,
        severity=alarm.severity,
        limit=alarm.limit,
        value=alarm.value,
        message=alarm.message,
        raised_ts=alarm.raised_ts,
        cleared_ts=alarm.cleared_ts,
        cleared_reason=alarm.cleared_reason,
    )


def work_order_record(wo: EngineWorkOrder) -> WorkOrder:
    history = [
        Transition(
            ts=t.ts,
            status=t.to_state,
            from_status=t.from_state or None,
            reason=t.reason,
        )
        for t in wo.history
    ]
    return WorkOrder(
        id=wo.id,
        robot=wo.robot,
        line=wo.line,
        component=wo.component,
        status=wo.state.value,
        source=wo.origin,
        active=wo.active,
        start_ts=wo.start_ts,
        duration_s=wo.duration_s,
        end_ts=wo.end_ts,
        expires_ts=wo.expires_ts,
        created_ts=wo.created_ts,
        updated_ts=wo.updated_ts,
        reason=wo.reason,
        status_reason=wo.history[-1].reason if wo.history else wo.reason,
        command_id=wo.command_id,
        placement=wo.placement,
        lost_production_s=wo.lost_production_s,
        reference_ts=wo.reference_ts,
        deadline_ts=wo.deadline_ts,
        replaces=wo.replaces,
        replaced_by=wo.replaced_by,
        requested_by=wo.requested_by,
        note=wo.note,
        history=history,
    )


def engine_work_order(record: WorkOrder) -> EngineWorkOrder:
    """The engine's work order back from its record (for ``restore_work_orders``)."""
    return EngineWorkOrder(
        id=record.id,
        robot=record.robot,
        line=record.line,
        component=record.component,
        origin=record.source,
        state=WorkOrderState(record.status),
        start_ts=record.start_ts,
        duration_s=record.duration_s,
        expires_ts=record.expires_ts,
        command_id=record.command_id,
        created_ts=record.created_ts,
        reason=record.reason,
        placement=record.placement,
        lost_production_s=record.lost_production_s,
        reference_ts=record.reference_ts,
        deadline_ts=record.deadline_ts,
        replaces=record.replaces,
        replaced_by=record.replaced_by,
        requested_by=record.requested_by,
        note=record.note,
        updated_ts=record.updated_ts,
        history=[
            EngineTransition(t.ts, t.from_status or "", t.status, t.reason) for t in record.history
        ],
    )


def component_health_record(
    part: EngineComponentHealth, alarm: Callable[[EngineAlarm], Alarm]
) -> ComponentHealth:
    seen = part.indicator is not None
    return ComponentHealth(
        name=part.component,
        kind=part.kind,
        indicator=part.signal,
        value=part.indicator,
        unit=part.unit,
        health_index=part.health_index if seen or part.failed else None,
        zone=ZONES[part.severity] if seen else None,
        zone_name=part.zone if seen else None,
        failed=part.failed,
        rul_h=part.rul_op_h,
        rul_low_h=part.rul_low_op_h,
        rul_high_h=part.rul_high_op_h,
        interval_coverage=part.interval_coverage,
        predicted_failure_ts=part.predicted_failure_ts,
        predicted_failure_low_ts=part.predicted_failure_low_ts,
        predicted_failure_high_ts=part.predicted_failure_high_ts,
        model=part.model,
        operating_h_since_restore=part.operating_h_since_restore,
        alarms=[alarm(a) for a in part.alarms],
    )
