"""One experiment run: a seeded factory and the maintenance engine in a closed loop, offline.

The run wires the pure SimPy factory (:class:`simulator.model.factory.Factory`) to the very
:class:`~engine.MaintenanceEngine` the live service uses, with nothing in between but a
record router: readings, state changes and events go to the engine exactly as the service's
ingest would hand them over (the engine never sees the ``truth`` channel); truth records go to
the scorer (and its oracle) only. A SimPy process plays the service's planning tick: every
``plan_interval_s`` simulated seconds it calls ``engine.plan(now)``, turns each command into its
strict contract payload with :func:`~engine.command_payload`, marks schedule commands
dispatched (as the service does once it has published them) and hands the payload to the robot.
The robots' acks and maintenance events come back through the router, so the work-order
lifecycle is the live one.

Messages take no time here (the broker's latency is zero) and none is lost: that is the only
difference from the live loop.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

import simpy

from contract.payloads import InjectFault
from engine import EngineConfig, MaintenanceEngine, command_payload
from engine.config import PLAN_INTERVAL_S
from experiment.dataset import Dataset
from experiment.oracle import TruthOracle
from experiment.rul_scoring import RulScorer
from experiment.state_log import StateLog
from experiment.trace import Trace
from plant.calendar import DAY_S
from simulator.model.factory import Factory
from simulator.model.records import EventRecord, Record, Sample, StateChange, TruthRecord
from simulator.model.scenario import Scenario

#: The sender's boot id in the command envelopes (the service uses its own boot id).
SENDER_BOOT = "experiment"


class ClosedLoop:
    """Factory + engine + scorer on one SimPy environment; :meth:`run` advances it."""

    def __init__(
        self,
        scenario: Scenario,
        policy: str,
        seed: int,
        *,
        plan_interval_s: float = PLAN_INTERVAL_S,
        engine_config: EngineConfig | None = None,
        trace_robot: str | None = None,
        injections: Sequence[InjectFault] = (),
        dataset: Dataset | None = None,
    ) -> None:
        if plan_interval_s <= 0:
            raise ValueError(f"plan_interval_s must be positive, got {plan_interval_s}")
        self.scenario = scenario
        self.policy = policy
        self.seed = seed
        self.plan_interval_s = plan_interval_s
        self.env = simpy.Environment()
        self.engine = MaintenanceEngine(scenario, policy, engine_config)
        self.scorer = RulScorer(self.engine.prognosis, TruthOracle(scenario), self.engine.fits)
        self.log = StateLog(scenario)
        self.trace = Trace(trace_robot) if trace_robot is not None else None
        #: When exporting: every reading, truth record and event, for the dataset files.
        self.dataset = dataset
        self.factory = Factory(self.env, scenario, seed, self._route)
        self.readings = 0
        self.commands_sent = 0
        self._injections = tuple(injections)
        self._started = False

    # --- the record router (the service's ingest, minus the wire) ---------------------------

    def _route(self, record: Record) -> None:
        if self.dataset is not None:
            self.dataset.on_record(record)
        if isinstance(record, Sample):
            self.engine.on_reading(record.robot, record.ts, record.values)
            self.readings += 1
        elif isinstance(record, TruthRecord):
            self.scorer.on_truth(record)
            if self.trace is not None and record.robot == self.trace.robot:
                self.trace.on_truth(record)
        elif isinstance(record, EventRecord):
            body = record.body
            if body["kind"] == "parts":
                # A third of all events (one per 15 min of running); the engine, the scorer and
                # the stop log ignore them: parts are counted from the robots at the end.
                return
            self.engine.on_event(
                record.robot,
                record.ts,
                body["kind"],
                component=body.get("component"),
                command_id=body.get("command_id"),
                status=body.get("status"),
                reason=body.get("reason"),
            )
            self.scorer.on_event(record.robot, body)
            self.log.on_event(record.robot, record.ts, body)
        elif isinstance(record, StateChange):
            self.engine.on_state(record.robot, record.ts, record.state)
            self.log.on_state(record.robot, record.ts, record.state)
        # BirthRecord: the engine knows the robots from the scenario. NetworkDrop: an
        # instruction to a transport, and there is none here.

    # --- the service's planning tick ---------------------------------------------------------

    def plan_once(self) -> None:
        """One planning tick at the current simulated time: plan, send, mark dispatched."""
        now_ts = self.factory.now_ts
        for decision in self.engine.plan(now_ts):
            for spec in decision.commands:
                self.commands_sent += 1
                payload = command_payload(spec, ts=now_ts, boot=SENDER_BOOT, seq=self.commands_sent)
                if spec.type == "schedule_maintenance":
                    # The service marks an order dispatched once the command is published; the
                    # robot's ack (emitted synchronously by handle) then finds it dispatched.
                    self.engine.mark_dispatched(spec.work_order, now_ts)
                self.factory.handle(payload)
        if self.trace is not None:
            self.trace.on_tick(now_ts, self.engine)

    def _planning(self) -> Generator[simpy.Event, Any, None]:
        while True:
            yield self.env.timeout(self.plan_interval_s)
            self.plan_once()

    def _inject(self, command: InjectFault) -> Generator[simpy.Event, Any, None]:
        yield self.env.timeout(max(command.ts - self.scenario.start_ts, 0.0))
        self.factory.handle(command)

    # --- running -----------------------------------------------------------------------------

    def run(self, days: float) -> None:
        """Run (or continue) until ``days`` simulated days after the scenario's start."""
        if not self._started:
            self._started = True
            self.factory.start()
            self.env.process(self._planning())
            for command in self._injections:
                self.env.process(self._inject(command))
        self.env.run(until=days * DAY_S)

    @property
    def end_ts(self) -> float:
        return self.factory.now_ts
