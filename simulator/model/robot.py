"""One simulated robot: work cycle, shift calendar, wear, sensors, breakdowns and maintenance.

A robot is one SimPy process. It is RUNNING in production windows and IDLE outside them; it
stops for planned maintenance (MAINTENANCE) and when a component fails (BROKEN). Everything that
wears is a function of *operating* time: wear, parts, and telemetry, which is sampled every
``sample_interval_s`` of running. Nothing here sleeps or knows about MQTT: records leave through
the ``emit`` sink and commands arrive through :meth:`RobotModel.handle` (call it from the thread
that runs the environment). Randomness comes from streams seeded with ``"{seed}:{robot}:…"``:
sensor noise, product load, work, faults and one per component, so a component's n-th life (and
a robot's n-th product) is the same whatever else happens (common random numbers across
maintenance policies).
"""

from __future__ import annotations

import math
import random
from typing import Any

import simpy

from contract.payloads import CancelMaintenance, InjectFault, ScheduleMaintenance
from simulator.model.commands import CommandDesk
from simulator.model.degradation import HORIZON_MAX_S, HOUR_S, ComponentState, Life
from simulator.model.faults import ActiveFault, apply_sensor_faults
from simulator.model.host import Command, Steps
from simulator.model.physics import WEAR_SLOT, LoadSchedule, NormalStream, SensorPhysics, birth_body
from simulator.model.records import (
    BirthRecord,
    ComponentTruthRecord,
    EventRecord,
    Sample,
    Sink,
    StateChange,
    TruthRecord,
)
from simulator.model.repairs import planned_maintenance, unplanned_repair
from simulator.model.scenario import Robot, Scenario
from simulator.model.stats import RobotStats
from simulator.model.work import WorkCycle

RUNNING, IDLE, MAINTENANCE, BROKEN = "RUNNING", "IDLE", "MAINTENANCE", "BROKEN"
#: A parts event every 15 minutes of running (and whenever the robot stops running).
PARTS_REPORT_OP_S = 900.0


