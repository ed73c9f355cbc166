"""The maintenance loop: the engine inside the live service, fed from ingest, acting over MQTT.

After every committed batch the consumer hands over the messages that were *new* (never the
``truth`` channel: the engine must not see ground truth). Readings, states and events go into
the engine; when the simulated clock (the newest message time) has moved on by the planning
cadence since the last plan, the engine plans, and each decision's commands are published on the
robots' ``cmd`` topics; a schedule command sent marks its order dispatched. The same cadence as
the offline experiment's, so the demo runs the planner the experiment measured.

Work orders and alarms are persisted whenever they change, *before* their commands leave (so a
crash never leaves a robot with a command id the store does not know), and each change is
streamed on the ``work_order`` / ``alarm`` channels. People's requests (manual work orders, fault
injection) take the same lock, scheduler and lifecycle. Everything runs on the event loop; the
store is written from a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

from api.maintenance.changes import Changes, ChangeTracker
from api.maintenance.command_sender import CommandSender
from api.records.maintenance import (
    FaultAccepted,
    FaultRequest,
    RobotHealth,
    WorkOrder,
    WorkOrderRequest,
    component_health_record,
    work_order_record,
)
from api.store import Accepted, Store, StoreUnavailable
from api.stream import StreamEvent, StreamHub
from contract.payloads import TS_MAX, Birth, InjectFault, State, Telemetry
from contract.topics import Channel
from engine import Decision, MaintenanceEngine
from engine.config import PLAN_INTERVAL_S

log = logging.getLogger(__name__)

#: Who a work order made through the API was requested by.
API_REQUESTER = "api"


class MaintenanceLoop:
    """See the module docstring. ``run_id`` (the service's boot id) names this run's alarms."""

    def __init__(
        self,
        engine: MaintenanceEngine,
        store: Store,
        sender: CommandSender,
        hub: StreamHub,
        run_id: str,
        *,
        plan_interval_s: float = PLAN_INTERVAL_S,
    ) -> None:
        self.engine = engine
        self.store = store
        self.sender = sender
        self.hub = hub
        self.plan_interval_s = plan_interval_s
        self.tracker = ChangeTracker(engine, run_id)
        self.lock = asyncio.Lock()
        self.robots = frozenset(engine.fleet.robots)
        self.last_plan_ts: float | None = None
        #: The service clock of the newest step carried out in full (fed, planned, commands
        #: handed to the MQTT client, persisted): how far in simulated time the engine has acted.
        self.stepped_ts: float | None = None
        self.plans = 0
        #: Messages from robots the scenario does not have (the engine cannot follow them).
        self.skipped = 0
        self.save_errors = 0
        #: Each robot's boot id as last heard in a birth; a new one means the robot restarted.
        self.boots: dict[str, str] = {}
        #: Why the engine is not running on this worker (another one leads:
        #: :mod:`api.engine_seat`); ``None`` when it runs here.
        self.standby: str | None = None

    @property
    def policy(self) -> str:
        return self.engine.policy_name

    def line_of(self, robot: str) -> str:
        return self.engine.fleet.robots[robot].robot.line

    # --- fed by the consumer ---------------------------------------------------------------

    def feed(self, messages: Iterable[Accepted]) -> list[Decision]:
        """Readings, states and events into the engine (the hot path: a few µs a reading);
        returns what robots that restarted ended (their interrupted orders)."""
        engine = self.engine
        on_reading = engine.on_reading
        known = self.robots
        topics = self.sender.topics
        interrupted: list[Decision] = []
        for message in messages:
            payload = message.payload
            robot = payload.robot
            if robot not in known:
                self.skipped += 1
                continue
            topics[robot] = message.topic
            if isinstance(payload, Telemetry):
                for reading in payload.readings:
                    on_reading(robot, reading.ts, reading.values())
            elif isinstance(payload, State):
                engine.on_state(robot, payload.since, payload.state)
            elif message.topic.channel is Channel.EVENT:
                engine.on_event(
                    robot,
                    payload.ts,
                    getattr(payload, "kind", ""),
                    component=getattr(payload, "component", None),
                    command_id=getattr(payload, "command_id", None),
                    status=getattr(payload, "status", None),
                    reason=getattr(payload, "reason", None),
                )
            elif isinstance(payload, Birth):  # the engine knows the robots from the scenario
                before = self.boots.get(robot)
                self.boots[robot] = payload.boot
                if before is not None and before != payload.boot:
                    interrupted += engine.on_reboot(robot, payload.ts)
            # truth: never.
        return interrupted

    async def on_committed(self, messages: Sequence[Accepted], clock: float | None) -> None:
        """One step after a commit: feed, plan if the cadence is due, persist and stream."""
        async with self.lock:
            interrupted = self.feed(messages)
            if interrupted:
                ended = ", ".join(f"{d.work_order} of {d.robot}" for d in interrupted)
                log.info("robots restarted; their open jobs end as interrupted: %s", ended)
            if clock is not None and (
                self.last_plan_ts is None or clock - self.last_plan_ts >= self.plan_interval_s
            ):
                self.last_plan_ts = clock
                self.plans += 1
                decisions = self.engine.plan(clock)
                if decisions:
                    await self.carry_out(decisions, clock)
            await self.flush()
            if clock is not None:
                self.stepped_ts = clock

    # --- decisions and changes -------------------------------------------------------------

    async def carry_out(self, decisions: Sequence[Decision], now_ts: float) -> None:
        """Persist the decisions' orders, then send their commands and mark them dispatched."""
        await self.flush()  # write-ahead: the store knows an order before its robot does
        for decision in decisions:
            for spec in decision.commands:
                sent = self.sender.send_spec(spec, now_ts)
                if sent and spec.type == "schedule_maintenance":
                    self.engine.mark_dispatched(spec.work_order, now_ts)

    async def flush(self) -> None:
        """Persist what changed in the engine, then stream it. A store that cannot take it now
        keeps it pending: the next step tries again."""
        changes = self.tracker.collect()
        if not changes:
            return
        try:
            await asyncio.to_thread(
                self.store.save_maintenance, changes.work_orders, changes.alarms
            )
        except StoreUnavailable as exc:
            self.save_errors += 1
            log.warning("cannot persist maintenance changes yet (%s); retrying next step", exc)
            return
        self.tracker.commit(changes)
        self.stream(changes)

    def stream(self, changes: Changes) -> None:
        if not self.hub.clients:
            return
        for wo in changes.work_orders:
            self.hub.publish(StreamEvent("work_order", wo.robot, wo.line, wo.model_dump_json()))
        for alarm in changes.alarms:
            line = self.line_of(alarm.robot)
            self.hub.publish(StreamEvent("alarm", alarm.robot, line, alarm.model_dump_json()))

    # --- people ----------------------------------------------------------------------------

    async def request_work_order(self, request: WorkOrderRequest, now_ts: float) -> WorkOrder:
        """A manual job through the engine's scheduler (ValueError with the reason if it cannot
        be placed); sent to the robot like any other."""
        async with self.lock:
            decision = self.engine.request_work_order(
                request.robot,
                request.component,
                now_ts,
                request.start_ts,
                duration_s=request.duration_s,
                requested_by=API_REQUESTER,
                note=request.note,
            )
            await self.carry_out([decision], now_ts)
            await self.flush()
            return work_order_record(self.engine.work_order(decision.work_order))

    async def cancel_work_order(self, work_order_id: str, reason: str, now_ts: float) -> WorkOrder:
        """Cancel through the engine's lifecycle and send the robot its ``cancel_maintenance``,
        as the planner's own cancellations do. KeyError for an unknown order, ValueError
        (IllegalTransition) for one that can no longer be cancelled."""
        async with self.lock:
            decision = self.engine.cancel_work_order(work_order_id, now_ts, reason)
            await self.carry_out([decision], now_ts)
            await self.flush()
            return work_order_record(self.engine.work_order(decision.work_order))

    async def inject_fault(
        self, robot: str, request: FaultRequest, now_ts: float, expiry_s: float
    ) -> FaultAccepted | None:
        """Send an ``inject_fault`` command; None if it could not be handed to the MQTT client."""
        async with self.lock:
            seq = self.sender.next_seq()
            command = InjectFault(
                v=1,
                robot=robot,
                ts=now_ts,
                boot=self.sender.boot,
                seq=seq,
                id=f"fault-{self.sender.boot}-{seq}",
                expires_ts=min(now_ts + expiry_s, TS_MAX),
                type="inject_fault",
                fault=request.fault,
                component=request.component,
                sensor=request.sensor,
                magnitude=request.magnitude,
                duration_s=request.duration_s,
            )
            topic = self.sender.topic_of(robot)
            if topic is None or not self.sender.send(command):
                return None
            return FaultAccepted(
                command_id=command.id,
                robot=robot,
                fault=command.fault,
                topic=str(topic),
                expires_ts=command.expires_ts,
            )

    # --- reading ---------------------------------------------------------------------------

    def health(self, robot: str, ts: float | None) -> RobotHealth:
        """The engine's view of one robot of the scenario (KeyError for another)."""
        health = self.engine.health(robot)
        alarm = self.tracker.alarm
        return RobotHealth(
            robot=robot,
            ts=ts,
            policy=self.policy,
            kind=health.kind,
            line=health.line,
            state=health.state,
            operating_h=health.operating_h,
            components=[component_health_record(c, alarm) for c in health.components],
            alarms=[alarm(a) for a in health.alarms],
        )
