"""MQTT logins of robots, service, instructor and participants, in ``STATE_DIR/credentials.json``.

Passwords are random (:mod:`secrets`), made on first use, and reused afterwards so that a broker
restart, the simulator and the service all agree; robots added to a scenario get a password the
next time credentials are ensured, and no existing password changes. The file is written
atomically with mode 0600 and never committed (``.factory/`` is git-ignored).

File format (version 1)::

    {"version": 1,
     "users": {"service": {"password": "..."},
               "instructor": {"password": "..."},
               "p01": {"password": "..."},
               "weld-01": {"password": "...",
                           "prefix": "factory/plant-1/body-shop/line-1/weld-01"}}}

``prefix`` is the robot's topic prefix in the scenario the credentials were last ensured for: the
ACL lets the robot publish under that prefix only, and the example command lines use it.
Participants ``p01`` … are made by ``--participants N`` (and trimmed to N by it).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from broker_config.acl import (
    INSTRUCTOR_USER,
    RESERVED_USERS,
    SERVICE_USER,
    is_participant,
    participant_name,
)
from broker_config.layout import DEFAULT_HOST, DEFAULT_PORT, credentials_path, read_running
from contract.topics import Channel, PlacedRobot, Topic, validate_name

FILE_VERSION = 1
FILE_MODE = 0o600
#: 18 random bytes = 144 bits, 24 URL-safe characters (no quoting needed in a shell).
PASSWORD_BYTES = 18


class CredentialsError(Exception):
    """Credentials cannot be read or have no entry for a user; the message says what to do."""


#: What credentials need of a robot: its id and its place in the topics (``plant.Robot``).
RobotLike = PlacedRobot


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


@dataclass(frozen=True)
class Credentials:
    """Username → password of every broker user, plus the robots' topic prefixes."""

    passwords: dict[str, str]
    prefixes: dict[str, str] = field(default_factory=dict)

    @property
    def robot_ids(self) -> list[str]:
        return sorted(
            u for u in self.passwords if u not in RESERVED_USERS and not is_participant(u)
        )

    @property
    def participants(self) -> list[str]:
        return sorted(u for u in self.passwords if is_participant(u))

    @property
    def robot_prefixes(self) -> dict[str, str]:
        """Robot id → its topic prefix (robots without a known prefix get no topic rules)."""
        return {r: self.prefixes[r] for r in self.robot_ids if r in self.prefixes}

    def get(self, who: str) -> tuple[str, str]:
        """``(username, password)`` of a robot id, ``service``, ``instructor`` or ``pNN``."""
        if who not in self.passwords:
            raise CredentialsError(f"no credentials for {who!r}")
        return who, self.passwords[who]

    def to_json(self) -> dict[str, Any]:
        users: dict[str, dict[str, str]] = {}
        for username in sorted(self.passwords):
            entry = {"password": self.passwords[username]}
            if username in self.prefixes:
                entry["prefix"] = self.prefixes[username]
            users[username] = entry
        return {"version": FILE_VERSION, "users": users}

    @classmethod
    def from_json(cls, data: Any) -> Credentials:
        if not isinstance(data, dict) or data.get("version") != FILE_VERSION:
            raise ValueError(f"not a version {FILE_VERSION} credentials file")
        passwords: dict[str, str] = {}
        prefixes: dict[str, str] = {}
        for username, entry in data["users"].items():
            if not isinstance(entry.get("password"), str) or not entry["password"]:
                raise ValueError(f"user {username!r} has no password")
            passwords[str(username)] = entry["password"]
            if isinstance(entry.get("prefix"), str):
                prefixes[str(username)] = entry["prefix"]
        return cls(passwords, prefixes)


def merge_credentials(
    existing: Credentials | None,
    robot_prefixes: Mapping[str, str],
    make_password: Callable[[], str] = new_password,
    participants: int | None = None,
) -> Credentials:
    """Existing passwords kept; a password made for service, instructor and each new robot.

    ``participants=N`` makes ``p01`` … ``pNN`` (keeping existing passwords) and removes higher
    numbers; ``None`` leaves the participants as they are.
    """
    passwords = dict(existing.passwords) if existing else {}
    prefixes = dict(existing.prefixes) if existing else {}
    for robot_id in robot_prefixes:
        validate_name(robot_id, "robot id")
        if robot_id in RESERVED_USERS or is_participant(robot_id):
            raise CredentialsError(f"robot id {robot_id!r} is reserved; rename the robot")
    wanted: list[str] = []
    if participants is not None:
        if participants < 0:
            raise CredentialsError("--participants must be 0 or more")
        wanted = [participant_name(n) for n in range(1, participants + 1)]
        for username in [u for u in passwords if is_participant(u) and u not in wanted]:
            del passwords[username]
    for username in (SERVICE_USER, INSTRUCTOR_USER, *wanted, *robot_prefixes):
        if username not in passwords:
            passwords[username] = make_password()
    prefixes.update(robot_prefixes)
    return Credentials(passwords, prefixes)


