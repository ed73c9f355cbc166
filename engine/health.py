"""Health assessment (ISO 13374 block 4): what the engine reports about a robot and its parts.

A component's health index runs from 1 (its primary signal at the healthy baseline) to 0 (at the
failure level, or failed); it is linear in the smoothed indicator in between. The report also
carries the zone, the RUL estimate with its interval (operating hours) and the predicted failure
time on the calendar, and the active alarms. All plain dataclasses: ``dataclasses.asdict`` gives
JSON-ready dicts for the service.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.alarms import Alarm
from engine.fleet import ComponentTrack, RobotTrack
from engine.signals import SignalTrack


@dataclass(frozen=True, slots=True)
class SignalHealth:
    signal: str
    unit: str
    value: float | None
    zone: str
    severity: int
    baseline: float
    baseline_source: str
    failure_level: float
    limits: str
    stuck: bool


@dataclass(frozen=True, slots=True)
class ComponentHealth:
    component: str
    kind: str
    health_index: float
    signal: str
    indicator: float | None
    unit: str
    zone: str
    severity: int
    failed: bool
    operating_h_since_restore: float
    rul_op_h: float | None = None
    rul_low_op_h: float | None = None
    rul_high_op_h: float | None = None
    interval_coverage: float | None = None
    predicted_failure_ts: float | None = None
    predicted_failure_low_ts: float | None = None
    predicted_failure_high_ts: float | None = None
    model: str | None = None
    prognosis_ts: float | None = None
    alarms: list[Alarm] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RobotHealth:
    robot: str
    kind: str
    line: str
    state: str | None
    last_reading_ts: float | None
    operating_h: float
    components: list[ComponentHealth]
    signals: list[SignalHealth]
    alarms: list[Alarm]


def signal_health(signal: SignalTrack) -> SignalHealth:
    return SignalHealth(
        signal=signal.name,
        unit=signal.unit,
        value=signal.level if signal.count else None,
        zone=signal.zone(),
        severity=signal.severity,
        baseline=signal.baseline,
        baseline_source=signal.baseline_source,
        failure_level=signal.limits.failure,
        limits=signal.limits.description,
        stuck=signal.stuck,
    )


def component_health(
    track: ComponentTrack,
    robot: RobotTrack,
    alarms: list[Alarm],
    advance: Callable[[float, float], float],
) -> ComponentHealth:
    signal = track.primary
    prognosis = signal.prognosis if track.failed_ts is None else None
    point, low, high = prognosis.to_calendar(advance) if prognosis else (None, None, None)
    return ComponentHealth(
        component=track.name,
        kind=track.spec.kind,
        health_index=track.health_index(),
        signal=signal.name,
        indicator=signal.level if signal.count else None,
        unit=signal.unit,
        zone=signal.zone(),
        severity=signal.severity,
        failed=track.failed_ts is not None,
        operating_h_since_restore=(robot.op_s - track.installed_op_s) / 3600.0,
        rul_op_h=prognosis.rul_op_h if prognosis else None,
        rul_low_op_h=prognosis.rul_low_op_h if prognosis else None,
        rul_high_op_h=prognosis.rul_high_op_h if prognosis else None,
        interval_coverage=prognosis.coverage if prognosis else None,
        predicted_failure_ts=point,
        predicted_failure_low_ts=low,
        predicted_failure_high_ts=high,
        model=prognosis.model if prognosis else None,
        prognosis_ts=prognosis.as_of_ts if prognosis else None,
        alarms=[a for a in alarms if a.component == track.name],
    )


def robot_health(
    robot: RobotTrack, alarms: list[Alarm], advance: Callable[[float, float], float]
) -> RobotHealth:
    return RobotHealth(
        robot=robot.robot.id,
        kind=robot.robot.kind_name,
        line=robot.robot.line,
        state=robot.state,
        last_reading_ts=robot.last_ts,
        operating_h=robot.op_s / 3600.0,
        components=[component_health(c, robot, alarms, advance) for c in robot.components.values()],
        signals=[signal_health(s) for s in robot.signals.values()],
        alarms=alarms,
    )
