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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from broker_config.acl import render_mosquitto_acl
from broker_config.amqtt_main import amqtt_config
from broker_config.credentials import Credentials, ensure_credentials
from broker_config.emqx_conf import (
    EMQX_ACL_FILE,
    EMQX_DIR,
    EMQX_USERS_FILE,
    render_emqx_acl,
    render_emqx_users,
)
from broker_config.layout import broker_dir
from broker_config.mosquitto_conf import LocalPaths, render_mosquitto_conf, template_text
from broker_config.passwords import render_amqtt_passwd, render_mosquitto_passwd
from broker_config.profiles import DEFAULT_SECURITY, Security
from broker_config.tls import TlsFiles
from plant import Plant

#: Names inside the docker config directory; ``mosquitto.conf`` refers to the first two.
DOCKER_PASSWORD_FILE = "passwd"
DOCKER_ACL_FILE = "acl"
PRIVATE_MODE = 0o600
#: EMQX runs as its image's user (uid 1000), not the 1883 that writes the volume: its files must
#: be readable by others. Only init and the brokers mount the volume; users.csv holds hashes.
EMQX_MODE = 0o644


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
    security: Security = DEFAULT_SECURITY,
    tls: TlsFiles | None = None,
    robot_prefixes: Mapping[str, str] | None = None,
    protocol_log: bool = False,
) -> BrokerFiles:
    """Render the config of a local ``impl`` broker into ``STATE_DIR/broker/``.

    ``port`` is the MQTT listener's port (a TLS one on the ``tls`` profile). Each robot's topic
    rules use its prefix from ``credentials`` (the scenario's) unless ``robot_prefixes`` says
    otherwise (the test harness lets robots publish under any site).
    """
    root = broker_dir(state_dir)
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = root / f"{impl}.log"
    output_file = root / f"{impl}.out"
    prefixes = credentials.robot_prefixes if robot_prefixes is None else dict(robot_prefixes)
    participants = credentials.participants
    if impl == "mosquitto":
        paths = LocalPaths(
            data_dir=data_dir,
            password_file=_write(
                root / "mosquitto.passwd",
                render_mosquitto_passwd(credentials.passwords),
                PRIVATE_MODE,
            ),
            acl_file=_write(
                root / "mosquitto.acl",
                render_mosquitto_acl(prefixes, participants),
                PRIVATE_MODE,
            ),
            log_file=log_file,
        )
        text = render_mosquitto_conf(
            port=port,
            bind=bind,
            ws_port=ws_port,
            paths=paths,
            log_stdout=log_stdout,
            security=security,
            tls=tls,
            protocol_log=protocol_log,
        )
        config = _write(root / "mosquitto.conf", text)
    else:
        password_file = _write(
            root / "amqtt.passwd", render_amqtt_passwd(credentials.passwords), PRIVATE_MODE
        )
        cfg = amqtt_config(
            port=None if security.tls else port,
            tls_port=port if security.tls else None,
            bind=bind,
            ws_port=ws_port,
            password_file=password_file,
            robot_prefixes=prefixes,
            participants=participants,
            security=security,
            tls=tls,
        )
        config = _write(root / "amqtt.json", json.dumps(cfg, indent=2) + "\n")
    return BrokerFiles(impl, config, log_file, output_file, data_dir)


def docker_acl(security: Security, credentials: Credentials) -> str:
    """The docker broker's ACL for a profile: the committed ``mosquitto.conf`` stays as it is.

    ``acl`` and ``tls`` get the policy of :mod:`broker_config.acl`; ``password`` lets every login
    read and write everything and an anonymous client (which may still connect: the health
    check does) nothing; ``open`` lets everyone read and write everything.
    """
    if security.topic_rules:
        return render_mosquitto_acl(credentials.robot_prefixes, credentials.participants)
    out = [f"# Security profile {security}: generated by broker_config/config_files.py."]
    out.append("topic readwrite #" if security is Security.OPEN else "# anonymous: nothing")
    for username in sorted(credentials.passwords):
        out += ["", f"user {username}", "topic readwrite #"]
    return "\n".join(out) + "\n"


def write_docker_config(
    directory: Path,
    state_dir: Path,
    scenario: Plant,
    security: Security = DEFAULT_SECURITY,
    participants: int | None = None,
) -> list[Path]:
    """``mosquitto.conf`` as committed, plus ``passwd`` and ``acl`` for ``scenario``, in DIR, and
    the same logins and policy for the EMQX nodes of the compose profile ``emqx`` in DIR/emqx
    (:mod:`broker_config.emqx_conf`).

    The passwords are those of ``STATE_DIR/credentials.json`` (made if missing), so robots and
    service started with the same state directory can log in to the docker broker. The profile
    lives in the ACL (:func:`docker_acl`); ``tls`` is refused: the committed config has no TLS
    listener (docs/compose.md).
    """
    if security.tls:
        raise ValueError(
            "the docker-compose broker has no TLS listener; use FACTORY_SECURITY=acl there, or "
            "`factory up --security tls` / `factory broker --security tls` (docs/compose.md)"
        )
    credentials = ensure_credentials(state_dir, scenario.robots, participants=participants)
    directory.mkdir(parents=True, exist_ok=True)
    return [
        _write(directory / "mosquitto.conf", template_text()),
        _write(
            directory / DOCKER_PASSWORD_FILE,
            render_mosquitto_passwd(credentials.passwords),
            PRIVATE_MODE,
        ),
        _write(directory / DOCKER_ACL_FILE, docker_acl(security, credentials), PRIVATE_MODE),
        _write(
            directory / EMQX_DIR / EMQX_USERS_FILE,
            render_emqx_users(credentials.passwords),
            EMQX_MODE,
        ),
        _write(
            directory / EMQX_DIR / EMQX_ACL_FILE,
            render_emqx_acl(credentials.robot_prefixes, credentials.participants, security),
            EMQX_MODE,
        ),
    ]
