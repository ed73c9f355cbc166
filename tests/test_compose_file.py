"""``docker-compose.yml``, the ``Dockerfile`` and ``.dockerignore``, checked without Docker.

``docker-compose config`` validates the file (skipped if docker-compose is not installed, unless
``FACTORY_REQUIRE_BROKERS=1``, as in CI, which installs it) and must read it as
``tests/test_compose_model.py`` does. The static checks pin what cannot be seen without an engine:
health checks and start order, ports, no secrets, the volume ownership that lets the official
Mosquitto image read the password file, and the paths that tie init, broker and service together.
Whether the commands actually work is ``tests/test_compose_parity.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_compose_dockerfile import DOCKERFILE, load_dockerfile
from test_compose_model import COMPOSE_FILE, ROOT, Service, load_compose

from broker_config.config_files import DOCKER_ACL_FILE, DOCKER_PASSWORD_FILE

#: Host port = container port, as documented in docs/compose.md and the compose file's header.
DOCUMENTED_PORTS = {
    "mosquitto": [1883, 9001],
    "api": [8000],
    "prometheus": [9090],
    "grafana": [3000],
}
ONE_SHOT = "init"
#: Every optional profile of the file (tests/test_compose_emqx.py checks the emqx one).
PROFILES = ("emqx",)
OVERRIDES = {
    "MQTT_PORT": "11883",
    "API_PORT": "18000",
    "FACTORY_SCENARIO": "other",
    "FACTORY_SEED": "7",
    "FACTORY_POLICY": "reactive",
}


def compose_binary() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        if os.environ.get("FACTORY_REQUIRE_BROKERS") == "1":
            pytest.fail("docker-compose is not installed (apt install docker-compose)")
        pytest.skip("docker-compose is not installed (apt install docker-compose)")
    return found


def compose_config(env_overrides: dict[str, str], profiles: tuple[str, ...] = ()) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in OVERRIDES} | env_overrides
    chosen = [arg for profile in profiles for arg in ("--profile", profile)]
    result = subprocess.run(
        [compose_binary(), "-f", str(COMPOSE_FILE), *chosen, "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"docker-compose config refused the file:\n{result.stderr}"
    config: dict[str, Any] = yaml.safe_load(result.stdout)
    return config


def _ports(spec: dict[str, Any]) -> list[tuple[int, int]]:
    out = []
    for entry in spec.get("ports", []):
        if isinstance(entry, dict):
            out.append((int(entry["published"]), int(entry["target"])))
        else:
            host, _, container = str(entry).rpartition(":")
            out.append((int(host), int(container)))
    return out


def _volumes(spec: dict[str, Any]) -> list[tuple[str, str, bool]]:
    out = []
    for entry in spec.get("volumes", []):
        source, target, *mode = entry.split(":")
        out.append((source, target, bool(mode) and "ro" in mode[0]))
    return out


@pytest.mark.parametrize("env", [{}, OVERRIDES], ids=["defaults", "overrides"])
def test_docker_compose_reads_the_file_as_the_tests_do(env: dict[str, str]) -> None:
    # docker-compose 1.x lists the services of every profile, 2.x only the active ones.
    theirs = {n: s for n, s in compose_config(env)["services"].items() if not s.get("profiles")}
    ours = load_compose(env=env).services
    assert set(theirs) == set(ours)
    for name, service in ours.items():
        spec = theirs[name]
        assert spec.get("command") == service.command, name
        assert spec.get("entrypoint") == service.entrypoint, name
        assert {k: str(v) for k, v in (spec.get("environment") or {}).items()} == (
            service.environment
        ), name
        assert _ports(spec) == service.ports, name
        mounts = [(m.source, m.target, m.read_only) for m in service.mounts]
        assert _volumes(spec) == mounts, name
        assert set(spec.get("depends_on") or {}) == set(service.depends_on), name


def test_every_long_running_service_has_a_healthcheck() -> None:
    for name, service in load_compose().services.items():
        check = service.healthcheck
        assert check is not None, f"{name} has no healthcheck"
        if name == ONE_SHOT:
            assert check == {"disable": True}
            assert service.spec["restart"] == "no", "a one-shot job must not be restarted"
            continue
        assert check["test"][0] == "CMD", f"{name}: exec form, no shell needed in the image"
        assert {"interval", "timeout", "retries", "start_period"} <= set(check), name
        assert service.spec.get("restart", "unless-stopped") == "unless-stopped", name


def test_start_order_waits_for_completion_or_health() -> None:
    services = load_compose().services

    def reaches_init(name: str) -> bool:
        return name == ONE_SHOT or any(reaches_init(d) for d in services[name].depends_on)

    for name, service in services.items():
        assert reaches_init(name), f"{name} may start before init has made the credentials"
        for dependency, condition in service.depends_on.items():
            wanted = (
                "service_completed_successfully" if dependency == ONE_SHOT else "service_healthy"
            )
            assert condition == wanted, f"{name} → {dependency}: {condition}"


def test_ports_are_the_documented_ones() -> None:
    services = load_compose().services
    published = {name: [c for _, c in s.ports] for name, s in services.items() if s.ports}
    assert published == DOCUMENTED_PORTS
    for service in services.values():
        assert all(host == container for host, container in service.ports)
    docs = (ROOT / "docs" / "compose.md").read_text(encoding="utf-8")
    header = COMPOSE_FILE.read_text(encoding="utf-8").split("\nx-factory")[0]
    for port in (p for ports in DOCUMENTED_PORTS.values() for p in ports):
        assert f"localhost:{port}" in docs, f"docs/compose.md does not mention port {port}"
        assert f"localhost:{port}" in header, f"the compose file header misses port {port}"


_SECRET_KEY = re.compile(r"pass(word|wd)?|secret|token|api_?key|credential", re.IGNORECASE)
_HASH = re.compile(r"\$(7|6|argon2(id|i|d)?)\$")
_EMPTY_DEFAULT = re.compile(r"^\$\{[A-Z_]+:-\}$")


def _env_items(node: Any) -> list[tuple[str, str]]:
    """Every mapping entry with a scalar value, anywhere in a YAML tree."""
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                found += _env_items(value)
            else:
                found.append((str(key), "" if value is None else str(value)))
    elif isinstance(node, list):
        for item in node:
            found += _env_items(item)
    return found


def test_no_secret_is_written_into_the_stack_files() -> None:
    provisioning = [*(ROOT / "dashboards").glob("grafana/provisioning/*/*.yml")]
    yaml_files = [COMPOSE_FILE, ROOT / "dashboards/prometheus/prometheus.yml", *provisioning]
    for path in yaml_files:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))  # uninterpolated
        for key, value in _env_items(raw):
            if not _SECRET_KEY.search(key) or value == "":
                continue
            from_file = key.endswith("__FILE") and value.startswith("/")
            assert from_file or _EMPTY_DEFAULT.match(value), (
                f"{path.name}: {key} has a literal value; take it from the environment "
                "(${VAR:-} with an empty default) or from a generated file"
            )
    for path in [*yaml_files, DOCKERFILE, *sorted((ROOT / "docker").iterdir())]:
        text = path.read_text(encoding="utf-8")
        assert not _HASH.search(text), f"{path.name} holds a password hash"
        for match in re.finditer(
            r"(?i)\b\w*(password|secret|token)\w*\s*[=:](?![-?+])\s*(\S+)", text
        ):
            value = match[2].strip("\"'")
            assert value.startswith(("$", "/", "${")) or value in ("", "\\"), (
                f"{path.name}: {match[0]!r} looks like a literal secret"
            )


def test_image_services_use_pinned_official_images() -> None:
    images = {n: s.image for n, s in load_compose().services.items() if not s.builds_here}
    assert images == {
        "mosquitto": "eclipse-mosquitto:2.0",
        "prometheus": images["prometheus"],
        "grafana": images["grafana"],
    }
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", images["prometheus"] or "")
    assert re.fullmatch(r"grafana/grafana(-oss)?:\d+\.\d+\.\d+", images["grafana"] or "")


def _built(services: dict[str, Service]) -> list[Service]:
    return [s for s in services.values() if s.builds_here]


def test_volumes_are_declared_used_and_owned_by_the_image_user() -> None:
    compose = load_compose(profiles=PROFILES)
    used = {m.source for s in compose.services.values() for m in s.mounts if m.kind == "volume"}
    assert used == compose.volumes
    # A new named volume takes the owner of the directory it is first mounted on: every volume
    # our image mounts must be a directory the Dockerfile makes for the image user.
    run = " ".join(load_dockerfile().values("RUN"))
    made = {p for cmd in re.findall(r"install -d -o factory[^&]*", run) for p in cmd.split()}
    for service in _built(compose.services):
        for mount in service.mounts:
            assert mount.target in made, f"{service.name}: {mount.target} not made for the user"


def test_state_lives_in_a_volume_in_every_factory_service() -> None:
    compose = load_compose()
    image_state_dir = load_dockerfile().env["FACTORY_STATE_DIR"]
    for service in _built(compose.services):
        state_dir = service.environment["FACTORY_STATE_DIR"]
        assert state_dir == image_state_dir
        mount = service.mount_for(state_dir)
        assert mount is not None, f"{service.name}: the state dir is in no volume"
        assert (mount.kind, mount.source) == ("volume", "factory-state"), service.name
    assert compose.services["simulator"].mount_for(image_state_dir).read_only  # type: ignore[union-attr]


def _conf_paths(conf: Path) -> dict[str, str]:
    directives = {}
    for line in conf.read_text().splitlines():
        name, _, value = line.strip().partition(" ")
        if name and not name.startswith("#"):
            directives[name] = value.strip()
    return directives


def test_broker_config_paths_meet_what_init_writes(tmp_path: Path) -> None:
    services = load_compose().services
    broker, init = services["mosquitto"], services["init"]
    command = broker.command or []
    conf_path = command[command.index("-c") + 1]
    conf_mount = broker.mount_for(conf_path)
    assert conf_mount is not None
    assert conf_mount.kind == "bind"
    assert conf_mount.read_only
    assert Path(conf_mount.source) == ROOT / "broker_config" / "mosquitto.conf"
    directives = _conf_paths(Path(conf_mount.source))
    init_dir = init.environment["MOSQUITTO_CONFIG_DIR"]
    init_volume = init.mount_for(init_dir)
    assert init_volume is not None
    assert init_volume.target == init_dir
    for directive, written in (
        ("password_file", DOCKER_PASSWORD_FILE),
        ("acl_file", DOCKER_ACL_FILE),
    ):
        mount = broker.mount_for(directives[directive])
        assert mount is not None, f"{directive} is in no volume"
        assert mount.source == init_volume.source, f"{directive} is not where init writes"
        assert mount.read_only
        assert (
            broker.host_path(directives[directive], tmp_path) == tmp_path / mount.source / written
        )
    data = broker.mount_for(directives["persistence_location"])
    assert data is not None
    assert data.kind == "volume"
    assert not data.read_only


def test_services_reach_each_other_by_name_and_container_port() -> None:
    services = load_compose().services
    broker_port = DOCUMENTED_PORTS["mosquitto"][0]
    for name in ("api", "simulator"):
        command = services[name].command or []
        assert command[command.index("--broker") + 1] == f"mqtt://mosquitto:{broker_port}", name
    simulator_check = services["simulator"].healthcheck or {}
    assert simulator_check["test"][-1] == str(broker_port)
    api_command = services["api"].command or []
    api_port = api_command[api_command.index("--port") + 1]
    assert api_command[api_command.index("--host") + 1] == "0.0.0.0"
    api_check = " ".join((services["api"].healthcheck or {})["test"])
    assert f"127.0.0.1:{api_port}/readyz" in api_check
