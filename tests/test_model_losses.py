"""The work cycle's losses by hand: micro-stops, scrap from a worn gripper, set-up time."""

from __future__ import annotations

from typing import Any

from simulator.model.kinds import KindSpec
from simulator.model.scenario import load_scenario
from simulator.model.stats import RobotStats
from simulator.model.work import WorkCycle


def welder(**physics: Any) -> KindSpec:
    """The default welder (45 s cycles) without noise or base scrap, with the given losses."""
    kind = load_scenario().kinds["welder"]
    base = dict.fromkeys(
        ("scrap_rise", "micro_stop_probability", "micro_stop_rise", "micro_stop_s", "setup_min"),
        0.0,
    )
    new_physics = kind.physics.model_copy(update={**base, **physics})
    update = {"physics": new_physics, "cycle_time_cv": 0.0, "scrap_probability": 0.0}
    return kind.model_copy(update=update)


def cycle(kind: KindSpec, gripper: float = 0.0, worst: float = 0.0) -> WorkCycle:
    stats = RobotStats(failures={})
    return WorkCycle(kind, "1", lambda: (gripper, worst), stats)


def test_a_micro_stop_after_every_cycle_slows_throughput_by_hand() -> None:
    # New parts, no stops: 550 s make 12 parts (45 s each). Stops of 10 s after every cycle
    # (probability 1): 55 s a part, so 10 parts, the 11th under way.
    plain = cycle(welder())
    plain.run_for(550.0)
    assert plain.good == 12
    stopping = cycle(welder(micro_stop_probability=1.0, micro_stop_s=10.0))
    stopping.run_for(550.0)
    assert stopping.good == 10
    assert stopping.cycle_left_s == 45.0


def test_micro_stops_grow_with_the_most_worn_component() -> None:
    # With wear ratio r the chance is 0 + 1.0·r²: no stop when new, every cycle at r = 1.
    kind = welder(micro_stop_rise=1.0, micro_stop_s=10.0)
    new, worn = cycle(kind, worst=0.0), cycle(kind, worst=1.0)
    new.run_for(550.0)
    worn.run_for(550.0)
    assert (new.good, worn.good) == (12, 10)


def test_scrap_rises_with_gripper_wear() -> None:
    kind = welder(scrap_rise=1.0)
    new, worn = cycle(kind, gripper=0.0), cycle(kind, gripper=1.0)
    # The worn gripper is also slower (cycle_time_rise 0.4 at r = 1: 63 s cycles).
    new.run_for(45.0 * 100)
    worn.run_for(63.0 * 100)
    assert (new.good, new.scrap) == (100, 0)
    assert (worn.good, worn.scrap) == (0, 100)
    half = cycle(kind, gripper=0.5**0.5)  # r² = 0.5: half scrap, within sampling noise
    half.run_for(10_000 * 45.0 * (1 + 0.4 * 0.5))
    assert 0.47 < half.scrap / (half.good + half.scrap) < 0.53


def test_set_up_delays_the_next_part() -> None:
    work = cycle(welder())
    work.set_up(30 * 60.0)
    work.run_for(30 * 60.0 + 44.0)
    assert work.good == 0
    work.run_for(1.0)
    assert work.good == 1
