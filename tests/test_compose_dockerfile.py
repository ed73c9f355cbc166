"""The ``Dockerfile``, ``.dockerignore`` and the image's helper scripts, checked without Docker.

``load_dockerfile()`` reads the final stage's instructions (the parity test needs its
``ENTRYPOINT``, ``CMD``, ``ENV`` and ``COPY`` destinations to run what a container runs)::

    dockerfile = load_dockerfile()
    dockerfile.argv(compose.services["api"])  # ["factory", "serve", ...]: entrypoint + command
    dockerfile.copies  # {"/usr/local/bin/factory-init": ROOT / "docker/init.sh", ...}
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from test_compose_model import ROOT, Service, interpolate

DOCKERFILE = ROOT / "Dockerfile"
#: The official eclipse-mosquitto image runs its broker as user "mosquitto", uid/gid 1883.
MOSQUITTO_IMAGE_UID = 1883


@dataclass(frozen=True)
class Dockerfile:
    """The instructions of the final stage, and the stages' base images."""

    bases: list[str]
    instructions: list[tuple[str, str]]  # (KEYWORD, arguments) of the final stage

    def values(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]

    def exec_form(self, keyword: str) -> list[str] | None:
        found = self.values(keyword)
        return json.loads(found[-1]) if found else None

    @property
    def copies(self) -> dict[str, Path]:
        """Destination in the image → source in the repository (``COPY`` from the context)."""
        out: dict[str, Path] = {}
        for args in self.values("COPY"):
            words = [w for w in args.split() if not w.startswith("--")]
            if any(w.startswith("--from") for w in args.split()):
                continue
            *sources, destination = words
            for source in sources:
                out[destination] = ROOT / source
        return out

    @property
    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for args in self.values("ENV"):
            for pair in re.findall(r"(\S+?)=(\S+)", args):
                out[pair[0]] = pair[1]
        return out

    def argv(self, service: Service) -> list[str]:
        """What a container of ``service`` (built from this Dockerfile) runs."""
        entrypoint = service.entrypoint
        if entrypoint is not None:  # as in Docker: a new entrypoint drops the image's CMD
            return [*entrypoint, *(service.command or [])]
        command = service.command
        return [*(self.exec_form("ENTRYPOINT") or []), *(command or self.exec_form("CMD") or [])]


def load_dockerfile(path: Path = DOCKERFILE) -> Dockerfile:
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    bases: list[str] = []
    stage: list[tuple[str, str]] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, rest = stripped.partition(" ")
        keyword, rest = keyword.upper(), " ".join(rest.split())
        if keyword == "ARG" and not bases and "=" in rest:
            name, value = rest.split("=", 1)
            args[name] = value
        if keyword == "FROM":
            bases.append(interpolate(rest.split()[0], args))
            stage = []
        stage.append((keyword, rest))
    return Dockerfile(bases, stage)


# --- tests ---------------------------------------------------------------------------------


def test_dockerfile_argv_follows_docker_entrypoint_rules(tmp_path: Path) -> None:
    dockerfile_path = tmp_path / "Dockerfile"
    dockerfile_path.write_text(
        "ARG BASE=python:3.11-slim\nFROM ${BASE} AS build\nRUN x\nFROM ${BASE}\n"
        "COPY docker/a.sh /usr/local/bin/a\nCOPY --from=build /opt /opt\n"
        'ENV A=1 \\\n    B=2\nENTRYPOINT ["tool"]\nCMD ["serve", "--port", "1"]\n'
    )
    dockerfile = load_dockerfile(dockerfile_path)
    assert dockerfile.bases == ["python:3.11-slim", "python:3.11-slim"]
    assert dockerfile.copies == {"/usr/local/bin/a": ROOT / "docker/a.sh"}
    assert dockerfile.env == {"A": "1", "B": "2"}
    plain = Service("s", {}, tmp_path)
    assert dockerfile.argv(plain) == ["tool", "serve", "--port", "1"]
    assert dockerfile.argv(Service("s", {"command": ["run"]}, tmp_path)) == ["tool", "run"]
    assert dockerfile.argv(Service("s", {"entrypoint": ["other"]}, tmp_path)) == ["other"]


def test_dockerfile_builds_a_small_non_root_image_of_the_factory_command() -> None:
    dockerfile = load_dockerfile()
    assert set(dockerfile.bases) == {"python:3.11-slim"}
    assert dockerfile.exec_form("ENTRYPOINT") == ["factory"]
    assert dockerfile.values("HEALTHCHECK"), "the service image has no HEALTHCHECK"
    assert dockerfile.values("USER") == ["factory"]
    run = " ".join(dockerfile.values("RUN"))
    assert f"--uid {MOSQUITTO_IMAGE_UID}" in run
    assert f"--gid {MOSQUITTO_IMAGE_UID}" in run
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "[test]" not in text
    assert ".[" not in text, "no optional extras in the image"
    for source in dockerfile.copies.values():
        assert source.exists(), f"COPY of a missing {source}"
        assert "tests" not in source.parts
        if source.parent.name == "docker":
            assert os.access(source, os.X_OK), f"{source} must be executable (git mode 755)"


def test_dockerignore_keeps_local_state_out_but_lets_the_build_in() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".factory", "**/credentials.json", "**/*.db", "tests"} <= ignored
    copied = re.findall(r"^COPY (?!--)(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert copied, "no COPY from the build context"
    for source in copied:
        assert source.split("/")[0] not in ignored, f"{source} is copied but .dockerignore'd"


def _mqtt_connected() -> ModuleType:
    path = ROOT / "docker" / "mqtt_connected.py"
    spec = importlib.util.spec_from_file_location("mqtt_connected", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_simulator_healthcheck_counts_established_connections_to_the_port() -> None:
    table = [
        "  sl  local_address rem_address   st tx_queue rx_queue",
        "   0: 0100007F:075B 00000000:0000 0A 00000000:00000000",  # listening on 1883
        "   1: 0200A8C0:9C40 0300A8C0:075B 01 00000000:00000000",  # established to :1883
        "   2: 0200A8C0:9C41 0300A8C0:075B 06 00000000:00000000",  # TIME_WAIT to :1883
        "   3: 0200A8C0:9C42 0300A8C0:1F40 01 00000000:00000000",  # established to :8000
    ]
    module = _mqtt_connected()
    assert module.established_to(1883, table) == 1
    assert module.established_to(8000, table) == 1
    assert module.established_to(9001, table) == 0
    assert module.main(["1", "--min", "0"]) == 0
    assert module.main(["1", "--min", "100000"]) == 1
