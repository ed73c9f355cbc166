"""Running compose services natively: the remapping rules of the parity test, and their tests.

:class:`NativeStack` turns a service of ``docker-compose.yml`` into a native process with the
command, environment and config a container of it would get, remapped by rules (never by hand):

- a path inside a container → the host directory of the mount holding it (a named volume is a
  directory per volume under a temp dir; a bind mount is the repository file). A path in no
  mount fails the test: in a container it would vanish with the container, or it is a typo;
- ``SERVICE:PORT``, ``localhost:PORT`` and a bare container port → 127.0.0.1 and an ephemeral
  port per container port; ``0.0.0.0`` → 127.0.0.1;
- a program the Dockerfile copies into the image → that file in the repository; ``factory``
  and ``python`` → this virtual environment's; ``mosquitto`` → the installed broker. The
  Mosquitto image's entrypoint only hands ``/mosquitto`` to its user and is not run. Run as
  root, Mosquitto would drop to the local ``mosquitto`` user, whose uid is not the image's
  1883, so ``user root`` is added then (the uid design is pinned in
  ``tests/test_compose_dockerfile.py``).

``tests/test_compose_parity.py`` starts the stack with it; ``tests/test_compose_remap.py`` tests
the rules without running anything. (No tests here: a helper named to sit with its tests.)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_compose_dockerfile import Dockerfile, load_dockerfile
from test_compose_model import Compose, Service, load_compose

from broker_config.embedded import find_mosquitto, free_port

NATIVE = ("init", "mosquitto", "api", "simulator")
VENV_BIN = Path(sys.executable).parent
#: PATH of the python:3.11-slim image, after the Dockerfile's own ENV PATH entries.
IMAGE_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOT_IN_A_MOUNT_OK = frozenset({"/dev/null"})
HEALTHY_TIMEOUT_S = 30.0
WAIT_S = 20.0
#: Docker's default grace period between SIGTERM and SIGKILL (compose ``stop_grace_period``).
DEFAULT_STOP_GRACE_S = 10.0


@dataclass
class NativeStack:
    compose: Compose
    dockerfile: Dockerfile
    root: Path
    ports: dict[int, int]  # container port → the ephemeral port standing in for it
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def create(cls, root: Path) -> NativeStack:
        """The stack of the repository's compose file, with a temp dir per named volume."""
        compose = load_compose()
        ports: dict[int, int] = {}
        for container_port in sorted({c for s in compose.services.values() for _, c in s.ports}):
            while (port := free_port()) in ports.values():
                pass
            ports[container_port] = port
        for directory in ("home", "logs", "native", *(f"volumes/{v}" for v in compose.volumes)):
            (root / directory).mkdir(parents=True, exist_ok=True)
        return cls(compose, load_dockerfile(), root, ports)

    @property
    def volumes_dir(self) -> Path:
        return self.root / "volumes"

    def volume(self, name: str) -> Path:
        assert name in self.compose.volumes
        return self.volumes_dir / name

    def url(self, container_port: int) -> str:
        return f"http://127.0.0.1:{self.ports[container_port]}"

    def log(self, name: str) -> Path:
        return self.root / "logs" / f"{name}.log"

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.log(name)
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # --- the remapping rules (module docstring) ----------------------------------------------

    def remap(self, service: Service, token: str) -> str:
        if token in NOT_IN_A_MOUNT_OK:
            return token
        if token.startswith("/"):
            host = service.host_path(token, self.volumes_dir)
            if host is None:
                pytest.fail(
                    f"{service.name}: {token} is in no volume or bind mount of the service: "
                    "in a container it would be lost with the container (or it is a typo)"
                )
            return str(host) + ("/" if token.endswith("/") else "")
        if token == "0.0.0.0":
            return "127.0.0.1"
        if token.isdigit() and int(token) in self.ports:
            return str(self.ports[int(token)])
        hosts = "|".join(map(re.escape, [*self.compose.services, "localhost", "127.0.0.1"]))

        def port(match: re.Match[str]) -> str:
            container_port = int(match[2])
            if container_port not in self.ports:
                return match[0]
            return f"127.0.0.1:{self.ports[container_port]}"

        return re.sub(rf"\b({hosts}|0\.0\.0\.0):(\d+)\b", port, token)

    def executable(self, name: str) -> str:
        copies = self.dockerfile.copies
        image_path = [p for p in self.dockerfile.env.get("PATH", "").split(":") if p != "$PATH"]
        for directory in (*image_path, *IMAGE_BASE_PATH.split(":")):
            candidate = name if "/" in name else f"{directory}/{name}"
            if candidate in copies:
                return str(copies[candidate])
        if name == "mosquitto":
            found = find_mosquitto()
        else:
            found = shutil.which(name, path=f"{VENV_BIN}:{IMAGE_BASE_PATH}")
        assert found, f"{name} is not installed here"
        return found

    def argv(self, service: Service, raw: list[str]) -> list[str]:
        return [self.executable(raw[0]), *(self.remap(service, t) for t in raw[1:])]

    def command(self, service: Service) -> list[str]:
        raw = self.dockerfile.argv(service) if service.builds_here else service.command
        assert raw, f"{service.name} has no command"
        argv = self.argv(service, raw)
        if service.name == "mosquitto":
            where = argv.index("-c") + 1
            argv[where] = str(self.mosquitto_conf(service, Path(argv[where])))
        return argv

    def env(self, service: Service) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}:{IMAGE_BASE_PATH}",
            "HOME": str(self.root / "home"),
            "LANG": "C.UTF-8",
        }
        image_env = self.dockerfile.env if service.builds_here else {}
        for key, value in (image_env | service.environment).items():
            if key != "PATH":
                env[key] = self.remap(service, value)
        return env

    def mosquitto_conf(self, service: Service, conf: Path) -> Path:
        """The mounted config with its listeners and paths remapped; every other line kept."""
        out = []
        for line in conf.read_text(encoding="utf-8").splitlines():
            name, _, value = line.strip().partition(" ")
            if name == "listener":
                out.append(f"listener {self.ports[int(value.split()[0])]} 127.0.0.1")
            elif name and not name.startswith("#") and value.startswith("/"):
                out.append(f"{name} {self.remap(service, value.strip())}")
            else:
                out.append(line)
        if os.geteuid() == 0:
            out.append("user root")
        path = self.root / "native" / "mosquitto.conf"
        path.write_text("\n".join(out) + "\n", encoding="utf-8")
        return path

    # --- running -----------------------------------------------------------------------------

    def run_once(self, name: str) -> str:
        service = self.compose.services[name]
        result = subprocess.run(
            self.command(service),
            env=self.env(service),
            cwd=self.root / "home",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def start(self, name: str) -> None:
        service = self.compose.services[name]
        with self.log(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                self.command(service),
                env=self.env(service),
                cwd=self.root / "home",
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def healthy(self, name: str) -> bool:
        service = self.compose.services[name]
        check = service.healthcheck or {}
        kind, *raw = check["test"]
        assert kind == "CMD"
        result = subprocess.run(
            self.argv(service, raw),
            env=self.env(service),
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode == 0

    def wait_healthy(self, name: str) -> None:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while not self.healthy(name):
            process = self.processes[name]
            if process.poll() is not None:
                pytest.fail(f"{name} exited ({process.returncode}):\n{self.tail(name)}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} not healthy in {HEALTHY_TIMEOUT_S} s:\n{self.tail(name)}")
            time.sleep(0.2)

    def stop(self, name: str) -> int | None:
        """What ``docker compose stop`` does: SIGTERM, then SIGKILL after the grace period.
        Returns the exit code, ``None`` if it had to be killed."""
        grace = str(self.compose.services[name].spec.get("stop_grace_period", ""))
        grace_s = float(grace.removesuffix("s")) if grace else DEFAULT_STOP_GRACE_S
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                return None
        return process.returncode

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)


def start_order(compose: Compose) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        for dependency in compose.services[name].depends_on:
            if dependency in NATIVE and dependency not in order:
                visit(dependency)
        if name not in order:
            order.append(name)

    for name in NATIVE:
        visit(name)
    return order
