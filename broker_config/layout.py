"""Where the broker's files live in a state directory, and the note a running broker leaves.

::

    STATE_DIR/credentials.json        passwords of robots, service, instructor, participants (0600)
    STATE_DIR/tls/                    the local CA and server certificate (profile tls)
    STATE_DIR/broker/                 broker data: rendered config, password files, ACL,
                                      Mosquitto's persistence db, the broker log
    STATE_DIR/broker/running.json     impl, pid and ports of the broker started from this dir

``running.json`` lets ``factory credentials`` print a ready-to-paste command line with the right
port. It is advice, not truth: a broker killed hard leaves it behind, so readers check the pid.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CREDENTIALS_FILE = "credentials.json"
BROKER_DIR = "broker"
RUNNING_FILE = "running.json"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1883


def credentials_path(state_dir: Path) -> Path:
    return Path(state_dir) / CREDENTIALS_FILE


def broker_dir(state_dir: Path) -> Path:
    return Path(state_dir) / BROKER_DIR


@dataclass(frozen=True, slots=True)
class RunningBroker:
    """What a broker started from a state directory wrote about itself."""

    impl: str
    pid: int
    host: str
    port: int
    ws_port: int | None = None
    security: str = "acl"
    #: The CA certificate clients verify the broker with (``tls`` profile only).
    cafile: str | None = None

    @property
    def url(self) -> str:
        scheme = "mqtts" if self.cafile is not None else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


def write_running(state_dir: Path, info: RunningBroker) -> None:
    path = broker_dir(state_dir) / RUNNING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(info)) + "\n", encoding="utf-8")


def clear_running(state_dir: Path, pid: int) -> None:
    """Remove ``running.json`` if it still describes the broker with ``pid``."""
    info = read_running(state_dir, check_alive=False)
    if info is not None and info.pid == pid:
        (broker_dir(state_dir) / RUNNING_FILE).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_running(state_dir: Path, *, check_alive: bool = True) -> RunningBroker | None:
    """The broker last started from ``state_dir``, or ``None`` if there is none (alive)."""
    path = broker_dir(state_dir) / RUNNING_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        info = RunningBroker(
            impl=str(data["impl"]),
            pid=int(data["pid"]),
            host=str(data["host"]),
            port=int(data["port"]),
            ws_port=None if data.get("ws_port") is None else int(data["ws_port"]),
            security=str(data.get("security", "acl")),
            cafile=None if data.get("cafile") is None else str(data["cafile"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if check_alive and not _alive(info.pid):
        return None
    return info
