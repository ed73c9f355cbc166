"""The maintenance engine: condition monitoring, prognostics and maintenance scheduling.

A pure library (no I/O, no clock, no MQTT): the live service and the offline policy experiment
both call exactly this code. It follows the ISO 13374 blocks, one module each:

====================  =====================================================================
data manipulation     :mod:`~engine.smoothing` — median-of-3 despiking, EWMA, stuck sensors
state detection       :mod:`~engine.zones` — ISO 10816-1 zones, limit levels (severity 0–3)
health assessment     :mod:`~engine.health` — health index 0–1 per component
prognostics           :mod:`~engine.wear_model` — RUL with an interval from the design data;
                      :mod:`~engine.prognostics` — from the trend without them
advisory              :mod:`~engine.policies` — which component needs a job, by when
====================  =====================================================================

plus :mod:`~engine.signals` and :mod:`~engine.fleet` (the per-reading hot path and the
operating clock), :mod:`~engine.alarms`, :mod:`~engine.scheduler` (slots in downtime
windows under technician and line limits), :mod:`~engine.planner` (demands → work orders,
re-planning, cancelling), :mod:`~engine.order_book` and :mod:`~engine.work_orders` (the
orders and their lifecycle state machine), :mod:`~engine.commands` (contract payloads to
send) and :mod:`~engine.scoring` (RUL RMSE, PHM08 score, α-λ accuracy, OEE, MTBF, MTTR).
Settings: :mod:`~engine.config`. The facade is :class:`MaintenanceEngine`
(:mod:`~engine.maintenance`).

Use::

    engine = MaintenanceEngine(scenario, policy="predictive", config=None)
    engine.on_reading(robot, ts, {"vibration_rms_mm_s": 0.8, "temperature_c": 42.0})
    engine.on_state(robot, ts, "RUNNING")
    engine.on_event(robot, ts, "ack", command_id="wo-000001.schedule", status="accepted")
    for decision in engine.plan(now_ts):          # new / replanned / cancelled / expired
        for spec in decision.commands:
            payload = command_payload(spec, ts=now_ts, boot=boot, seq=next_seq())
    engine.health(robot)            # RobotHealth: per component health, zone, RUL, alarms
    engine.alarms(active_only=True)
    engine.work_orders(); engine.work_order("wo-000001")
    engine.request_work_order(robot, component, now_ts, start_ts=None)   # manual job

docs/maintenance.md documents the rules, the RUL method and the metrics.
"""

from engine.alarms import Alarm
from engine.commands import CommandSpec, Decision, command_payload
from engine.config import (
    ComponentSignals,
    EngineConfig,
    KindConfig,
    PlanningConfig,
    SignalRule,
)
from engine.fleet import UnknownRobot
from engine.health import ComponentHealth, RobotHealth, SignalHealth
from engine.maintenance import MaintenanceEngine
from engine.policies import POLICIES
from engine.prognostics import Prognosis
from engine.scheduler import SlotUnavailable
from engine.work_orders import IllegalTransition, WorkOrder, WorkOrderState

__all__ = [
    "POLICIES",
    "Alarm",
    "CommandSpec",
    "ComponentHealth",
    "ComponentSignals",
    "Decision",
    "EngineConfig",
    "IllegalTransition",
    "KindConfig",
    "MaintenanceEngine",
    "PlanningConfig",
    "Prognosis",
    "RobotHealth",
    "SignalHealth",
    "SignalRule",
    "SlotUnavailable",
    "UnknownRobot",
    "WorkOrder",
    "WorkOrderState",
    "command_payload",
]
