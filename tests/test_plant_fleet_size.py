"""``--robots N``: one rule scales a scenario's fleet, so simulator, broker and service agree."""

from __future__ import annotations

import pytest

from broker_config.acl import render_mosquitto_acl
from factory.cli import _scaled
from plant import PlantError, load_plant
from plant.fleet_size import FleetSizeError, split_reference, with_robots
from simulator.model.scenario import load_scenario


def test_the_reference_carries_the_size() -> None:
    assert with_robots(None, 1000) == "default?robots=1000"
    assert with_robots("default?robots=5", 7) == "default?robots=7"
    assert with_robots("my.toml", None) == "my.toml"
    assert split_reference("x/y.toml?robots=12") == ("x/y.toml", 12)
    with pytest.raises(FleetSizeError, match="1 to"):
        with_robots(None, 0)


def test_copies_get_their_own_ids_and_lines_and_the_file_comes_first() -> None:
    plant = load_plant("default?robots=30")
    ids = [r.id for r in plant.robots]
    assert len(ids) == len(set(ids)) == 30
    original = [r.id for r in load_plant().robots]
    assert ids[: len(original)] == original  # copy 0 is the file as written
    assert "weld-01-c1" in ids
    assert {r.line for r in plant.robots if r.id.endswith("-c1")} == {
        "line-1-c1",
        "line-2-c1",
        "line-3-c1",
    }
    sizes: dict[str, int] = {}
    for robot in plant.robots:
        sizes[robot.line] = sizes.get(robot.line, 0) + 1
    assert max(sizes.values()) <= 5  # no line grows past the file's largest


def test_fewer_robots_than_the_file_keeps_the_first() -> None:
    assert [r.id for r in load_plant("default?robots=2").robots] == ["weld-01", "weld-02"]


def test_simulator_broker_and_service_read_the_same_fleet() -> None:
    reference = _scaled(None, 1000)
    simulated = [r.id for r in load_scenario(reference).robots]
    followed = [r.id for r in load_plant(reference).robots]
    assert simulated == followed
    assert len(simulated) == 1000
    plant = load_plant(reference)
    acl = render_mosquitto_acl(
        {r.id: f"factory/{r.site}/{r.area}/{r.line}/{r.id}" for r in plant.robots}
    )
    assert "user handle-01-c83" in acl  # the last robot has its login and rules


def test_a_bad_size_is_a_clear_error() -> None:
    with pytest.raises(PlantError, match="1 to"):
        load_plant("default?robots=0")
