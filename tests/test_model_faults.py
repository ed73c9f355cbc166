"""Fault injection changes exactly its target: compared with the same seed without the fault."""

from typing import Any

import pytest
from simulator_support import (
    HOUR_S,
    acks,
    events,
    fault,
    one_robot,
    run,
    samples,
    schedule,
    states,
    truths,
)

from simulator.model.faults import OVERHEAT_C_PER_MAGNITUDE
from simulator.model.records import NetworkDrop, Record
from simulator.model.scenario import Scenario

ROBOT = "r-1"
SEED = 4
DAYS = 2
INJECT_S = 2 * HOUR_S  # Monday 08:00
DURATION_S = 4 * HOUR_S
SENSORS = ("vibration_rms_mm_s", "temperature_c", "motor_current_a", "cycle_time_s")


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return one_robot("welder", ROBOT)


@pytest.fixture(scope="module")
def baseline(scenario: Scenario) -> list[Record]:
    return run(scenario, SEED, DAYS)[0]


def faulted(scenario: Scenario, kind: str, **fields: Any) -> list[Record]:
    command = fault(ROBOT, "f-1", scenario.start_ts + INJECT_S, kind, **fields)
    return run(scenario, SEED, DAYS, [(INJECT_S, lambda f: f.handle(command))])[0]


def in_fault(scenario: Scenario, ts: float) -> bool:
    start = scenario.start_ts + INJECT_S
    return start <= ts < start + DURATION_S


def assert_only_sensor_differs(
    scenario: Scenario, baseline: list[Record], records: list[Record], sensor: str
) -> list[tuple[float, float | None, float]]:
    """Everything but ``sensor`` during the fault is identical; returns (ts, faulted, clean)."""
    assert truths(records) == truths(baseline)
    assert states(records) == states(baseline)
    extra = [e.body["kind"] for e in events(records) if e not in events(baseline)]
    assert extra == ["fault_started", "ack", "fault_cleared"]
    changed = []
    pairs = list(zip(samples(records), samples(baseline), strict=True))
    for mine, clean in pairs:
        assert mine.ts == clean.ts
        for other in SENSORS:
            if other != sensor:
                assert mine.values[other] == clean.values[other]
        if in_fault(scenario, mine.ts):
            changed.append((mine.ts, mine.values.get(sensor), clean.values[sensor]))
        else:
            assert mine.values == clean.values
    assert len(changed) >= 30
    return changed


def test_sensor_drift_ramps_only_its_sensor(scenario: Scenario, baseline: list[Record]) -> None:
    records = faulted(
        scenario, "sensor_drift", sensor="temperature_c", magnitude=2.0, duration_s=DURATION_S
    )
    start = scenario.start_ts + INJECT_S
    for ts, value, clean in assert_only_sensor_differs(
        scenario, baseline, records, "temperature_c"
    ):
        assert value == pytest.approx(clean + 2.0 * (ts - start) / HOUR_S)


def test_spike_makes_rare_outliers_on_its_sensor(
    scenario: Scenario, baseline: list[Record]
) -> None:
    records = faulted(
        scenario, "spike", sensor="vibration_rms_mm_s", magnitude=1.0, duration_s=DURATION_S
    )
    changed = assert_only_sensor_differs(scenario, baseline, records, "vibration_rms_mm_s")
    spikes = [(v, c) for _, v, c in changed if v != c]
    assert 0 < len(spikes) < len(changed) / 3
    span = scenario.kinds["welder"].danger_limits["vibration_rms_mm_s"] - 0.45
    assert all(v == pytest.approx(c + span) for v, c in spikes)


def test_stuck_sensor_repeats_one_value(scenario: Scenario, baseline: list[Record]) -> None:
    records = faulted(scenario, "stuck", sensor="motor_current_a", duration_s=DURATION_S)
    changed = assert_only_sensor_differs(scenario, baseline, records, "motor_current_a")
    assert {v for _, v, _ in changed} == {changed[0][2]}  # the first value after the start


def test_dropout_removes_its_sensor(scenario: Scenario, baseline: list[Record]) -> None:
    records = faulted(scenario, "dropout", sensor="cycle_time_s", duration_s=DURATION_S)
    changed = assert_only_sensor_differs(scenario, baseline, records, "cycle_time_s")
    assert {v for _, v, _ in changed} == {None}


def test_overheat_offsets_temperature(scenario: Scenario, baseline: list[Record]) -> None:
    records = faulted(scenario, "overheat", magnitude=2.0, duration_s=DURATION_S)
    changed = assert_only_sensor_differs(scenario, baseline, records, "temperature_c")
    for _, value, clean in changed:
        assert value == pytest.approx(clean + 2.0 * OVERHEAT_C_PER_MAGNITUDE)
    started = events(records, "fault_started")[0]
    assert started.body == {
        "kind": "fault_started",
        "fault": "overheat",
        "component": None,
        "sensor": "temperature_c",
        "command_id": "f-1",
    }