class RobotModel:
    """A robot in a :class:`~simulator.model.factory.Factory`; see the module docstring."""

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
        self.maintenance = scenario.maintenance
        self.technicians = technicians
        kind = robot.kind
        self._interval_s = kind.sample_interval_s
        self._physics = SensorPhysics.from_kind(kind)
        self._spans = {
            name: limit - getattr(kind.sensors, name).base
            for name, limit in kind.danger_limits.items()
        }
        base = f"{seed}:{robot.id}"
        self._noise = NormalStream(f"{base}:noise")
        physics = kind.physics
        self.load = LoadSchedule(
            physics.load_levels, physics.load_change_h, self._start_ts, f"{base}:load"
        )
        self.rng_fault = random.Random(f"{base}:faults")
        self.components: dict[str, ComponentState] = {}
        for index, spec in enumerate(kind.components):
            rng = random.Random(f"{base}:{spec.name}")
            age_s = rng.uniform(0.0, kind.initial_age_h_max) * HOUR_S
            self.components[spec.name] = ComponentState(spec, rng, index, age_s)
        self._comps = tuple(self.components.values())
        #: Every life of a component ends at its spec's threshold: wear ratio = wear / this.
        self._wear_plan = tuple(
            (c, c.spec.threshold, WEAR_SLOT[c.kind], c.kind == "gripper") for c in self._comps
        )
        #: Each component's wear as of the last accounting while RUNNING (None: not known).
        #: Accounting works it out once for the work cycle and the sample that follow it.
        self._wears: list[float] | None = None
        #: The wear ratios the work cycle's losses follow (most worn gripper, most worn part).
        self._losses = (0.0, 0.0)
        #: The wear ratios the sensors follow: the most worn reducer, servo and gripper.
        self._slot_ratios = [0.0, 0.0, 0.0]
        self.state: str | None = None
        self._since_ts = self._start_ts
        self._op_s = 0.0
        self._acct_t = 0.0
        self._stretch_plan: tuple[tuple[ComponentState, Life, str, float, float], ...] = ()
        self._next_sample_op = self._interval_s
        self._next_parts_op = PARTS_REPORT_OP_S
        self.faults: list[ActiveFault] = []
        self.sensor_faults: list[ActiveFault] = []
        self.counters = RobotStats(failures=dict.fromkeys(self.components, 0))
        self.counters.replacements = dict.fromkeys(self.components, 0)
        self.work = WorkCycle(
            kind,
            f"{base}:work",
            self._loss_ratios,
            self.counters,
        )
        #: Set-up at product changes: seconds, and the product the robot is set up for.
        self._setup_s = physics.setup_min * 60.0
        self._product = 0
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
        return self.counters.with_time_in(self.state, self.now_ts - self._since_ts)

    @property
    def birth(self) -> BirthRecord:
        """What the robot is and what it measures (the retained birth message)."""
        return BirthRecord(self.id, self.now_ts, birth_body(self.spec))

    def truth(self) -> TruthRecord:
        """The true state of every component now."""
        ts = self.now_ts
        position = self._production.position(ts)
        return TruthRecord(
            self.id, ts, tuple(c.truth(ts, self._production, position) for c in self._comps)
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
        self._work_out_wear(dop)
        if self._setup_s:
            product = self.load.product_at(self._start_ts + now)
            if product != self._product:
                # Changed over since the last accounting (a change at night is set up when
                # work resumes): the set-up delays the next part.
                self._product = product
                self.work.set_up(self._setup_s)
        self.work.run_for(dop)

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

    # --- the process ----------------------------------------------------------------------

    def _main(self) -> Steps:
        self._emit(self.birth)
        self._emit(self.truth())
        while True:
            job = self.desk.take_due_job()
            if job is not None:
                yield from planned_maintenance(self, job)
                continue
            failed: ComponentState | None = None
            self._interruptible = True
            try:
                ts = self.now_ts
                if self._calendar.is_production(ts):
                    self.set_state(RUNNING, "production window")
                    failed = yield from self._run_stretch()
                else:
                    self.set_state(IDLE, self._idle_reason(ts))
                    wake_ts = self._calendar.next_change(ts)
                    yield (
                        self.env.event() if math.isinf(wake_ts) else self.env.timeout(wake_ts - ts)
                    )
            except simpy.Interrupt:
                self._interrupt_pending = False
                self.account()
            self._interruptible = False
            if failed is not None:
                yield from unplanned_repair(self, failed)

    def _run_stretch(self) -> Steps:
        """Run until the production window ends or a component fails (returned)."""
        env = self.env
        timeout = env.timeout
        now = env.now
        now_ts = self.now_ts
        window_end = self._calendar.next_change(now_ts) - self._start_ts
        # Wear rates hold for the whole stretch (a change interrupts it), so each component's
        # failure time "if it runs every production second" is fixed: compute it once.
        # Lives do not change during a stretch either: unpack them once for the hot path.
        position = self._production.position(now_ts)
        self._stretch_plan = tuple(
            (
                c,
                c.life,
                c.name,
                c.life.threshold,
                self._production.time_at(position + c.life.fail_s - c.age_s)
                if c.rate == 1.0
                else math.nan,
            )
            for c in self._comps
        )
        failing = min(self._comps, key=ComponentState.op_to_failure_now)
        fail_at = now + failing.op_to_failure_now()
        stop_at = min(fail_at, window_end)
        interval = self._interval_s
        while True:
            acct_t, op_s, now = self._acct_t, self._op_s, env.now
            parts_at = acct_t + (self._next_parts_op - op_s)
            stop = stop_at if stop_at <= parts_at else parts_at
            sample_at = acct_t + (self._next_sample_op - op_s)
            # A step due now is taken without a zero-length timeout: a parts report falls on
            # every third sample, and each SimPy event costs more than the report itself.
            if sample_at <= stop:
                if sample_at > now:
                    yield timeout(sample_at - now)
                self.account()
                self._next_sample_op += interval
                self._sample()
                continue
            if stop > now:
                yield timeout(stop - now)
            self.account()
            if stop < stop_at:
                self._next_parts_op += PARTS_REPORT_OP_S
                self._report_parts()
                continue
            return failing if fail_at <= window_end else None

    def _sample(self) -> None:
        """Telemetry and truth at a sample time of a running stretch (the hot path)."""
        ts = self._start_ts + self.env.now
        truths: list[ComponentTruthRecord] = []
        append = truths.append
        make = tuple.__new__
        wears = self._current_wears()
        for i, (c, life, name, threshold, fail_ts) in enumerate(self._stretch_plan):
            wear = wears[i]
            if fail_ts == fail_ts:  # noqa: PLR0124 - not NaN: normal rate, failure time fixed
                rul_op = life.fail_s - c.age_s
                left_s = fail_ts - ts
                rul_s = None if left_s > HORIZON_MAX_S else (left_s if left_s > 0.0 else 0.0)
                append(
                    make(
                        ComponentTruthRecord,
                        (name, wear, threshold, rul_s, rul_op if rul_op > 0.0 else 0.0),
                    )
                )
            else:
                append(c.truth(ts, self._production, self._production.position(ts)))
        ratios = self._slot_ratios
        values = self._physics.readings(
            ratios[0], ratios[1], ratios[2], self._noise.take4(), self.load.level_at(ts)
        )
        if self.sensor_faults:
            apply_sensor_faults(values, self.sensor_faults, ts, self._spans, self.rng_fault)
        emit, robot = self._emit, self.id
        if values:
            emit(Sample(robot, ts, values))
            self.counters.samples += 1
        emit(TruthRecord(robot, ts, tuple(truths)))

    # --- bookkeeping ----------------------------------------------------------------------

    def set_state(self, state: str, reason: str) -> None:
        if state == self.state:
            return
        ts = self.now_ts
        if self.state == RUNNING:
            self.account()
            self._report_parts()
        if self.state is not None:
            self.counters.state_s[self.state] += ts - self._since_ts
        self.state = state
        self._wears = None  # out of RUNNING a part may be replaced: work wear out afresh
        self._since_ts = ts
        self._acct_t = self.env.now
        self._emit(StateChange(self.id, ts, state, reason))

    def _idle_reason(self, ts: float) -> str:
        if self._calendar.planned_downtime.contains(ts):
            return "planned downtime window"
        return "outside production"

    def _report_parts(self) -> None:
        report = self.work.take_report()
        if report is not None:
            self.event({"kind": "parts", "good": report[0], "scrap": report[1]})

    def _work_out_wear(self, aged_op_s: float = 0.0) -> list[float]:
        """Age each component by ``aged_op_s`` operating seconds (at its wear rate), then work
        out its wear, the loss ratios and the sensors' ratios: one pass at every accounting (no
        ``zip``, ``max`` or comprehension, which cost more than the arithmetic here)."""
        wears = []
        worst = gripper = 0.0
        slots = [0.0, 0.0, 0.0]
        for c, threshold, slot, is_gripper in self._wear_plan:
            if aged_op_s:
                c.age_s += c.rate * aged_op_s
            wear = c.life.wear_at(c.age_s)
            wears.append(wear)
            ratio = wear / threshold
            if ratio > worst:  # noqa: PLR1730 - a builtin call costs more here
                worst = ratio
            if is_gripper and ratio > gripper:
                gripper = ratio
            if wear > slots[slot] * threshold:
                slots[slot] = ratio
        self._wears = wears
        self._losses = (gripper, worst)
        self._slot_ratios = slots
        return wears

    def _current_wears(self) -> list[float]:
        """Each component's wear now (as the last accounting found it, if it did)."""
        wears = self._wears
        return wears if wears is not None else self._work_out_wear()

    def _loss_ratios(self) -> tuple[float, float]:
        """Wear ratios of the most worn gripper (0 if the kind has none) and of the most worn
        component: what the work cycle's losses follow."""
        if self._wears is None:
            self._work_out_wear()
        return self._losses
