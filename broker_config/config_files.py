"""Write a broker's files: password file, ACL and config, for a local run or for docker-compose.

A local run (``factory broker``, ``factory up``, the tests) gets them in ``STATE_DIR/broker/``,
rendered with its own port and paths. ``factory broker --write-config DIR`` writes the files the
docker-compose Mosquitto mounts as ``/mosquitto/config``. Either way the users are those of
``STATE_DIR/credentials.json`` after it has been ensured for the scenario's robots, so the
passwords the simulator and the service read from the state directory are the broker's.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from broker_config.acl import render_mosquitto_acl
from broker_config.amqtt_main import amqtt_config
from broker_config.credentials import Credentials, ensure_credentials
from broker_config.layout import broker_dir
from broker_config.mosquitto_conf import LocalPaths, render_mosquitto_conf, template_text
from broker_config.passwords import render_amqtt_passwd, render_mosquitto_passwd
from plant import Plant

#: Names inside the docker config directory; ``mosquitto.conf`` refers to the first two.
DOCKER_PASSWORD_FILE = "passwd"
DOCKER_ACL_FILE = "acl"
PRIVATE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """What a local broker process is started with."""

    impl: str
    config: Path
    log_file: Path
    output_file: Path
    data_dir: Path


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return path


def write_local_files(
    state_dir: Path,
    impl: str,
    credentials: Credentials,
    *,
    port: int,
    bind: str,
    ws_port: int | None,
    log_stdout: bool,
    protocol_log: bool = False,
) -> BrokerFiles:
    """Render the config of a local ``impl`` broker into ``STATE_DIR/broker/``."""
    root = broker_dir(state_dir)
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = root / f"{impl}.log"
    output_file = root / f"{impl}.out"
    robot_ids = credentials.robot_ids
    if impl == "mosquitto":
        paths = LocalPaths(
            data_dir=data_dir,
            password_file=_write(
                root / "mosquitto.passwd",
                render_mosquitto_passwd(credentials.passwords),
                PRIVATE_MODE,
            ),
            acl_file=_write(root / "mosquitto.acl", render_mosquitto_acl(robot_ids), PRIVATE_MODE),
            log_file=log_file,
        )
        text = render_mosquitto_conf(
            port=port,
            bind=bind,
            ws_port=ws_port,
            paths=paths,
            log_stdout=log_stdout,
            protocol_log=protocol_log,
        )
        config = _write(root / "mosquitto.conf", text)
    else:
        password_file = _write(
            root / "amqtt.passwd", render_amqtt_passwd(credentials.passwords), PRIVATE_MODE
        )
        cfg = amqtt_config(
            port=port, bind=bind, ws_port=ws_port, password_file=password_file, robot_ids=robot_ids
        )
        config = _write(root / "amqtt.json", json.dumps(cfg, indent=2) + "\n")
    return BrokerFiles(impl, config, log_file, output_file, data_dir)


def write_docker_config(directory: Path, state_dir: Path, scenario: Plant) -> list[Path]:
    """``mosquitto.conf`` as committed, plus ``passwd`` and ``acl`` for ``scenario``, in DIR.

    The passwords are those of ``STATE_DIR/credentials.json`` (made if missing), so robots and
    service started with the same state directory can log in to the docker broker.
    """
    credentials = ensure_credentials(state_dir, scenario.robots)
    directory.mkdir(parents=True, exist_ok=True)
    return [
        _write(directory / "mosquitto.conf", template_text()),
        _write(
            directory / DOCKER_PASSWORD_FILE,
            render_mosquitto_passwd(credentials.passwords),
            PRIVATE_MODE,
        ),
        _write(
            directory / DOCKER_ACL_FILE, render_mosquitto_acl(credentials.robot_ids), PRIVATE_MODE
        ),
    ]