def test_network_drop_only_asks_the_transport(scenario: Scenario, baseline: list[Record]) -> None:
    records = faulted(scenario, "network_drop", duration_s=120.0)
    drops = [r for r in records if isinstance(r, NetworkDrop)]
    assert drops == [NetworkDrop(ROBOT, scenario.start_ts + INJECT_S, 120.0)]
    assert samples(records) == samples(baseline)
    assert truths(records) == truths(baseline)
    cleared = events(records, "fault_cleared")
    assert [e.ts for e in cleared] == [scenario.start_ts + INJECT_S + 120.0]


def test_accelerated_wear_speeds_only_its_component(scenario: Scenario) -> None:
    for seed in range(1, 60):  # a seed whose first failure is the reducer's, within the run
        clean, _ = run(scenario, seed, 30)
        command = fault(
            ROBOT,
            "f-2",
            scenario.start_ts + INJECT_S,
            "accelerated_wear",
            component="reducer-j2",
            magnitude=4.0,
            duration_s=24 * HOUR_S,
        )
        records, _ = run(scenario, seed, 30, [(INJECT_S, lambda f, c=command: f.handle(c))])
        failures = events(records, "failure")
        clean_failures = events(clean, "failure")
        if (
            failures
            and failures[0].body["component"] == "reducer-j2"
            and (not clean_failures or clean_failures[0].ts > failures[0].ts)
        ):
            break
    else:
        pytest.fail("no seed found whose reducer fails first")
    first_failure = failures[0].ts
    # Until the failure, only the reducer's truth, vibration and current differ.
    for mine, base in zip(truths(records), truths(clean), strict=False):
        if mine.ts >= first_failure:
            break
        assert mine.ts == base.ts
        for a, b in zip(mine.components, base.components, strict=True):
            if a.name != "reducer-j2" or mine.ts < scenario.start_ts + INJECT_S:
                assert a == b
    for mine, base in zip(samples(records), samples(clean), strict=False):
        if mine.ts >= first_failure:
            break
        assert mine.values["temperature_c"] == base.values["temperature_c"]
        assert mine.values["cycle_time_s"] == base.values["cycle_time_s"]
    # The truth stays exact under the fault: the first sample after the injection (fault
    # active, with a known end) predicted the failure to the second.
    after = next(t for t in truths(records) if t.ts > scenario.start_ts + INJECT_S)
    reducer = next(c for c in after.components if c.name == "reducer-j2")
    assert after.ts + reducer.rul_s == pytest.approx(first_failure, abs=1e-3)
    base_after = next(t for t in truths(clean) if t.ts == after.ts)
    clean_reducer = next(c for c in base_after.components if c.name == "reducer-j2")
    assert reducer.rul_op_s < clean_reducer.rul_op_s
    # The fault ends after its 24 h, or earlier when the reducer is replaced.
    cleared = [e for e in events(records, "fault_cleared") if e.body["command_id"] == "f-2"]
    replaced = next(e.ts for e in events(records, "repair_finished") if e.ts > first_failure)
    assert [e.ts for e in cleared] == [min(scenario.start_ts + INJECT_S + 24 * HOUR_S, replaced)]


def test_open_ended_fault_is_fixed_by_the_next_maintenance(scenario: Scenario) -> None:
    start = scenario.start_ts
    drift = fault(ROBOT, "f-3", start + INJECT_S, "sensor_drift", sensor="temperature_c")
    job = schedule(ROBOT, "wo-1", "gripper", start + 16 * HOUR_S, issued_ts=start)
    records, _ = run(
        scenario,
        SEED,
        DAYS,
        [(INJECT_S, lambda f: f.handle(drift)), (0.0, lambda f: f.handle(job))],
    )
    finished = events(records, "maintenance_finished")[0]
    assert [e.ts for e in events(records, "fault_cleared")] == [finished.ts]


@pytest.mark.parametrize(
    ("kind", "fields", "reason"),
    [
        ("stuck", {}, "stuck needs a sensor"),
        ("accelerated_wear", {}, "accelerated_wear needs a component"),
        ("accelerated_wear", {"component": "elbow"}, "unknown component 'elbow'"),
        ("overheat", {"sensor": "cycle_time_s"}, "overheat acts on temperature_c"),
    ],
)
def test_impossible_faults_are_rejected(
    scenario: Scenario, kind: str, fields: dict[str, Any], reason: str
) -> None:
    command = fault(ROBOT, "f-4", scenario.start_ts, kind, **fields)
    records, _ = run(scenario, SEED, 0.1, [(0.0, lambda f: f.handle(command))])
    [(status, why)] = acks(records, "f-4")
    assert status == "rejected"
    assert reason in str(why)
    assert not events(records, "fault_started")
