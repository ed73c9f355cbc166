"""The scripted fault timeline (``[[faults]]``) and the bundled scenarios: a scripted fault fires
at its time through the command path, deterministically; a bad entry is refused naming it; every
bundled scenario loads (as a plant too) and runs a short offline simulation."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from plant import load_plant
from plant.loader import read_scenario_file
from simulator.model.factory import run_offline
from simulator.model.records import EventRecord, Record
from simulator.model.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

BUNDLED = sorted(
    p.name.removesuffix(".toml")
    for p in (resources.files("plant") / "scenarios").iterdir()
    if p.name.endswith(".toml")
)


def with_faults(*faults: dict[str, Any]) -> Scenario:
    data, _ = read_scenario_file()
    data["faults"] = list(faults)
    return parse_scenario(data, "test")


def events(scenario: Scenario, seed: int, days: float) -> list[tuple[str, float, dict[str, Any]]]:
    found: list[tuple[str, float, dict[str, Any]]] = []

    def keep(record: Record) -> None:
        if isinstance(record, EventRecord) and record.body.get("kind") != "parts":
            found.append((record.robot, record.ts, dict(record.body)))

    run_offline(scenario, seed, days, keep)
    return found


def test_a_scripted_fault_fires_at_its_time_through_the_command_path() -> None:
    scenario = with_faults(
        {"at": 7200.0, "robot": "weld-02", "fault": "overheat", "magnitude": 20.0,
         "duration_s": 1800.0},
        {"at": "2026-01-05T07:30:00Z", "robot": "handle-01", "fault": "spike",
         "sensor": "vibration_rms_mm_s", "magnitude": 3.0, "duration_s": 600.0},
    )  # fmt: skip
    start = scenario.start_ts
    seen = events(scenario, seed=3, days=0.25)
    started = [(r, ts - start, b["fault"]) for r, ts, b in seen if b["kind"] == "fault_started"]
    assert started == [("handle-01", 5400.0, "spike"), ("weld-02", 7200.0, "overheat")]
    cleared = [(r, ts - start) for r, ts, b in seen if b["kind"] == "fault_cleared"]
    assert ("weld-02", 9000.0) in cleared
    acks = [b for _, _, b in seen if b["kind"] == "ack"]
    assert {(a["command_id"], a["status"]) for a in acks} == {("script-1", "done"),
                                                              ("script-2", "done")}  # fmt: skip


def test_the_same_scenario_and_seed_give_the_same_run_with_a_timeline() -> None:
    scenario = load_scenario("workshop")
    first = run_offline(scenario, 5, 0.3)
    assert json.dumps(first, sort_keys=True) == json.dumps(
        run_offline(scenario, 5, 0.3), sort_keys=True
    )
    # The workshop's story: weld-01's reducer, worn 150x as fast from 15 min, breaks in hours.
    failures = [
        (r, b["component"]) for r, _, b in events(scenario, 5, 0.3) if b["kind"] == "failure"
    ]
    assert ("weld-01", "reducer-j2") in failures


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({"at": 60.0, "robot": "weld-99", "fault": "overheat"}, r"faults\.0\.robot: unknown robot"),
        ({"at": 60.0, "robot": "weld-01", "fault": "accelerated_wear"},
         r"faults\.0: accelerated_wear needs a component"),
        ({"at": 60.0, "robot": "weld-01", "fault": "spike"}, r"faults\.0: spike needs a sensor"),
        ({"at": "2025-01-01T00:00:00Z", "robot": "weld-01", "fault": "overheat"},
         r"faults\.0\.at: .* is before the start"),
        ({"at": 60.0, "robot": "weld-01", "fault": "meltdown"}, r"faults\.0\.fault"),
        ({"at": 60.0, "robot": "weld-01", "fault": "overheat", "magntude": 2.0},
         r"faults\.0\.magntude"),
        ({"at": -5.0, "robot": "weld-01", "fault": "overheat"}, r"faults\.0\.at"),
        ({"at": "2026-01-05T08:00:00", "robot": "weld-01", "fault": "overheat"},
         r"faults\.0\.at.*must be UTC"),
    ],
)  # fmt: skip
def test_a_bad_timeline_entry_is_refused_naming_it(fault: dict[str, Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        with_faults(fault)


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_scenario_loads_and_runs_a_short_offline_simulation(name: str) -> None:
    scenario = load_scenario(name)
    plant = load_plant(name)  # the plant part sets [[faults]] aside
    assert [r.id for r in plant.robots] == [r.id for r in scenario.robots]
    summary = run_offline(scenario, 1, 0.1)
    assert summary["totals"]["samples"] > 0
    assert summary["totals"]["operating_s"] > 0


def test_the_bundled_scenarios_are_the_documented_sizes() -> None:
    assert {"default", "workshop", "large"} <= set(BUNDLED)
    workshop, large = load_scenario("workshop"), load_scenario("large")
    assert (len(workshop.robots), len(workshop.lines), workshop.factor) == (3, 1, 60.0)
    assert len(workshop.faults) >= 1
    assert (len(large.robots), len(large.lines)) == (60, 6)


def test_a_scaled_fleet_keeps_the_faults_of_the_robots_it_keeps() -> None:
    one = load_scenario("workshop?robots=1")
    assert [r.id for r in one.robots] == ["weld-01"]
    assert [f.robot for f in one.faults] == ["weld-01"]
    six = load_scenario("workshop?robots=6")
    assert len(six.robots) == 6
    assert [f.robot for f in six.faults] == ["weld-01", "handle-01"]