def load_credentials(state_dir: Path) -> Credentials | None:
    """The stored credentials, ``None`` if there are none yet."""
    path = credentials_path(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return Credentials.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CredentialsError(
            f"{path} is damaged ({exc}); delete it and restart the broker to make new passwords"
        ) from None


def save_credentials(state_dir: Path, credentials: Credentials) -> Path:
    """Write atomically with mode 0600 (the temporary file is created 0600, then renamed)."""
    path = credentials_path(state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(credentials.to_json(), out, indent=2)
        out.write("\n")
    os.chmod(tmp, FILE_MODE)  # in case the file existed with a looser mode
    os.replace(tmp, path)
    return path


def ensure_credentials(
    state_dir: Path,
    robots: Iterable[RobotLike],
    make_password: Callable[[], str] = new_password,
    participants: int | None = None,
) -> Credentials:
    """Load ``credentials.json``, add service, instructor, missing robots and participants."""
    existing = load_credentials(state_dir)
    prefixes = {robot.id: Topic.for_robot(robot, Channel.STATE).prefix for robot in robots}
    merged = merge_credentials(existing, prefixes, make_password, participants)
    if merged != existing:
        save_credentials(state_dir, merged)
    elif credentials_path(state_dir).stat().st_mode & 0o077:
        os.chmod(credentials_path(state_dir), FILE_MODE)
    return merged


#: Reads a robot's current simulated time from the broker: (host, port, its state topic, the CA
#: file of a TLS broker or None) → ts.
RobotClock = Callable[[str, int, str, str | None], float | None]


def _example_lines(
    credentials: Credentials,
    who: str,
    host: str,
    port: int,
    clock: RobotClock | None = None,
    cafile: str | None = None,
) -> list[str]:
    from contract.codec import encode
    from contract.payloads import CancelMaintenance, Parts

    username, password = credentials.get(who)
    auth = f"-h {host} -p {port} -u {shlex.quote(username)} -P {shlex.quote(password)}"
    if cafile is not None:
        auth += f" --cafile {shlex.quote(cafile)}"
    if is_participant(who):
        own = f"workshop/{who}/hello"
        return [
            f"mosquitto_sub {auth} -t 'factory/#' -t 'workshop/#' -v",
            f"mosquitto_pub {auth} -q 1 -t {shlex.quote(own)} -m 'hello from {who}'",
        ]
    commander = who in (SERVICE_USER, INSTRUCTOR_USER)
    robot = next(iter(credentials.robot_ids), "robot") if commander else who
    prefix = credentials.prefixes.get(robot)
    # Messages carry the robot's simulated time (a wall-clock ts is refused as far off it).
    known = clock(host, port, f"{prefix}/state", cafile) if clock and prefix else None
    scheme = "mqtt" if cafile is None else "mqtts"
    now = known if known is not None else 0.0
    unknown = (
        []
        if known is not None
        else [
            f"# {robot}'s simulated time is unknown (no retained state on "
            f'{scheme}://{host}:{port}): put it in "ts" below before publishing; as printed, '
            "the message is refused as stale"
        ]
    )
    if commander:
        cmd_topic = f"{credentials.prefixes.get(robot, f'factory/SITE/AREA/LINE/{robot}')}/cmd"
        # Harmless: the robot answers on its event channel that it has no such job to cancel.
        command = CancelMaintenance(
            v=1,
            robot=robot,
            ts=now,
            boot="manual",
            seq=1,
            id="manual-1",
            expires_ts=now + 86400.0,
            type="cancel_maintenance",
            target="no-such-job",
        )
        return [
            f"mosquitto_sub {auth} -t 'factory/#' -v",
            *unknown,
            f"mosquitto_pub {auth} -q 1 -t {shlex.quote(cmd_topic)} "
            f"-m {shlex.quote(encode(command).decode())}",
        ]
    prefix = prefix or f"factory/SITE/AREA/LINE/{who}"
    parts = Parts(v=1, robot=who, ts=now, boot="manual", seq=1, kind="parts", good=1, scrap=0)
    return [
        f"mosquitto_sub {auth} -t {shlex.quote(prefix + '/cmd')} -v",
        *unknown,
        f"mosquitto_pub {auth} -q 1 -t {shlex.quote(prefix + '/event')} "
        f"-m {shlex.quote(encode(parts).decode())}",
    ]


def print_credentials(who: str, state_dir: Path, clock: RobotClock | None = None) -> None:
    """``factory credentials ROBOT|service|instructor|pNN``: username, password and
    ready-to-paste commands, the example messages stamped with the robot's simulated time as
    ``clock`` reads it."""
    try:
        credentials = load_credentials(state_dir)
    except CredentialsError as exc:
        _fail(str(exc))
    if credentials is None:
        _fail(
            f"no credentials in {state_dir} yet; start the broker first "
            f"(`factory broker --state-dir {state_dir}`) or `factory up`"
        )
    if who not in credentials.passwords:
        ids = ", ".join(credentials.robot_ids) or "none"
        people = ", ".join(credentials.participants) or "none (start with --participants N)"
        _fail(
            f"no login {who!r} in {credentials_path(state_dir)}; "
            f"robot ids: {ids} (the scenario lists them under [[lines]]); participants: "
            f"{people}; or 'service', 'instructor'"
        )
    running = read_running(state_dir)
    host = running.host if running else DEFAULT_HOST
    port = running.port if running else DEFAULT_PORT
    url = running.url if running else f"mqtt://{host}:{port}"
    cafile = running.cafile if running else None
    username, password = credentials.get(who)
    print(f"username: {username}")
    print(f"password: {password}")
    note = "" if running else "  (no broker running from this state dir; default port)"
    print(f"broker:   {url}{note}")
    print()
    reader = clock if running else None
    for line in _example_lines(credentials, who, host, port, reader, cafile):
        print(line)


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)
