"""How fast the maintenance engine takes readings: prints JSON (readings per second).

A small closed loop on the default scenario: every robot sends all four sensors at its sample
interval during production, with noise, the odd spike and dropout; one component per robot wears
(a power-law curve with a random onset) until the engine's work order restores it — or it fails,
waits for an unplanned repair, and starts over. ``plan`` runs every simulated hour; the loop plays
the robot's side (ack, maintenance started/finished). Measured:

* ``readings_per_s``: replaying the recorded readings into a fresh engine, ``on_reading`` only;
* ``engine_us_per_reading``: the whole loop minus the same loop with a do-nothing engine, i.e.
  readings, planning and events together, per reading.

Times are CPU time of this process (``time.process_time``), so other work on a shared machine
disturbs them less than wall time would. The experiment needs ~10 M readings in ≤ 60 s on 2
cores: a few µs per reading.

    .venv/bin/python bench/bench_engine.py [--days 90] [--policy predictive] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine import Decision, MaintenanceEngine
from simulator.model.scenario import ComponentSpec, Robot, Scenario, load_scenario

Reading = tuple[str, float, dict[str, float]]


@dataclass
class Wearing:
    """One robot of the loop and the component that wears on it."""

    robot: Robot
    part: ComponentSpec
    onset_s: float
    life_s: float
    op_s: float = 0.0
    down_until: float = 0.0


class NullEngine:
    """Same calls, no work: the loop's own cost."""

    def on_reading(self, robot: str, ts: float, values: Mapping[str, float]) -> None:
        pass

    def on_event(self, robot: str, ts: float, kind: str, **_: Any) -> None:
        pass

    def plan(self, now_ts: float) -> list[Decision]:
        return []


def closed_loop(
    scenario: Scenario, engine: Any, days: float, seed: int, record: list[Reading] | None
) -> dict[str, int]:
    rng = random.Random(seed)
    noise = [rng.gauss(0.0, 1.0) for _ in range(4099)]
    calendar = scenario.shift_calendar
    interval = min(r.kind.sample_interval_s for r in scenario.robots)
    robots = []
    for robot in scenario.robots:
        part = rng.choice(robot.kind.components)
        onset_s = rng.uniform(100, 600) * 3600
        robots.append(Wearing(robot, part, onset_s, part.pf_mean_h * 3600))
    jobs: dict[str, dict[str, Any]] = {}
    counts = {"readings": 0, "failures": 0, "jobs_done": 0, "decisions": 0}
    t0 = scenario.start_ts
    steps = int(days * 86400 / interval)
    k = 0
    next_plan = t0
    for i in range(steps):
        ts = t0 + i * interval
        if ts >= next_plan:
            for decision in engine.plan(ts):
                counts["decisions"] += 1
                for spec in decision.commands:
                    if spec.type == "schedule_maintenance":
                        jobs[spec.id] = {"spec": spec, "started": False}
                        engine.on_event(
                            spec.robot, ts, "ack", command_id=spec.id, status="accepted"
                        )
                    else:
                        jobs.pop(spec.target, None)
            next_plan = ts + 3600.0
        for job_id, job in list(jobs.items()):
            spec = job["spec"]
            if not job["started"] and ts >= spec.start_ts:
                job["started"] = True
                engine.on_event(
                    spec.robot,
                    ts,
                    "maintenance_started",
                    command_id=job_id,
                    component=spec.component,
                )
            if job["started"] and ts >= spec.start_ts + spec.duration_s:
                del jobs[job_id]
                counts["jobs_done"] += 1
                engine.on_event(
                    spec.robot,
                    ts,
                    "maintenance_finished",
                    command_id=job_id,
                    component=spec.component,
                )
                for r in robots:
                    if r.robot.id == spec.robot and r.part.name == spec.component:
                        r.op_s = 0.0
        if not calendar.is_production(ts):
            continue
        for r in robots:
            if ts < r.down_until:
                continue
            robot, part = r.robot, r.part
            r.op_s += interval
            wear = max(0.0, (r.op_s - r.onset_s) / r.life_s) ** 1.5
            if wear >= 1.0:
                counts["failures"] += 1
                engine.on_event(robot.id, ts, "failure", component=part.name)
                r.down_until = ts + part.unplanned_repair_h * 3600
                engine.on_event(robot.id, r.down_until, "repair_finished", component=part.name)
                r.op_s = 0.0
                continue
            s = robot.kind.sensors
            slow = 0.31 * wear if part.kind == "gripper" else 0.0
            k = (k + 4) % 4096
            values = {
                "vibration_rms_mm_s": s.vibration_rms_mm_s.base
                + (4.2 * wear if part.kind == "reducer" else 0.0)
                + s.vibration_rms_mm_s.noise * noise[k],
                "temperature_c": s.temperature_c.base
                + (31.0 * wear if part.kind == "servo" else 0.0)
                + s.temperature_c.noise * noise[k + 1],
                "motor_current_a": s.motor_current_a.base * (1.0 + 0.2 * wear)
                + s.motor_current_a.noise * noise[k + 2],
                "cycle_time_s": s.cycle_time_s.base * (1.0 + slow)
                + s.cycle_time_s.noise * noise[k + 3],
            }
            if noise[k] > 2.9:
                values["vibration_rms_mm_s"] *= 20.0  # a spike
            if noise[k + 1] > 2.6:
                del values["temperature_c"]  # a dropout
            counts["readings"] += 1
            if record is not None:
                record.append((robot.id, ts, values))
            engine.on_reading(robot.id, ts, values)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--days", type=float, default=90.0, help="simulated calendar days")
    parser.add_argument("--policy", default="predictive")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    scenario = load_scenario()

    print(f"closed loop, {args.days:g} days, {args.policy}…", file=sys.stderr)
    recorded: list[Reading] = []
    engine = MaintenanceEngine(scenario, args.policy)
    start = time.process_time()
    counts = closed_loop(scenario, engine, args.days, args.seed, recorded)
    with_engine_s = time.process_time() - start
    start = time.process_time()
    closed_loop(scenario, NullEngine(), args.days, args.seed, None)
    loop_only_s = time.process_time() - start

    print(f"replaying {len(recorded):,} readings…", file=sys.stderr)
    fresh = MaintenanceEngine(scenario, args.policy)
    on_reading = fresh.on_reading
    start = time.process_time()
    for robot, ts, values in recorded:
        on_reading(robot, ts, values)
    replay_s = time.process_time() - start

    n = counts["readings"]
    print(
        json.dumps(
            {
                "bench": "engine",
                "policy": args.policy,
                "days": args.days,
                "robots": len(scenario.robots),
                **counts,
                "readings_per_s": round(len(recorded) / replay_s),
                "us_per_reading": round(replay_s / len(recorded) * 1e6, 3),
                "engine_us_per_reading": round((with_engine_s - loop_only_s) / n * 1e6, 3),
                "alarms_raised": engine.fleet.alarm_book.raised_total,
                "work_orders": len(engine.work_orders()),
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
