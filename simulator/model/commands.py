"""A robot's command desk: idempotency, expiry, validation and acknowledgement of commands.

Every command is answered on the event channel: ``accepted`` (a maintenance job is booked),
``rejected`` with a reason, or ``done``. A command id is executed at most once: a duplicate is
answered again with the id's current outcome and changes nothing. A command that arrives after
its ``expires_ts`` is rejected, and so is a booked job that cannot start before its expiry.

Booked jobs: at ``start_ts`` the robot stops and does the job (holding a technician for
``duration_s``). If it is BROKEN at that moment the job is rejected at once ("robot is BROKEN"):
the unplanned repair is under way and the service re-plans. If it is busy with another job, the
new one waits and starts afterwards, unless it has expired by then.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contract.faults import fault_problem
from contract.payloads import CancelMaintenance, InjectFault, ScheduleMaintenance
from simulator.model.faults import NETWORK_DROP_DEFAULT_S, ActiveFault
from simulator.model.host import Command, RobotHost, Steps
from simulator.model.records import NetworkDrop

REASON_MAX_LEN = 200  # the contract's Text bound


@dataclass(slots=True)
class Job:
    """A booked maintenance job: pending → due → running → done, or cancelled / rejected."""

    command_id: str
    component: str
    start_ts: float
    duration_s: float
    expires_ts: float
    order: int
    status: str = "pending"


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CommandDesk:
    """Receives one robot's commands; the robot executes the jobs it hands out."""

    def __init__(self, robot: RobotHost) -> None:
        self._robot = robot
        self.outcomes: dict[str, tuple[str, str | None]] = {}
        self.jobs: dict[str, Job] = {}
        self._order = itertools.count()

    def handle(self, command: Command) -> str:
        if isinstance(command, ScheduleMaintenance):
            return self.schedule(command)
        if isinstance(command, CancelMaintenance):
            return self.cancel(command)
        return self.inject(command)

    def ack(self, command_id: str, status: str, reason: str | None) -> str:
        if reason is not None and len(reason) > REASON_MAX_LEN:
            reason = reason[: REASON_MAX_LEN - 1] + "…"
        self.outcomes[command_id] = (status, reason)
        self._robot.event(
            {"kind": "ack", "command_id": command_id, "status": status, "reason": reason}
        )
        return status

    def _admit(self, command: Command) -> str | None:
        """Answer a duplicate, misaddressed or expired command; ``None`` if it may proceed."""
        known = self.outcomes.get(command.id)
        if known is not None:
            status, reason = known
            again = f"duplicate command id, already {status}" + (f": {reason}" if reason else "")
            self._robot.event(
                {"kind": "ack", "command_id": command.id, "status": status, "reason": again[:200]}
            )
            return status
        if command.robot != self._robot.id:
            return self.ack(command.id, "rejected", f"addressed to robot {command.robot!r}")
        now_ts = self._robot.now_ts
        if command.expires_ts < now_ts:
            return self.ack(
                command.id,
                "rejected",
                f"expired at {_iso(command.expires_ts)}, received at {_iso(now_ts)}",
            )
        return None

    # --- maintenance jobs -----------------------------------------------------------------

    def schedule(self, command: ScheduleMaintenance) -> str:
        early = self._admit(command)
        if early is not None:
            return early
        components = list(self._robot.components)
        if command.component not in components:
            return self.ack(
                command.id,
                "rejected",
                f"unknown component {command.component!r}; this robot has {', '.join(components)}",
            )
        if command.start_ts > command.expires_ts:
            return self.ack(command.id, "rejected", "start_ts is after expires_ts: it never runs")
        job = Job(
            command.id,
            command.component,
            command.start_ts,
            command.duration_s,
            command.expires_ts,
            next(self._order),
        )
        self.jobs[command.id] = job
        self._robot.env.process(self._job_timer(job))
        return self.ack(command.id, "accepted", None)

    def _job_timer(self, job: Job) -> Steps:
        robot = self._robot
        delay_s = job.start_ts - robot.now_ts
        if delay_s > 0.0:
            yield robot.env.timeout(delay_s)
        if job.status != "pending":
            return
        if robot.state == "BROKEN":
            job.status = "rejected"
            self.ack(job.command_id, "rejected", "robot is BROKEN at the start time")
            return
        job.status = "due"
        robot.wake()

    def take_due_job(self) -> Job | None:
        """The next job to run now, rejecting any due job that has expired while waiting."""
        now_ts = self._robot.now_ts
        due = sorted(
            (j for j in self.jobs.values() if j.status == "due"),
            key=lambda j: (j.start_ts, j.order),
        )
        for job in due:
            if job.expires_ts < now_ts:
                job.status = "rejected"
                self.ack(
                    job.command_id,
                    "rejected",
                    f"expired at {_iso(job.expires_ts)} while the robot was busy",
                )
                continue
            return job
        return None

    def cancel(self, command: CancelMaintenance) -> str:
        early = self._admit(command)
        if early is not None:
            return early
        job = self.jobs.get(command.target)
        if job is None:
            return self.ack(
                command.id, "rejected", f"no maintenance job {command.target!r} on this robot"
            )
        if job.status in ("pending", "due"):
            job.status = "cancelled"
            self.ack(job.command_id, "rejected", f"cancelled by {command.id}")
            return self.ack(command.id, "done", None)
        if job.status in ("cancelled", "rejected"):
            return self.ack(command.id, "done", f"job {command.target} was already {job.status}")
        return self.ack(command.id, "rejected", f"job {command.target} is already {job.status}")

    # --- faults ---------------------------------------------------------------------------

    def inject(self, command: InjectFault) -> str:
        early = self._admit(command)
        if early is not None:
            return early
        robot = self._robot
        problem = fault_problem(
            command.fault, command.component, command.sensor, list(robot.components)
        )
        if problem is not None:
            return self.ack(command.id, "rejected", problem)
        now_ts = robot.now_ts
        duration_s = command.duration_s
        if duration_s is None and command.fault == "network_drop":
            duration_s = NETWORK_DROP_DEFAULT_S
        fault = ActiveFault(
            command.id,
            command.fault,
            command.component,
            command.sensor,
            command.magnitude,
            now_ts,
            math.inf if duration_s is None else now_ts + duration_s,
        )
        if fault.fault == "accelerated_wear":
            for old in [f for f in robot.faults if f.fault == fault.fault]:
                if old.component == fault.component:
                    self.clear_fault(old)  # a new rate replaces the old one
            robot.account()  # wear up to now at the old rate
            component = robot.components[str(fault.component)]
            component.rate = fault.magnitude
            component.rate_until_ts = fault.end_ts
            robot.wake()
        elif fault.fault != "network_drop":
            robot.sensor_faults.append(fault)
        robot.faults.append(fault)
        robot.event(fault.event_body("fault_started"))
        if fault.fault == "network_drop":
            robot.emit(NetworkDrop(robot.id, now_ts, fault.end_ts - now_ts))
        if not math.isinf(fault.end_ts):
            robot.env.process(self._fault_timer(fault))
        return self.ack(command.id, "done", None)

    def _fault_timer(self, fault: ActiveFault) -> Steps:
        yield self._robot.env.timeout(fault.end_ts - self._robot.now_ts)
        if fault in self._robot.faults:
            self.clear_fault(fault)

    def clear_fault(self, fault: ActiveFault) -> None:
        robot = self._robot
        robot.faults.remove(fault)
        if fault in robot.sensor_faults:
            robot.sensor_faults.remove(fault)
        if fault.fault == "accelerated_wear":
            robot.account()  # wear up to now at the faulted rate
            component = robot.components[str(fault.component)]
            component.rate = 1.0
            component.rate_until_ts = math.inf
            robot.wake()
        robot.event(fault.event_body("fault_cleared"))

    @property
    def summary(self) -> dict[str, Any]:
        statuses = [status for status, _ in self.outcomes.values()]
        return {s: statuses.count(s) for s in ("accepted", "rejected", "done")}
