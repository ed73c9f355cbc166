"""The architecture holds: the layer contracts in pyproject.toml catch a forbidden import, the
plant is readable without the simulator, and the scenario format stays one file with two parts.

The contracts themselves run in ``python3 dev.py test`` (``lint-imports``); these tests show that
they would fail on a violation, on a scratch copy of the source tree.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from contract.payloads import METRICS
from plant import SIMULATION_KEYS, Plant, PlantError, load_plant, parse_plant
from plant import spec as plant_spec
from plant.loader import read_scenario_file
from simulator.model import kinds as sim_kinds
from simulator.model.scenario import Scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "contract", "plant", "simulator", "engine", "experiment", "api", "broker_config", "dashboards",
    "factory",
]  # fmt: skip
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.fixture(scope="module")
def scratch_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_contracts_hold_on_the_tree_as_it_is(scratch_tree: Path) -> None:
    result = lint_imports(scratch_tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        ("engine/zones.py", "import simulator.model.robot", "the engine is pure"),
        ("api/live.py", "import experiment.runs", "api imports neither the simulator"),
        ("api/live.py", "import simulator.model.faults", "drive the model"),
        ("simulator/model/work.py", "import paho.mqtt.client", "the SimPy model imports no MQTT"),
        ("plant/spec.py", "import contract.payloads", "contract and plant stand apart"),
        ("simulator/model/degradation.py", "import simulator.model.robot", "no import circles"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    scratch_tree: Path, module: str, line: str, broken: str
) -> None:
    path = scratch_tree / module
    original = path.read_text(encoding="utf-8")
    path.write_text(f"{line}  # noqa\n{original}", encoding="utf-8")
    try:
        result = lint_imports(scratch_tree)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0
    report = result.stdout.replace("\n", " ")
    assert broken in report
    assert "BROKEN" in report


def test_no_module_at_the_top_of_api_shares_a_prefix_with_three_others() -> None:
    names = [p.stem for p in (ROOT / "api").glob("*.py") if p.stem != "__init__"]
    prefixes = Counter(name.split("_")[0] for name in names)
    assert max(prefixes.values()) <= 3, prefixes


def test_the_plant_reads_a_scenario_file_without_the_simulator() -> None:
    code = (
        "import sys, plant; p = plant.load_plant(); "
        "assert not [m for m in sys.modules if m.split('.')[0] in "
        "('simulator', 'experiment', 'api')], sorted(sys.modules); "
        "print(len(p.robots), p.robots[0].kind.danger_limits['temperature_c'])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    scenario = load_scenario()
    welder = scenario.robots[0]
    assert result.stdout.split() == [
        str(len(scenario.robots)),
        str(welder.kind.danger_limits["temperature_c"]),
    ]


def test_the_plant_of_a_scenario_is_the_scenario_less_the_simulation() -> None:
    scenario, plant = load_scenario(), load_plant()
    assert [r.model_dump(exclude={"kind"}) for r in plant.robots] == [
        r.model_dump(exclude={"kind"}) for r in scenario.robots
    ]
    assert plant.calendar == scenario.calendar
    assert plant.maintenance == scenario.maintenance
    # Explicit danger limits (all of the default scenario's) are the plant's; no derivation.
    for name, kind in plant.kinds.items():
        assert kind.danger_limits == scenario.kinds[name].danger_limits
    assert isinstance(scenario, Plant)


def test_simulation_keys_are_exactly_what_the_simulator_adds() -> None:
    def added(sim: type, base: type) -> frozenset[str]:
        return frozenset(sim.model_fields) - frozenset(base.model_fields)  # type: ignore[attr-defined]

    assert {
        "scenario": added(Scenario, Plant),
        "kind": added(sim_kinds.KindSpec, plant_spec.KindSpec),
        "component": added(sim_kinds.ComponentSpec, plant_spec.ComponentSpec),
    } == SIMULATION_KEYS


def test_the_plants_sensor_names_are_the_contracts_metrics() -> None:
    assert tuple(METRICS) == plant_spec.SENSOR_NAMES


def test_the_plant_reader_still_refuses_a_misspelt_key() -> None:
    data, _ = read_scenario_file()
    data["kinds"]["welder"]["sample_intervall_s"] = 300
    with pytest.raises(PlantError, match=r"kinds\.welder\.sample_intervall_s"):
        parse_plant(data, "test")
