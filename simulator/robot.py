"""One simulated robot: work cycle, shift calendar, wear, sensors, breakdowns and maintenance.

A robot is one SimPy process. It is RUNNING in production windows and IDLE outside them; it
stops for planned maintenance (MAINTENANCE) and when a component fails (BROKEN). Everything that
wears is a function of *operating* time: wear, parts, and telemetry, which is sampled every
``sample_interval_s`` of running. Nothing here sleeps or knows about MQTT: records leave through
the ``emit`` sink and commands arrive through :meth:`RobotModel.handle` (call it from the thread
that runs the environment). Randomness comes from streams seeded with ``"{seed}:{robot}:…"``:
sensor noise, work, faults and one per component, so a component's n-th life is the same
whatever else happens (common random numbers across maintenance policies).
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator
from typing import Any

import simpy

from contract.payloads import CancelMaintenance, InjectFault, ScheduleMaintenance
from simulator.commands import CommandDesk, Job
from simulator.degradation import HOUR_S, ComponentState
from simulator.faults import ActiveFault, apply_sensor_faults
from simulator.physics import WEAR_SLOT, NormalStream, SensorPhysics, sensor_ranges
from simulator.records import (
    BirthRecord,
    ComponentTruthRecord,
    EventRecord,
    Sample,
    Sink,
    StateChange,
    TruthRecord,
)
from simulator.scenario import Robot, Scenario
from simulator.stats import RobotStats

RUNNING, IDLE, MAINTENANCE, BROKEN = "RUNNING", "IDLE", "MAINTENANCE", "BROKEN"
#: A parts event every 15 minutes of running (and whenever the robot stops running).
PARTS_REPORT_OP_S = 900.0
#: Unplanned repairs get a technician before planned jobs (lower number = served first).
UNPLANNED_PRIORITY, PLANNED_PRIORITY = 0, 1
#: However the noise falls, a cycle takes at least this fraction of its nominal time.
MIN_CYCLE_FRACTION = 0.2
#: The contract's bound on a remaining-time horizon; further than that is reported as unknown.
HORIZON_MAX_S = 1e10

Command = ScheduleMaintenance | CancelMaintenance | InjectFault
Steps = Generator[simpy.Event, Any, Any]


class RobotModel:
    """A robot in a :class:`~simulator.factory.Factory`; see the module docstring."""

    def __init__(
        self,
        env: simpy.Environment,
        robot: Robot,
        scenario: Scenario,
        seed: int,
        emit: Sink,
        technicians: simpy.PriorityResource,
    ) -> None:
        self.env = env
        self.id = robot.id
        self.spec = robot
        self._emit = emit
        self._start_ts = scenario.start_ts
        self._calendar = scenario.shift_calendar
        self._production = self._calendar.production
        self._maintenance = scenario.maintenance
        self._technicians = technicians
        kind = robot.kind
        self._interval_s = kind.sample_interval_s
        self._physics = SensorPhysics.from_kind(kind)
        self._spans = {
            name: limit - getattr(kind.sensors, name).base
            for name, limit in kind.danger_limits.items()
        }
        base = f"{seed}:{robot.id}"
        self._noise = NormalStream(f"{base}:noise")
        self._rng_work = random.Random(f"{base}:work")
        self.rng_fault = random.Random(f"{base}:faults")
        self.components: dict[str, ComponentState] = {}
        for index, spec in enumerate(kind.components):
            rng = random.Random(f"{base}:{spec.name}")
            age_s = rng.uniform(0.0, kind.initial_age_h_max) * HOUR_S
            self.components[spec.name] = ComponentState(spec, rng, index, age_s)
        self._comps = tuple(self.components.values())
        self._slots = tuple(WEAR_SLOT[c.kind] for c in self._comps)
        self.state: str | None = None
        self._since_ts = self._start_ts
        self._op_s = 0.0
        self._acct_t = 0.0
        self._stretch_fail_ts: tuple[float, ...] = ()
        self._next_sample_op = self._interval_s
        self._next_parts_op = PARTS_REPORT_OP_S
        self._cycle_left_s = self._next_cycle_s()
        self._good = self._scrap = 0
        self.faults: list[ActiveFault] = []
        self.sensor_faults: list[ActiveFault] = []
        self._stats = RobotStats(failures=dict.fromkeys(self.components, 0))
        self._stats.replacements = dict.fromkeys(self.components, 0)
        self.desk = CommandDesk(self)
        self._process: simpy.Process | None = None
        self._interruptible = False
        self._interrupt_pending = False

    # --- public ---------------------------------------------------------------------------

    def start(self) -> None:
        """Register the robot's process with the environment."""
        if self._process is None:
            self._process = self.env.process(self._main())

    def handle(self, command: Command) -> str:
        """Apply a command now; returns its acknowledgement status (also emitted as an event)."""
        return self.desk.handle(command)

    def schedule_maintenance(self, command: ScheduleMaintenance) -> str:
        return self.desk.schedule(command)

    def cancel(self, command: CancelMaintenance) -> str:
        return self.desk.cancel(command)

    def inject_fault(self, command: InjectFault) -> str:
        return self.desk.inject(command)

    @property
    def now_ts(self) -> float:
        """Simulated time, Unix seconds."""
        return self._start_ts + self.env.now

    @property
    def operating_s(self) -> float:
        self.account()
        return self._op_s

    @property
    def stats(self) -> RobotStats:
        """A snapshot of the counters, time in the current state included."""
        return self._stats.with_time_in(self.state, self.now_ts - self._since_ts)

    @property
    def birth(self) -> BirthRecord:
        robot, kind = self.spec, self.spec.kind
        body = {
            "kind": robot.kind_name,
            "model": kind.model,
            "site": robot.site,
            "area": robot.area,
            "line": robot.line,
            "components": [{"name": c.name, "kind": c.kind} for c in kind.components],
            "sensors": sensor_ranges(kind),
            "sample_interval_s": float(kind.sample_interval_s),
            "vibration_class": kind.vibration_class,
        }
        return BirthRecord(self.id, self.now_ts, body)

    def truth(self) -> TruthRecord:
        """The true state of every component now."""
        ts = self.now_ts
        position = self._production.position(ts)
        return TruthRecord(
            self.id, ts, tuple(self._component_truth(c, ts, position) for c in self._comps)
        )

    # --- used by the command desk ---------------------------------------------------------

    def event(self, body: dict[str, Any]) -> None:
        self._emit(EventRecord(self.id, self.now_ts, body))

    def emit(self, record: Any) -> None:
        self._emit(record)

    def account(self) -> None:
        """Bring operating time, wear and parts up to now (RUNNING time only counts)."""
        now = self.env.now
        dop = now - self._acct_t
        self._acct_t = now
        if dop <= 0.0 or self.state != RUNNING:
            return
        self._op_s += dop
        for c in self._comps:
            c.age_s += c.rate * dop
        left = self._cycle_left_s - dop
        while left <= 0.0:
            if self._rng_work.random() < self.spec.kind.scrap_probability:
                self._scrap += 1
                self._stats.parts_scrap += 1
            else:
                self._good += 1
                self._stats.parts_good += 1
            left += self._next_cycle_s()
        self._cycle_left_s = left

    def wake(self) -> None:
        """Make the main process re-plan now (timing changed: a job fell due, a wear rate)."""
        process = self._process
        if (
            process is not None
            and self._interruptible
            and not self._interrupt_pending
            and process.is_alive
            and self.env.active_process is not process
        ):
            self._interrupt_pending = True
            process.interrupt("re-plan")

    def restore(self, component: ComponentState) -> None:
        """Fit a new ``component``; a technician's visit also ends open-ended sensor faults."""
        component.restore()
        for fault in list(self.faults):
            if fault.fault == "accelerated_wear":
                ends = fault.component == component.name
            else:
                ends = math.isinf(fault.end_ts)
            if ends:
                self.desk.clear_fault(fault)
        self._emit(self.truth())

    # --- the process ----------------------------------------------------------------------

    def _main(self) -> Steps:
        self._emit(self.birth)
        self._emit(self.truth())
        while True:
            job = self.desk.take_due_job()
            if job is not None:
                yield from self._planned_maintenance(job)
                continue
            failed: ComponentState | None = None
            self._interruptible = True
            try:
                ts = self.now_ts
                if self._calendar.is_production(ts):
                    self._set_state(RUNNING, "production window")
                    failed = yield from self._run_stretch()
                else:
                    self._set_state(IDLE, self._idle_reason(ts))
                    wake_ts = self._calendar.next_change(ts)
                    yield (
                        self.env.event() if math.isinf(wake_ts) else self.env.timeout(wake_ts - ts)
                    )
            except simpy.Interrupt:
                self._interrupt_pending = False
                self.account()
            self._interruptible = False
            if failed is not None:
                yield from self._breakdown(failed)

    def _run_stretch(self) -> Steps:
        """Run until the production window ends or a component fails (returned)."""
        env = self.env
        timeout = env.timeout
        now = env.now
        now_ts = self.now_ts
        window_end = self._calendar.next_change(now_ts) - self._start_ts
        # Wear rates hold for the whole stretch (a change interrupts it), so each component's
        # failure time "if it runs every production second" is fixed: compute it once.
        position = self._production.position(now_ts)
        self._stretch_fail_ts = tuple(
            self._production.time_at(position + c.life.fail_s - c.age_s)
            if c.rate == 1.0
            else math.nan
            for c in self._comps
        )
        failing = min(self._comps, key=ComponentState.op_to_failure_now)
        fail_at = now + failing.op_to_failure_now()
        stop_at = min(fail_at, window_end)
        interval = self._interval_s
        while True:
            parts_at = self._acct_t + (self._next_parts_op - self._op_s)
            stop = stop_at if stop_at <= parts_at else parts_at
            sample_at = self._acct_t + (self._next_sample_op - self._op_s)
            if sample_at <= stop:
                yield timeout(max(sample_at - env.now, 0.0))
                self.account()
                self._next_sample_op += interval
                self._sample()
                continue
            yield timeout(max(stop - env.now, 0.0))
            self.account()
            if stop < stop_at:
                self._next_parts_op += PARTS_REPORT_OP_S
                self._report_parts()
                continue
            return failing if fail_at <= window_end else None

    def _sample(self) -> None:
        """Telemetry and truth at a sample time of a running stretch (the hot path)."""
        ts = self._start_ts + self.env.now
        ratios = [0.0, 0.0, 0.0]
        truths = []
        make = tuple.__new__
        for c, slot, fail_ts in zip(self._comps, self._slots, self._stretch_fail_ts, strict=True):
            life = c.life
            age_s = c.age_s
            wear = life.wear_at(age_s)
            threshold = life.threshold
            if wear > ratios[slot] * threshold:
                ratios[slot] = wear / threshold
            if not math.isnan(fail_ts):  # normal wear rate: failure time fixed for the stretch
                rul_op = life.fail_s - age_s
                rul_s = fail_ts - ts
                truths.append(
                    make(
                        ComponentTruthRecord,
                        (
                            c.name,
                            wear,
                            threshold,
                            (rul_s if rul_s > 0.0 else 0.0) if rul_s <= HORIZON_MAX_S else None,
                            rul_op if rul_op > 0.0 else 0.0,
                        ),
                    )
                )
            else:
                truths.append(self._component_truth(c, ts, self._production.position(ts)))
        values = self._physics.readings(ratios[0], ratios[1], ratios[2], self._noise.take4())
        if self.sensor_faults:
            apply_sensor_faults(values, self.sensor_faults, ts, self._spans, self.rng_fault)
        if values:
            self._emit(Sample(self.id, ts, values))
            self._stats.samples += 1
        self._emit(TruthRecord(self.id, ts, tuple(truths)))

    def _component_truth(
        self, c: ComponentState, ts: float, position: float
    ) -> ComponentTruthRecord:
        """The truth of one component at ``ts`` (general path: any rate, any state)."""
        production = self._production
        life = c.life
        if c.rate == 1.0:
            rul_op = max(life.fail_s - c.age_s, 0.0)
        else:
            until = c.rate_until_ts
            fast_s = math.inf if math.isinf(until) else production.position(until) - position
            rul_op = c.rul_op_s(max(fast_s, 0.0))
        rul_s = max(production.time_at(position + rul_op) - ts, 0.0)
        wear = life.wear_at(c.age_s)
        return ComponentTruthRecord(
            c.name,
            wear,
            life.threshold,
            rul_s if rul_s <= HORIZON_MAX_S else None,
            min(rul_op, HORIZON_MAX_S),
        )

    def _breakdown(self, component: ComponentState) -> Steps:
        component.age_s = component.life.fail_s  # exactly at the threshold
        self._set_state(BROKEN, f"failure of {component.name}")
        self._stats.breakdowns += 1
        self._stats.failures[component.name] += 1
        self.event({"kind": "failure", "component": component.name, "mode": "wear-out"})
        self._emit(self.truth())
        spec = component.spec
        repair_s = spec.unplanned_repair_h * HOUR_S
        with self._technicians.request(priority=UNPLANNED_PRIORITY) as request:
            yield request
            yield self.env.timeout(self._maintenance.technician_response_h * HOUR_S)
            self.event({"kind": "repair_started", "component": component.name})
            yield self.env.timeout(repair_s)
            self.restore(component)
        self._stats.repair_cost += spec.unplanned_cost
        self.event(
            {
                "kind": "repair_finished",
                "component": component.name,
                "duration_s": repair_s,
                "cost": spec.unplanned_cost,
            }
        )

    def _planned_maintenance(self, job: Job) -> Steps:
        component = self.components[job.component]
        job.status = "running"
        self._set_state(MAINTENANCE, f"planned maintenance of {job.component} ({job.command_id})")
        with self._technicians.request(priority=PLANNED_PRIORITY) as request:
            yield request
            self.event(
                {
                    "kind": "maintenance_started",
                    "command_id": job.command_id,
                    "component": job.component,
                }
            )
            yield self.env.timeout(job.duration_s)
            self.restore(component)
        cost = component.spec.planned_cost
        self._stats.maintenance_jobs += 1
        self._stats.maintenance_cost += cost
        self._stats.replacements[job.component] += 1
        job.status = "done"
        self.event(
            {
                "kind": "maintenance_finished",
                "command_id": job.command_id,
                "component": job.component,
                "duration_s": job.duration_s,
                "cost": cost,
            }
        )
        self.desk.ack(job.command_id, "done", None)

    # --- bookkeeping ----------------------------------------------------------------------

    def _set_state(self, state: str, reason: str) -> None:
        if state == self.state:
            return
        ts = self.now_ts
        if self.state == RUNNING:
            self.account()
            self._report_parts()
        if self.state is not None:
            self._stats.state_s[self.state] += ts - self._since_ts
        self.state = state
        self._since_ts = ts
        self._acct_t = self.env.now
        self._emit(StateChange(self.id, ts, state, reason))

    def _idle_reason(self, ts: float) -> str:
        if self._calendar.planned_downtime.contains(ts):
            return "planned downtime window"
        return "outside production"

    def _report_parts(self) -> None:
        if self._good or self._scrap:
            self.event({"kind": "parts", "good": self._good, "scrap": self._scrap})
            self._good = self._scrap = 0

    def _next_cycle_s(self) -> float:
        kind = self.spec.kind
        gripper = 0.0
        for c in self._comps:
            if c.kind == "gripper":
                gripper = max(gripper, c.life.wear_at(c.age_s) / c.life.threshold)
        slowdown: float = 1.0 + kind.physics.cycle_time_rise * gripper**kind.physics.wear_exponent
        noise = max(1.0 + kind.cycle_time_cv * self._rng_work.gauss(0.0, 1.0), MIN_CYCLE_FRACTION)
        return kind.cycle_time_s * slowdown * noise
