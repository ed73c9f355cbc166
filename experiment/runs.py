"""One (policy, seed) run of the experiment and the plant metrics it yields.

:func:`run_one` is what a worker process executes: build the closed loop
(:mod:`experiment.loop`), run it for the horizon, and reduce it to a flat dict of numbers
(:func:`plant_metrics` plus :func:`~experiment.rul_scoring.rul_metrics`). Definitions, with
their sources, are in docs/maintenance.md "Experiment":

* availability = run time / planned production time (Nakajima), per robot, averaged over robots
  (all robots share one calendar, so this is also total run time / total planned time);
* OEE = availability × performance × quality with the kind's nominal cycle time as the ideal;
* downtime = calendar hours BROKEN (unplanned) or in MAINTENANCE (planned), summed over robots;
  ``lost_production_*_h`` counts only the production hours those stops overlapped;
* maintenance_cost = planned job costs + unplanned repair costs (lost production not included);
* life_left_at_planned_h = true remaining operating hours of the parts planned jobs replaced;
* mtbf_h = operating hours / breakdowns, and with no breakdown operating hours / 1, a lower bound;
* mttr_h = mean time from a failure until the robot is back in service (completed repairs only).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from contract.payloads import InjectFault
from engine.config import PLAN_INTERVAL_S
from engine.kpis import Activity, robot_kpis
from engine.scoring import mtbf, mttr
from experiment.dataset import Dataset
from experiment.loop import ClosedLoop
from experiment.rul_scoring import life_left_metrics, rul_metrics
from experiment.state_log import BROKEN, MAINTENANCE
from experiment.trace import Trace
from simulator.model.scenario import Scenario, load_scenario

HOUR_S = 3600.0
Metrics = dict[str, float | None]


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run: ``trace_robot`` records that robot's trajectory for the figure."""

    policy: str
    seed: int
    days: float
    plan_interval_s: float = PLAN_INTERVAL_S
    trace_robot: str | None = None
    injections: tuple[InjectFault, ...] = ()
    #: Write the run's dataset (telemetry, truth, events, work orders) into this folder.
    export_dir: str | None = None
    export_csv: bool = False


@dataclass(slots=True)
class RunResult:
    policy: str
    seed: int
    metrics: Metrics
    readings: int
    engine_stats: dict[str, int]
    trace: Trace | None = None
    work_orders: dict[str, int] = field(default_factory=dict)


@functools.lru_cache(maxsize=4)
def cached_scenario(source: str | None) -> Scenario:
    """Each worker process loads (and validates) a scenario file once."""
    return load_scenario(source)


def run_one(scenario: Scenario | str | None, spec: RunSpec) -> RunResult:
    """Run ``spec`` on ``scenario`` (an object, or a file/bundled name loaded once per process)."""
    if not isinstance(scenario, Scenario):
        scenario = cached_scenario(scenario)
    loop = ClosedLoop(
        scenario,
        spec.policy,
        spec.seed,
        plan_interval_s=spec.plan_interval_s,
        trace_robot=spec.trace_robot,
        injections=spec.injections,
        dataset=Dataset() if spec.export_dir is not None else None,
    )
    loop.run(spec.days)
    if loop.dataset is not None and spec.export_dir is not None:
        for wo in loop.engine.work_orders():
            loop.dataset.add_work_order(
                {**dataclasses.asdict(wo), "status": wo.state.value, "end_ts": wo.end_ts}
            )
        loop.dataset.write(Path(spec.export_dir), csv=spec.export_csv)
    metrics = plant_metrics(loop)
    metrics.update(life_left_metrics(loop.scorer.left_at_planned_h))
    metrics.update(rul_metrics(loop.scorer.finish(), scenario_kinds(scenario)))
    if loop.trace is not None:
        failures = [(f.component, f.ts) for f in loop.log.failures if f.robot == loop.trace.robot]
        loop.trace.finish(loop.engine, failures)
    orders: dict[str, int] = {}
    for wo in loop.engine.work_orders():
        orders[wo.state.value] = orders.get(wo.state.value, 0) + 1
    return RunResult(
        spec.policy,
        spec.seed,
        metrics,
        loop.readings,
        loop.engine.stats,
        loop.trace,
        dict(sorted(orders.items())),
    )


def scenario_kinds(scenario: Scenario) -> list[str]:
    """The component kinds of a scenario's robots, sorted (the per-kind RUL metrics' keys)."""
    return sorted({c.kind for robot in scenario.robots for c in robot.kind.components})


def plant_metrics(loop: ClosedLoop) -> Metrics:
    """Breakdowns, downtime, availability, OEE, parts, cost, MTBF and MTTR of a finished run."""
    scenario = loop.scenario
    start_ts, end_ts = scenario.start_ts, loop.end_ts
    loop.log.close(end_ts)
    planned_s = scenario.shift_calendar.production_seconds(start_ts, end_ts)
    availability, performance, quality, oees = [], [], [], []
    totals = dict.fromkeys(
        ("breakdowns", "good", "scrap", "jobs", "cost", "run_s", "broken_s", "maint_s"), 0.0
    )
    for robot_id, robot in loop.factory.robots.items():
        robot.account()  # parts made since the last report
        stats = robot.stats
        good, scrap = stats.parts_good, stats.parts_scrap
        ideal_s = scenario.robot(robot_id).kind.cycle_time_s
        # The same computation as the service's GET /api/kpis (engine.kpis).
        measured = robot_kpis(
            Activity(planned_s, stats.operating_s, ideal_s, good, scrap, stats.breakdowns)
        )
        availability.append(measured.availability)
        performance.append(measured.performance)
        quality.append(measured.quality)
        oees.append(measured.oee)
        totals["breakdowns"] += stats.breakdowns
        totals["good"] += good
        totals["scrap"] += scrap
        totals["jobs"] += stats.maintenance_jobs
        totals["cost"] += stats.total_cost
        totals["run_s"] += stats.operating_s
        totals["broken_s"] += stats.downtime_unplanned_s
        totals["maint_s"] += stats.downtime_planned_s
    breakdowns = int(totals["breakdowns"])
    restore_s = loop.log.restore_durations_s()
    return {
        "breakdowns": float(breakdowns),
        "unplanned_downtime_h": totals["broken_s"] / HOUR_S,
        "planned_downtime_h": totals["maint_s"] / HOUR_S,
        "production_lost_to_failures_h": loop.log.lost_production_s(BROKEN) / HOUR_S,
        "production_lost_to_planned_h": loop.log.lost_production_s(MAINTENANCE) / HOUR_S,
        "planned_in_window_share": loop.log.planned_in_window_share(),
        "availability": _mean(availability),
        "performance": _mean(performance),
        "quality": _mean(quality),
        "oee": _mean(oees),
        "parts": totals["good"],
        "maintenance_jobs": totals["jobs"],
        "maintenance_cost": totals["cost"],
        "mtbf_h": mtbf(totals["run_s"], max(breakdowns, 1)) / HOUR_S,
        "mttr_h": mttr(restore_s) / HOUR_S if restore_s else None,
    }


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
