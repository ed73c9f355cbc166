"""Hand-built factories for the engine tests (imported by the other test_engine_* modules),
and checks that they, and the bundled default scenario, are what the engine expects."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from engine import EngineConfig, KindConfig, MaintenanceEngine
from simulator.model.scenario import Scenario, load_scenario, parse_scenario

#: Monday 2026-01-05 06:00 UTC, the start of the first shift.
START = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)
START_TS = START.timestamp()
HOUR = 3600.0
DAY = 86400.0
#: Failure levels from the engine's own rules (the scenario's danger limits are tested apart),
#: and RUL from the trend models: these tests feed hand-made wear curves, not the gamma process
#: the welder's design data describe (the design-data model: tests/test_engine_wear_model.py).
CONFIG = EngineConfig(defaults=KindConfig(scenario_limits=False, design_wear=False))
HEALTHY = {
    "vibration_rms_mm_s": 0.45,
    "temperature_c": 41.0,
    "motor_current_a": 7.5,
    "cycle_time_s": 45.0,
}


def make_scenario(
    *,
    robots: int = 3,
    lines: int = 1,
    line_limit: int = 1,
    technicians: int = 2,
    safety_margin_h: float = 24.0,
    preventive_interval_h: float = 100.0,
    downtime: list[dict[str, Any]] | None = None,
) -> Scenario:
    """A small factory of welders (reducer-j2, servo-j1, gripper; class I) on ``lines`` lines,
    shifts Mon–Fri 06–22, downtime Mon–Fri 22–24 and Sat 06–14 unless ``downtime`` is given."""
    data = load_scenario().model_dump()
    data["start"] = START
    data["kinds"] = {"welder": data["kinds"]["welder"]}
    data["calendar"] = {
        "shifts": [{"days": "mon-fri", "start": "06:00", "end": "22:00"}],
        "breaks": [{"days": "mon-fri", "start": "12:00", "end": "12:30"}],
        "planned_downtime": downtime
        if downtime is not None
        else [
            {"days": "mon-fri", "start": "22:00", "end": "24:00"},
            {"days": "sat", "start": "06:00", "end": "14:00"},
        ],
    }
    data["maintenance"].update(
        technicians=technicians,
        safety_margin_h=safety_margin_h,
        preventive_interval_h=preventive_interval_h,
        technician_response_h=1.0,
    )
    data["lines"] = [
        {
            "id": f"line-{n + 1}",
            "area": "shop",
            "max_concurrent_maintenance": line_limit,
            "robots": [{"id": f"r{n + 1}{i + 1}", "kind": "welder"} for i in range(robots)],
        }
        for n in range(lines)
    ]
    return parse_scenario(data, "test scenario")


#: Sensor noise the feed adds by default (standard deviations), so no value repeats exactly.
NOISE = {
    "vibration_rms_mm_s": 0.02,
    "temperature_c": 0.3,
    "motor_current_a": 0.05,
    "cycle_time_s": 0.3,
}


def feed(
    engine: MaintenanceEngine,
    robot: str,
    start_ts: float,
    op_hours: float,
    values_at: Callable[[float], dict[str, float]],
    interval_s: float = 300.0,
    seed: int = 0,
    every_hour: Callable[[float, float], object] | None = None,
) -> float:
    """Readings every ``interval_s`` during production only, ``op_hours`` worth of them;
    ``values_at(op_h)`` gives the noise-free values, to which seeded noise is added;
    ``every_hour(ts, op_h)`` runs after each operating hour (a true result stops the feed).
    Returns the last reading's time."""
    rng = random.Random(seed)
    calendar = engine.scenario.shift_calendar
    ts, op_s, last = start_ts, 0.0, start_ts
    while op_s < op_hours * HOUR:
        if calendar.is_production(ts):
            values = {k: v + rng.gauss(0.0, NOISE[k]) for k, v in values_at(op_s / HOUR).items()}
            engine.on_reading(robot, ts, values)
            last = ts
            op_s += interval_s
            ts += interval_s
            if every_hour is not None and op_s % HOUR == 0 and every_hour(last, op_s / HOUR):
                break  # the callback asked to stop
        else:
            ts = calendar.next_change(ts)
    return last


def test_factory_scenario_is_what_the_tests_assume() -> None:
    scenario = make_scenario(robots=2, lines=2, line_limit=2)
    assert [r.id for r in scenario.robots] == ["r11", "r12", "r21", "r22"]
    assert [c.name for c in scenario.robots[0].kind.components] == [
        "reducer-j2",
        "servo-j1",
        "gripper",
    ]
    assert scenario.robots[0].kind.vibration_class == "I"
    assert scenario.shift_calendar.is_production(START_TS)
    assert not scenario.shift_calendar.is_production(START_TS + 16 * HOUR)  # Mon 22:00


def test_engine_accepts_the_bundled_default_scenario() -> None:
    scenario = load_scenario()
    for policy in ("reactive", "preventive", "predictive"):
        engine = MaintenanceEngine(scenario, policy)
        for robot in scenario.robots:
            assert {c.component for c in engine.health(robot.id).components} == {
                c.name for c in robot.kind.components
            }


def test_feed_counts_operating_time_only_in_production() -> None:
    engine = MaintenanceEngine(make_scenario(), "reactive", CONFIG)
    last = feed(engine, "r11", START_TS, 20.0, lambda _: HEALTHY)
    # 15.5 production hours on Monday (a break at 12:00), the rest on Tuesday from 06:00.
    assert last == START_TS + DAY + 4.5 * HOUR - 300.0
    # 240 readings: 239 gaps, two of them (the break, the night) capped at 2 sample intervals.
    assert engine.health("r11").operating_h == pytest.approx((237 * 300 + 2 * 600) / HOUR)
    assert engine.alarms() == []
