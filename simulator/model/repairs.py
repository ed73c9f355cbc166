"""The technician's work on a robot: unplanned repair after a failure, planned maintenance.

Both hold one of the factory's technicians (a shared SimPy ``PriorityResource``; repairs are
served before planned jobs). A repair: the robot is BROKEN from the failure; once a technician is
free they travel for ``technician_response_h``, then repair for the component's
``unplanned_repair_h``. Planned maintenance: the robot is in MAINTENANCE from the job's start,
waits for a technician if none is free, then holds them for the job's ``duration_s``. Either way
the component is replaced by a new one (fresh life, wear 0) and a truth record shows the reset.
"""

from __future__ import annotations

import math

from simulator.model.commands import Job
from simulator.model.degradation import HOUR_S, ComponentState
from simulator.model.host import RobotHost, Steps

#: Unplanned repairs get a technician before planned jobs (lower number = served first).
UNPLANNED_PRIORITY, PLANNED_PRIORITY = 0, 1


def restore(robot: RobotHost, component: ComponentState) -> None:
    """Fit a new ``component``; a technician's visit also ends open-ended sensor faults."""
    component.restore()
    for fault in list(robot.faults):
        if fault.fault == "accelerated_wear":
            ends = fault.component == component.name
        else:
            ends = math.isinf(fault.end_ts)
        if ends:
            robot.desk.clear_fault(fault)
    robot.emit(robot.truth())


def unplanned_repair(robot: RobotHost, component: ComponentState) -> Steps:
    """The component has just reached its threshold: BROKEN until repaired."""
    component.age_s = component.life.fail_s  # exactly at the threshold
    robot.set_state("BROKEN", f"failure of {component.name}")
    counters = robot.counters
    counters.breakdowns += 1
    counters.failures[component.name] += 1
    robot.event({"kind": "failure", "component": component.name, "mode": "wear-out"})
    robot.emit(robot.truth())
    spec = component.spec
    repair_s = spec.unplanned_repair_h * HOUR_S
    with robot.technicians.request(priority=UNPLANNED_PRIORITY) as request:
        yield request
        yield robot.env.timeout(robot.maintenance.technician_response_h * HOUR_S)
        robot.event({"kind": "repair_started", "component": component.name})
        yield robot.env.timeout(repair_s)
        restore(robot, component)
    counters.repair_cost += spec.unplanned_cost
    robot.event(
        {
            "kind": "repair_finished",
            "component": component.name,
            "duration_s": repair_s,
            "cost": spec.unplanned_cost,
        }
    )


def planned_maintenance(robot: RobotHost, job: Job) -> Steps:
    """A booked job whose start time has come (the robot has stopped)."""
    component = robot.components[job.component]
    job.status = "running"
    robot.set_state("MAINTENANCE", f"planned maintenance of {job.component} ({job.command_id})")
    with robot.technicians.request(priority=PLANNED_PRIORITY) as request:
        yield request
        robot.event(
            {
                "kind": "maintenance_started",
                "command_id": job.command_id,
                "component": job.component,
            }
        )
        yield robot.env.timeout(job.duration_s)
        restore(robot, component)
    cost = component.spec.planned_cost
    counters = robot.counters
    counters.maintenance_jobs += 1
    counters.maintenance_cost += cost
    counters.replacements[job.component] += 1
    job.status = "done"
    robot.event(
        {
            "kind": "maintenance_finished",
            "command_id": job.command_id,
            "component": job.component,
            "duration_s": job.duration_s,
            "cost": cost,
        }
    )
    robot.desk.ack(job.command_id, "done", None)
