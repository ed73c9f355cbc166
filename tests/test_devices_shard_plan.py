"""How ``factory simulate --processes P`` cuts the fleet (pure): every robot in exactly one
shard, lines whole, technicians at least one a shard and apportioned by robots, scripted faults
with their robot, and each robot's own records the same in its shard as in the whole factory
until it first needs a technician."""

from __future__ import annotations

from collections import defaultdict

import pytest
import simpy
from hypothesis import given
from hypothesis import strategies as st

from simulator.devices.shard_plan import (
    ROBOTS_PER_PROCESS,
    ShardError,
    choose_processes,
    default_processes,
    shard_scenarios,
    split_lines,
    split_technicians,
)
from simulator.model.factory import Factory
from simulator.model.records import EventRecord, Record
from simulator.model.scenario import Scenario, load_scenario

DAY_S = 86_400.0


def test_every_robot_in_exactly_one_shard_and_lines_whole() -> None:
    scenario = load_scenario("default?robots=100")
    for parts in range(1, len(scenario.lines) + 1):
        shards = shard_scenarios(scenario, parts)
        assert len(shards) == parts
        robots = [r.id for shard in shards for r in shard.robots]
        assert robots == [r.id for r in scenario.robots]  # each once, in file order
        whole = {line.id: line for line in scenario.lines}
        for shard in shards:
            assert shard.lines, "a shard without a line"
            for line in shard.lines:
                assert line == whole[line.id]  # every robot of the line, nothing else


def test_the_issue_fleet_splits_in_two_halves() -> None:
    shards = shard_scenarios(load_scenario("default?robots=24"), 2)
    assert [len(s.robots) for s in shards] == [12, 12]
    assert [line.id for line in shards[1].lines] == ["line-1-c1", "line-2-c1", "line-3-c1"]
    # The default's 2 technicians: one each.
    assert [s.maintenance.technicians for s in shards] == [1, 1]


def test_technicians_at_least_one_each_and_in_proportion() -> None:
    assert split_technicians(6, [1, 1, 10]) == [1, 1, 4]
    assert split_technicians(7, [5, 4, 3]) == [3, 2, 2]
    assert split_technicians(2, [5, 5, 5]) == [1, 1, 1]  # fewer than shards: one each
    scenario = load_scenario("large")  # 60 robots on 6 lines, 6 technicians
    assert [s.maintenance.technicians for s in shard_scenarios(scenario, 3)] == [2, 2, 2]


@given(
    sizes=st.lists(st.integers(1, 40), min_size=1, max_size=30),
    data=st.data(),
)
def test_split_lines_covers_every_line_once_in_order(sizes: list[int], data: st.DataObject) -> None:
    parts = data.draw(st.integers(1, len(sizes)))
    groups = split_lines(sizes, parts)
    assert len(groups) == parts
    assert [i for group in groups for i in group] == list(range(len(sizes)))
    assert all(len(group) >= 1 for group in groups)


@given(
    total=st.integers(1, 1000),
    robots=st.lists(st.integers(1, 500), min_size=1, max_size=40),
)
def test_technician_shares(total: int, robots: list[int]) -> None:
    shares = split_technicians(total, robots)
    assert len(shares) == len(robots)
    assert min(shares) >= 1
    assert sum(shares) == max(total, len(robots))
    fleet = sum(robots)
    for share, n in zip(shares, robots, strict=True):
        # Largest remainder: within one of the exact quota, or one where the quota is under one.
        assert share <= max(1, total * n / fleet + 1)


def test_scripted_faults_go_with_their_robot() -> None:
    # Lines cell-1 (faults on weld-01 and handle-01) and cell-1-c1.
    scenario = load_scenario("workshop?robots=6")
    first, second = shard_scenarios(scenario, 2)
    assert {f.robot for f in first.faults} == {"weld-01", "handle-01"}
    assert second.faults == []


def test_default_rule() -> None:
    assert default_processes(12, 3, 2) == 1  # the default scenario: one process
    assert default_processes(ROBOTS_PER_PROCESS, 100, 8) == 1
    assert default_processes(ROBOTS_PER_PROCESS + 1, 100, 8) == 2
    assert default_processes(1000, 250, 2) == 2  # no more than the cores
    assert default_processes(5000, 3, 16) == 3  # nor the lines
    assert choose_processes(load_scenario(), None) == 1


def test_a_process_count_the_fleet_cannot_take_is_refused() -> None:
    scenario = load_scenario()  # 3 lines
    assert choose_processes(scenario, 3) == 3
    with pytest.raises(ShardError, match="has 3 line"):
        choose_processes(scenario, 4)
    with pytest.raises(ShardError, match="≥ 1"):
        choose_processes(scenario, 0)


def _records(scenario: Scenario, days: float) -> dict[str, list[Record]]:
    out: dict[str, list[Record]] = defaultdict(list)
    env = simpy.Environment()
    factory = Factory(env, scenario, 7, lambda record: out[record.robot].append(record))
    factory.start()
    env.run(until=days * DAY_S)
    return out


def _until_first_failure(records: list[Record]) -> list[Record]:
    """A robot's records up to and including its first failure: until then it has never waited
    for a technician, so nothing of another robot can have changed them."""
    for index, record in enumerate(records):
        if isinstance(record, EventRecord) and record.kind == "failure":
            return records[: index + 1]
    return records


def test_a_robot_runs_the_same_in_its_shard_until_it_needs_a_technician() -> None:
    scenario = load_scenario("default?robots=24")
    whole = _records(scenario, days=20)
    shards = [_records(shard, days=20) for shard in shard_scenarios(scenario, 2)]
    compared = 0
    for robot in scenario.robots:
        (alone,) = [s[robot.id] for s in shards if robot.id in s]
        together = whole[robot.id]
        assert _until_first_failure(alone) == _until_first_failure(together), robot.id
        compared += len(_until_first_failure(together))
    assert compared > 1000
