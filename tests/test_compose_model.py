"""What ``docker-compose.yml`` says, read without Docker; with tests of the reading itself.

The other compose tests import it (``from test_compose_model import ...``)::

    compose = load_compose()                   # docker-compose.yml, ${VAR:-default} resolved
    compose.services["api"].command            # ["serve", "--host", ...]
    compose.services["api"].mounts             # [Mount(kind="volume", source="factory-state", ...)]
    compose.services["mosquitto"].host_path("/mosquitto/config/passwd", volumes_dir)

Interpolation follows the compose specification (``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-x}``,
``${VAR-x}``, ``${VAR:?msg}``, ``${VAR?msg}``, ``${VAR:+x}``, ``${VAR+x}``); YAML anchors and
``<<`` merges are YAML's own. ``tests/test_compose_file.py`` checks this reading against
``docker-compose config`` where that is installed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class InterpolationError(ValueError):
    pass


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with compose-style variables replaced from ``env``."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        value = env.get(name)
        present = value is not None and (value != "" or not (op or "").startswith(":"))
        if op in (":-", "-"):
            return value if present and value is not None else arg
        if op in (":?", "?"):
            if not present or value is None:
                raise InterpolationError(f"{name}: {arg or 'required'}")
            return value
        if op in (":+", "+"):
            return arg if present else ""
        return value or ""

    return _VARIABLE.sub(replace, text)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    return node


@dataclass(frozen=True)
class Mount:
    """One ``volumes:`` entry of a service."""

    kind: Literal["volume", "bind"]
    source: str  # a volume name, or an absolute host path for a bind mount
    target: str
    read_only: bool


def parse_mount(entry: str, base: Path) -> Mount:
    parts = entry.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"volume entry {entry!r} is not SOURCE:TARGET[:MODE]")
    source, target = parts[0], parts[1]
    read_only = len(parts) == 3 and "ro" in parts[2].split(",")
    if source.startswith((".", "/", "~")):
        return Mount("bind", str((base / source).resolve()), target, read_only)
    return Mount("volume", source, target, read_only)


def _within(path: str, root: str) -> bool:
    return (
        PurePosixPath(path) == PurePosixPath(root)
        or PurePosixPath(root) in PurePosixPath(path).parents
    )


@dataclass(frozen=True)
class Service:
    name: str
    spec: dict[str, Any]
    base: Path

    @property
    def image(self) -> str | None:
        return self.spec.get("image")

    @property
    def builds_here(self) -> bool:
        return "build" in self.spec

    @property
    def entrypoint(self) -> list[str] | None:
        value = self.spec.get("entrypoint")
        return value.split() if isinstance(value, str) else value

    @property
    def command(self) -> list[str] | None:
        value = self.spec.get("command")
        return value.split() if isinstance(value, str) else value

    @property
    def environment(self) -> dict[str, str]:
        value = self.spec.get("environment") or {}
        if isinstance(value, list):
            value = dict(item.split("=", 1) for item in value)
        return {str(k): "" if v is None else str(v) for k, v in value.items()}

    @property
    def mounts(self) -> list[Mount]:
        return [parse_mount(entry, self.base) for entry in self.spec.get("volumes") or []]

    @property
    def ports(self) -> list[tuple[int, int]]:
        """``(host, container)`` pairs."""
        pairs = []
        for entry in self.spec.get("ports") or []:
            host, _, container = str(entry).rpartition(":")
            pairs.append((int(host.rsplit(":", 1)[-1]), int(container)))
        return pairs

    @property
    def healthcheck(self) -> dict[str, Any] | None:
        return self.spec.get("healthcheck")

    @property
    def depends_on(self) -> dict[str, str | None]:
        """Service name → condition (``None`` for the short list form, which has none)."""
        value = self.spec.get("depends_on") or {}
        if isinstance(value, list):
            return dict.fromkeys(value)
        return {name: (spec or {}).get("condition") for name, spec in value.items()}

    def mount_for(self, container_path: str) -> Mount | None:
        """The mount that holds ``container_path`` (the deepest one, as in a container)."""
        holding = [m for m in self.mounts if _within(container_path, m.target)]
        return max(holding, key=lambda m: len(PurePosixPath(m.target).parts), default=None)

    def host_path(self, container_path: str, volumes_dir: Path) -> Path | None:
        """Where ``container_path`` lives outside the container; ``None`` if in no mount
        (then it is in the container's own layer, gone with the container)."""
        mount = self.mount_for(container_path)
        if mount is None:
            return None
        relative = PurePosixPath(container_path).relative_to(mount.target)
        root = Path(mount.source) if mount.kind == "bind" else volumes_dir / mount.source
        return root / relative if str(relative) != "." else root


@dataclass(frozen=True)
class Compose:
    spec: dict[str, Any]
    services: dict[str, Service]

    @property
    def volumes(self) -> set[str]:
        return set(self.spec.get("volumes") or {})


def load_compose(
    path: Path = COMPOSE_FILE,
    env: Mapping[str, str] | None = None,
    profiles: Iterable[str] = (),
) -> Compose:
    """The compose file with variables resolved from ``env`` (default: none set, so defaults).

    Its services are those ``docker compose up`` starts: without a ``profiles:`` key, plus
    those of the ``profiles`` given (``--profile emqx``)."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec = _interpolate_tree(raw, env or {})
    wanted = set(profiles)
    services = {
        name: Service(name, service, path.parent)
        for name, service in spec["services"].items()
        if not service.get("profiles") or wanted & set(service["profiles"])
    }
    return Compose(spec, services)


# --- tests of the reading itself (pure) ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:-x}", {}, "x"),
        ("${A:-x}", {"A": ""}, "x"),
        ("${A-x}", {"A": ""}, ""),
        ("${A:-x}", {"A": "y"}, "y"),
        ("${A}", {}, ""),
        ("$A/b", {"A": "a"}, "a/b"),
        ("$$SYS/#", {"SYS": "no"}, "$SYS/#"),
        ("${A:+set}", {"A": "1"}, "set"),
        ("${A:+set}", {"A": ""}, ""),
        ("${A+set}", {"A": ""}, "set"),
        ("${A:-}", {}, ""),
        ("a ${B:-1} ${C:-2}", {"C": "3"}, "a 1 3"),
    ],
)
def test_interpolation_follows_the_compose_rules(
    text: str, env: dict[str, str], expected: str
) -> None:
    assert interpolate(text, env) == expected


def test_a_required_variable_that_is_missing_is_an_error() -> None:
    with pytest.raises(InterpolationError, match="B: set B"):
        interpolate("${B:?set B}", {})
    assert interpolate("${B?x}", {"B": ""}) == ""


def test_mounts_resolve_container_paths_to_the_deepest_mount(tmp_path: Path) -> None:
    service = Service(
        "broker",
        {"volumes": ["conf:/etc/b:ro", "./b.conf:/etc/b/b.conf:ro", "data:/var/b"]},
        tmp_path,
    )
    volumes = tmp_path / "volumes"
    assert service.host_path("/etc/b/passwd", volumes) == volumes / "conf" / "passwd"
    assert service.host_path("/etc/b/b.conf", volumes) == tmp_path / "b.conf"
    assert service.host_path("/var/b", volumes) == volumes / "data"
    assert service.host_path("/var/bb/x", volumes) is None
    assert service.mounts[0] == Mount("volume", "conf", "/etc/b", True)
    assert not service.mounts[2].read_only
