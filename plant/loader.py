"""Reading a plant description from a scenario file (TOML), or a bundled one by name.

A scenario file holds one plant with the simulation's own parameters beside it (how parts wear,
sensor physics, the time factor…). The plant reader sets exactly those keys aside, so the service
and the engine can read any scenario file without the simulator, while a misspelt key is still
refused; :data:`SIMULATION_KEYS` names them, and a test keeps the list equal to what the
simulator's models add. :func:`load_plant` refuses a bad file with the path of each bad field.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from plant.description import Plant
from plant.fleet_size import FleetSizeError, scale_fleet, split_reference

DEFAULT_SCENARIO = "default"
#: "lines.0.robots.1.kind: why" — an error message that starts with the path of its field.
_PATHED_RE = re.compile(r"^[A-Za-z_][\w.-]*: ")

#: Keys a scenario file adds for the simulator, per section: the plant reader skips them.
SIMULATION_KEYS: dict[str, frozenset[str]] = {
    "scenario": frozenset({"start", "factor", "telemetry_batch", "heartbeat_s", "faults"}),
    "kind": frozenset({"cycle_time_cv", "scrap_probability", "initial_age_h_max", "physics"}),
    "component": frozenset({"onset_shape", "onset_scale_h", "threshold"}),
}

M = TypeVar("M", bound=BaseModel)


class PlantError(ValueError):
    """A scenario file that cannot be used; the message names each bad field and why."""


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        for problem in message.splitlines():
            if _PATHED_RE.match(problem):  # a model-level check names the field inside its model
                lines.append(f"  {where}.{problem}" if where else f"  {problem}")
            else:
                lines.append(f"  {where or '(top level)'}: {problem}")
    return "\n".join(lines)


def validate_scenario(model: type[M], data: dict[str, Any], source: str) -> M:
    """Validate ``data`` as ``model``; raise :class:`PlantError` listing every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise PlantError(f"{source} is not a valid scenario:\n{_format_errors(exc)}") from None


def read_scenario_file(path: str | Path | None = None) -> tuple[dict[str, Any], str]:
    """The parsed TOML of a scenario file, or of a bundled scenario (``None`` or its name), and
    a name for it in messages. A ``?robots=N`` suffix scales its fleet
    (:mod:`plant.fleet_size`)."""
    try:
        base, robots = split_reference(None if path is None else str(path))
    except FleetSizeError as exc:
        raise PlantError(str(exc)) from None
    if robots is not None:
        data, source = read_scenario_file(base)
        return scale_fleet(data, robots), f"{source} scaled to {robots} robots"
    if path is None or (isinstance(path, str) and "/" not in path and not path.endswith(".toml")):
        name = path or DEFAULT_SCENARIO
        bundled = resources.files("plant") / "scenarios" / f"{name}.toml"
        if not bundled.is_file():
            raise PlantError(f"no bundled scenario named {name!r}; give a path to a .toml file")
        text, source = bundled.read_text(encoding="utf-8"), f"bundled scenario {name!r}"
    else:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise PlantError(f"cannot read scenario {file}: {exc.strerror}") from None
        source = str(file)
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as exc:
        raise PlantError(f"{source} is not valid TOML: {exc}") from None


def _without(section: Any, keys: frozenset[str]) -> Any:
    if not isinstance(section, dict):
        return section  # the model says what is wrong with it
    return {k: v for k, v in section.items() if k not in keys}


def plant_part(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without the simulation's keys (the rest is validated as it stands)."""
    plant = {k: v for k, v in data.items() if k not in SIMULATION_KEYS["scenario"]}
    kinds = plant.get("kinds")
    if isinstance(kinds, dict):
        plant["kinds"] = {
            name: _without(kind, SIMULATION_KEYS["kind"]) for name, kind in kinds.items()
        }
        for kind in plant["kinds"].values():
            components = kind.get("components") if isinstance(kind, dict) else None
            if isinstance(components, list):
                kind["components"] = [_without(c, SIMULATION_KEYS["component"]) for c in components]
    return plant


def parse_plant(data: dict[str, Any], source: str = "<scenario>") -> Plant:
    """The plant described by a scenario given as a dict (simulation keys set aside)."""
    return validate_scenario(Plant, plant_part(data), source)


def load_plant(path: str | Path | None = None) -> Plant:
    """Load the plant of a scenario file, or of the packaged default (``None`` or a name)."""
    data, source = read_scenario_file(path)
    return parse_plant(data, source)
