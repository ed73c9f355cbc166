"""Scenario files: the default loads; a bad file is refused with the path of each bad field."""

from pathlib import Path
from typing import Any

import pytest

from contract.topics import Channel, Topic
from simulator.model.scenario import (
    ISO10816_ZONES_MM_S,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)


def default_data() -> dict[str, Any]:
    return load_scenario().model_dump()


def refusal(data: dict[str, Any]) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "test.toml")
    return str(info.value)


def test_default_scenario_loads_with_no_arguments() -> None:
    scenario = load_scenario()
    assert scenario.name == "default"
    assert len(scenario.robots) == 12
    assert len({r.id for r in scenario.robots}) == 12
    weld = scenario.robot("weld-01")
    assert str(Topic.for_robot(weld, Channel.TELEMETRY)) == (
        "factory/plant-1/body-shop/line-1/weld-01/telemetry"
    )
    assert scenario.start_ts == 1767592800.0  # 2026-01-05T06:00:00Z, a Monday
    assert load_scenario("default") == scenario


def test_load_from_a_path(tmp_path: Path) -> None:
    source = Path(__file__).parents[1] / "plant" / "scenarios" / "default.toml"
    copy = tmp_path / "mine.toml"
    copy.write_text(source.read_text().replace('name = "default"', 'name = "mine"'))
    assert load_scenario(copy).name == "mine"
    assert load_scenario(str(copy)).name == "mine"


def test_missing_file_and_bad_toml_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(ScenarioError, match="no bundled scenario named 'nope'"):
        load_scenario("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)


def test_unknown_kind_names_the_robot_field() -> None:
    data = default_data()
    data["lines"][1]["robots"][2]["kind"] = "welder-xl"
    message = refusal(data)
    assert "lines.1.robots.2.kind: unknown kind 'welder-xl'" in message
    assert "known: handler, painter, welder" in message


def test_negative_duration_is_refused() -> None:
    data = default_data()
    data["kinds"]["welder"]["components"][0]["planned_repair_h"] = -2.0
    data["maintenance"]["technician_response_h"] = -1.0
    message = refusal(data)
    assert "kinds.welder.components.0.planned_repair_h: Input should be greater than 0" in message
    assert "maintenance.technician_response_h: Input should be greater than or equal to 0" in (
        message
    )


def test_bad_time_of_day_is_refused() -> None:
    data = default_data()
    data["calendar"]["breaks"][1]["end"] = "18:75"
    data["calendar"]["shifts"][0]["days"] = "mon-friday"
    message = refusal(data)
    assert "calendar.breaks.1.end: '18:75' is not a time of day HH:MM" in message
    assert "calendar.shifts.0.days: 'friday' is not a day" in message


def test_duplicate_robot_id_is_refused() -> None:
    data = default_data()
    data["lines"][2]["robots"][0]["id"] = "weld-01"
    data["lines"][1]["id"] = "line-1"
    message = refusal(data)
    assert "lines.2.robots.0.id: robot id 'weld-01' repeats" in message
    assert "lines.1.id: line id 'line-1' repeats" in message


def test_wrong_types_are_refused_not_converted() -> None:
    data = default_data()
    data["maintenance"]["technicians"] = "2"
    data["kinds"]["painter"]["cycle_time_s"] = "90"
    data["kinds"]["painter"]["scrap_probability"] = 1.5
    message = refusal(data)
    assert "maintenance.technicians: Input should be a valid integer" in message
    assert "kinds.painter.cycle_time_s: Input should be a valid number" in message
    assert "kinds.painter.scrap_probability: Input should be less than or equal to 1" in message


def test_unknown_fields_and_component_kinds_are_refused() -> None:
    data = default_data()
    data["kinds"]["handler"]["colour"] = "orange"
    data["kinds"]["handler"]["components"][0]["kind"] = "bearing"
    message = refusal(data)
    assert "kinds.handler.colour: Extra inputs are not permitted" in message
    assert "kinds.handler.components.0.kind: Input should be 'reducer', 'servo' or 'gripper'" in (
        message
    )


def test_every_problem_is_listed_at_once() -> None:
    data = default_data()
    data["factor"] = -1
    data["lines"][0]["robots"][0]["kind"] = "nope"
    data["start"] = "yesterday"
    message = refusal(data)
    assert message.startswith("test.toml is not a valid scenario:")
    assert "factor:" in message
    assert "start:" in message


def test_danger_limits_default_to_the_physics() -> None:
    data = default_data()
    welder = data["kinds"]["welder"]
    welder["limits"] = {"temperature_c": 60.0}
    welder["physics"] = {"cycle_time_rise": 0.5}
    kind = parse_scenario(data).kinds["welder"]
    assert kind.danger_limits == {
        "vibration_rms_mm_s": ISO10816_ZONES_MM_S["I"][2],
        "temperature_c": 60.0,
        "motor_current_a": pytest.approx(welder["sensors"]["motor_current_a"]["base"] * 1.3),
        "cycle_time_s": pytest.approx(welder["sensors"]["cycle_time_s"]["base"] * 1.5),
    }
    welder["vibration_class"] = "III"
    assert parse_scenario(data).kinds["welder"].vibration_at_failure_mm_s == 11.2


def test_a_limit_below_the_healthy_base_is_refused() -> None:
    data = default_data()
    data["kinds"]["welder"]["limits"] = {"temperature_c": 30.0, "pressure_bar": 3.0}
    message = refusal(data)
    assert "kinds.welder.limits.pressure_bar" in message
    data["kinds"]["welder"]["limits"] = {"temperature_c": 30.0}
    message = refusal(data)
    assert "kinds.welder.limits.temperature_c: danger level of temperature_c (30) must be" in (
        message
    )


def test_bad_load_levels_are_refused_with_the_field_and_the_reason() -> None:
    data = default_data()
    physics = data["kinds"]["handler"]["physics"]
    physics["load_levels"] = [0.0, 0.5, 1.2]
    message = refusal(data)
    assert "kinds.handler.physics.load_levels.0: Input should be greater than 0" in message
    assert "kinds.handler.physics.load_levels.2: Input should be less than or equal to 1" in message
    physics["load_levels"] = []
    assert "kinds.handler.physics.load_levels: List should have at least 1 item" in refusal(data)
    physics["load_levels"] = [0.5] * 9
    assert "kinds.handler.physics.load_levels: List should have at most 8 items" in refusal(data)
    physics["load_levels"] = [0.5]
    physics["load_change_h"] = 0.0
    assert "kinds.handler.physics.load_change_h: Input should be greater than 0" in refusal(data)


def test_loads_default_to_full_load_with_effects_that_vanish_there() -> None:
    data = default_data()
    data["kinds"]["handler"].pop("physics")
    physics = parse_scenario(data).kinds["handler"].physics
    assert physics.load_levels == [1.0]
    assert physics.load_change_h == 8.0
    assert (physics.current_load_share, physics.temperature_load_c) == (0.4, 4.0)
    assert physics.vibration_load_share == 0.15


def test_with_kind_overrides_changes_every_kind() -> None:
    scenario = load_scenario().with_kind_overrides(sample_interval_s=1.0)
    assert isinstance(scenario, Scenario)
    assert {k.sample_interval_s for k in scenario.kinds.values()} == {1.0}
    with pytest.raises(ScenarioError, match="sample_interval_s"):
        load_scenario().with_kind_overrides(sample_interval_s=-1.0)
