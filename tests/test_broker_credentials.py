"""Credentials, password hashes and the ACL policy, without a broker."""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from brokers import BrokerHandle, robot_topic
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from broker_config.acl import (
    SERVICE_USER,
    acl_table,
    participant_name,
    permits,
    render_mosquitto_acl,
    robot_rules,
)
from broker_config.credentials import (
    CredentialsError,
    ensure_credentials,
    load_credentials,
    merge_credentials,
    print_credentials,
)
from broker_config.passwords import (
    amqtt_hash,
    mosquitto_hash,
    render_mosquitto_passwd,
    verify_amqtt_hash,
    verify_mosquitto_hash,
)
from contract.codec import decode_message
from simulator.model.scenario import load_scenario

ROBOTS = ["weld-01", "weld-02"]
PREFIXES = {r: f"factory/plant-1/body-shop/line-1/{r}" for r in ROBOTS}
PARTICIPANTS = ["p01", "p02"]
REPO = Path(__file__).resolve().parent.parent


def _topic(robot: str, channel: str, site: str = "plant-1") -> str:
    return f"factory/{site}/body-shop/line-1/{robot}/{channel}"


def _counter() -> Callable[[], str]:
    numbers = itertools.count(1)
    return lambda: f"password-{next(numbers)}"


# --- ACL policy ---------------------------------------------------------------------------


def test_robot_rules() -> None:
    rules = {(r.access, r.topic) for r in robot_rules("weld-01", PREFIXES["weld-01"])}
    prefix = PREFIXES["weld-01"]
    assert rules == {
        *(("write", f"{prefix}/{c}") for c in ("birth", "state", "telemetry", "event", "truth")),
        ("read", f"{prefix}/cmd"),
        ("read", f"factory/{prefix.split('/')[1]}/pace"),  # its site's pace (contract/pace.py)
        ("read", f"factory/{prefix.split('/')[1]}/ingest"),  # the service's ingest progress
    }


def test_a_robots_prefix_must_be_its_own() -> None:
    with pytest.raises(ValueError, match="not a topic prefix"):
        robot_rules("weld-01", PREFIXES["weld-02"])


def test_participants_are_numbered() -> None:
    assert [participant_name(n) for n in (1, 7, 20)] == ["p01", "p07", "p20"]


@pytest.mark.parametrize(
    ("robot_id", "why"),
    [
        ("service", "reserved"),
        ("anonymous", "reserved"),
        ("instructor", "reserved"),
        ("p07", "reserved"),
        ("Weld 1", "may only hold"),
        ("a/b", "may only hold"),
        ("+", "may only hold"),
    ],
)
def test_robot_ids_that_cannot_be_users(robot_id: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        robot_rules(robot_id, f"factory/s/a/l/{robot_id}")


# (user, action, topic, allowed); user None is anonymous.
POLICY = [
    ("weld-01", "subscribe", "factory/plant-1/ingest", True),
    ("weld-01", "publish", "factory/plant-1/ingest", False),
    ("weld-01", "subscribe", "factory/another-site/ingest", False),
    ("service", "publish", "factory/plant-1/ingest", True),
    ("p01", "publish", "factory/plant-1/ingest", False),
    ("p01", "receive", "factory/plant-1/ingest", True),
    ("weld-01", "publish", _topic("weld-01", "telemetry"), True),
    ("weld-01", "publish", _topic("weld-01", "state", site="another-site"), False),
    ("weld-01", "publish", "factory/plant-1/zone/line-1/weld-01/state", False),
    ("weld-01", "publish", "factory/plant-1/body-shop/line-9/weld-01/state", False),
    ("weld-01", "publish", _topic("weld-02", "telemetry"), False),
    ("weld-01", "publish", _topic("weld-01", "cmd"), False),
    ("weld-01", "publish", "factory/plant-1/weld-01/telemetry", False),
    ("weld-01", "subscribe", _topic("weld-01", "cmd"), True),
    ("weld-01", "subscribe", _topic("weld-02", "cmd"), False),
    ("weld-01", "subscribe", "factory/+/+/+/+/cmd", False),
    ("weld-01", "subscribe", "factory/#", False),
    ("weld-01", "receive", _topic("weld-01", "cmd"), True),
    ("weld-01", "receive", _topic("weld-02", "cmd"), False),
    ("weld-01", "receive", _topic("weld-02", "state"), False),
    ("service", "subscribe", "factory/#", True),
    ("service", "receive", _topic("weld-02", "truth"), True),
    ("service", "publish", _topic("weld-02", "cmd"), True),
    ("service", "publish", _topic("weld-02", "state"), False),
    (None, "subscribe", "factory/#", True),
    (None, "subscribe", "factory/plant-1/+/+/+/state", True),
    (None, "subscribe", "#", False),
    (None, "receive", _topic("weld-01", "telemetry"), True),
    (None, "publish", _topic("weld-01", "telemetry"), False),
    (None, "publish", _topic("weld-01", "cmd"), False),
    (None, "receive", _topic("weld-01", "truth"), False),
    ("instructor", "receive", _topic("weld-01", "truth"), True),
    ("instructor", "publish", _topic("weld-01", "cmd"), True),
    ("instructor", "publish", _topic("weld-01", "telemetry"), False),
    ("p03", "subscribe", "factory/#", False),  # not a participant of this table
    ("p01", "subscribe", "factory/#", True),
    ("p01", "receive", _topic("weld-01", "telemetry"), True),
    ("p01", "receive", _topic("weld-01", "truth"), False),
    ("p01", "publish", "workshop/p01/hello", True),
    ("p01", "publish", "workshop/p01/a/b", True),
    ("p01", "publish", "workshop/p02/hello", False),
    ("p01", "receive", "workshop/p02/hello", True),
    ("p01", "publish", _topic("weld-01", "cmd"), False),
    ("p01", "publish", _topic("weld-01", "telemetry"), False),
    ("stranger", "subscribe", "factory/#", False),
    ("stranger", "publish", _topic("weld-01", "cmd"), False),
]


@pytest.mark.parametrize(("user", "action", "topic", "allowed"), POLICY)
def test_policy(user: str | None, action: str, topic: str, allowed: bool) -> None:
    assert permits(acl_table(PREFIXES, PARTICIPANTS), user, action, topic) is allowed  # type: ignore[arg-type]


def test_mosquitto_acl_file() -> None:
    text = render_mosquitto_acl(PREFIXES, PARTICIPANTS)
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    # Anonymous rules come before the first "user" line.
    assert lines[0] == "topic read factory/#"
    assert lines[1] == "topic deny factory/+/+/+/+/truth"
    assert lines[2] == "user service"
    blocks = text.split("\nuser ")[1:]
    names = [b.splitlines()[0] for b in blocks]
    assert names == ["service", "instructor", *PARTICIPANTS, *ROBOTS]
    weld_02 = blocks[-1].splitlines()
    assert f"topic read {PREFIXES['weld-02']}/cmd" in weld_02
    assert f"topic write {PREFIXES['weld-02']}/truth" in weld_02
    assert not any("weld-01" in line for line in weld_02)


# --- password hashes ------------------------------------------------------------------------


def test_mosquitto_hash_format_and_verification() -> None:
    encoded = mosquitto_hash("s3cret")
    assert re.fullmatch(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==", encoded)
    assert verify_mosquitto_hash("s3cret", encoded)
    assert not verify_mosquitto_hash("s3cret!", encoded)
    assert mosquitto_hash("s3cret") != encoded  # a fresh salt each time
    assert mosquitto_hash("x", salt=b"\0" * 12) == mosquitto_hash("x", salt=b"\0" * 12)


def test_our_verifier_reads_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not os.access(tool, os.X_OK):
        pytest.skip("mosquitto_passwd not installed")
    path = tmp_path / "passwd"
    subprocess.run([tool, "-c", "-b", str(path), "alice", "pa55"], check=True, timeout=10)
    encoded = path.read_text().strip().split(":", 1)[1]
    assert verify_mosquitto_hash("pa55", encoded)
    assert not verify_mosquitto_hash("pa56", encoded)


def test_amqtt_hash_is_argon2id_that_pwdlib_verifies() -> None:
    encoded = amqtt_hash("s3cret")
    assert encoded.startswith("$argon2id$")
    default_pwdlib = PasswordHash((Argon2Hasher(),))  # what amqtt's FileAuthPlugin builds
    assert default_pwdlib.verify("s3cret", encoded)
    assert not default_pwdlib.verify("wrong", encoded)
    assert verify_amqtt_hash("s3cret", encoded)


def test_password_file_lines() -> None:
    text = render_mosquitto_passwd({"weld-01": "a", "service": "b"})
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == ["service", "weld-01"]
    assert verify_mosquitto_hash("b", lines[0].split(":", 1)[1])
    with pytest.raises(ValueError, match="password file"):
        render_mosquitto_passwd({"a:b": "x"})


# --- credentials.json -----------------------------------------------------------------------


def test_ensure_creates_private_file_for_service_and_robots(tmp_path: Path) -> None:
    scenario = load_scenario()
    creds = ensure_credentials(tmp_path, scenario.robots)
    path = tmp_path / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(creds.passwords) == {SERVICE_USER, "instructor", *(r.id for r in scenario.robots)}
    assert len(set(creds.passwords.values())) == len(creds.passwords)  # all different
    assert all(len(p) >= 24 for p in creds.passwords.values())
    robot = scenario.robots[0]
    assert creds.prefixes[robot.id] == f"factory/{robot.site}/{robot.area}/{robot.line}/{robot.id}"
    assert load_credentials(tmp_path) == creds


def test_passwords_are_reused_and_missing_robots_added(tmp_path: Path) -> None:
    scenario = load_scenario()
    first = ensure_credentials(tmp_path, scenario.robots[:2])
    mtime = (tmp_path / "credentials.json").stat().st_mtime_ns
    again = ensure_credentials(tmp_path, scenario.robots[:2])
    assert again == first
    assert (tmp_path / "credentials.json").stat().st_mtime_ns == mtime  # not rewritten
    grown = ensure_credentials(tmp_path, scenario.robots)
    for username, password in first.passwords.items():
        assert grown.passwords[username] == password
    assert len(grown.passwords) == len(scenario.robots) + 2  # and service, instructor


def test_merge_is_pure_and_uses_the_injected_generator() -> None:
    merged = merge_credentials(None, {"weld-01": "factory/s/a/l/weld-01"}, _counter())
    assert merged.passwords == {
        "service": "password-1",
        "instructor": "password-2",
        "weld-01": "password-3",
    }
    with pytest.raises(CredentialsError, match="reserved"):
        merge_credentials(merged, {"service": "factory/s/a/l/service"})


def test_loose_file_mode_is_tightened(tmp_path: Path) -> None:
    scenario = load_scenario()
    ensure_credentials(tmp_path, scenario.robots)
    path = tmp_path / "credentials.json"
    path.chmod(0o644)
    ensure_credentials(tmp_path, scenario.robots)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_damaged_file_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "credentials.json").write_text('{"version": 1, "users": {"service": {}}}')
    with pytest.raises(CredentialsError, match="delete it and restart the broker"):
        load_credentials(tmp_path)


def test_print_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    creds = ensure_credentials(tmp_path, load_scenario().robots)
    print_credentials("weld-01", tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "username: weld-01"
    assert out[1] == f"password: {creds.passwords['weld-01']}"
    assert out[2].startswith("broker:   mqtt://127.0.0.1:1883")
    sub = next(line for line in out if line.startswith("mosquitto_sub "))
    assert f"-u weld-01 -P {creds.passwords['weld-01']}" in sub
    assert sub.endswith(f"-t {creds.prefixes['weld-01']}/cmd -v")
    assert any(line.startswith("mosquitto_pub ") and "/event" in line for line in out)


def test_printed_example_messages_follow_the_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_credentials(tmp_path, load_scenario().robots)
    for who, channel in (("service", "cmd"), ("paint-01", "event")):
        print_credentials(who, tmp_path)
        pub = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("mosquitto_pub"))
        args = shlex.split(pub)
        topic, message = args[args.index("-t") + 1], args[args.index("-m") + 1]
        parsed, _ = decode_message(topic, message.encode())
        assert parsed.channel == channel


def test_print_credentials_for_an_unknown_robot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_credentials(tmp_path, load_scenario().robots[:2])
    with pytest.raises(SystemExit) as exit_info:
        print_credentials("weld-99", tmp_path)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: no login 'weld-99' in ")
    assert "robot ids: weld-01, weld-02 (the scenario" in line
    assert "or 'service', 'instructor'" in line


def test_participants_are_made_kept_and_trimmed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    robots = load_scenario().robots[:1]
    made = ensure_credentials(tmp_path, robots, participants=3)
    assert made.participants == ["p01", "p02", "p03"]
    assert made.robot_ids == [robots[0].id]
    kept = ensure_credentials(tmp_path, robots)  # no --participants: as they were
    assert kept == made
    trimmed = ensure_credentials(tmp_path, robots, participants=2)
    assert trimmed.participants == ["p01", "p02"]
    assert trimmed.passwords["p02"] == made.passwords["p02"]
    print_credentials("p02", tmp_path)
    out = capsys.readouterr().out
    assert f"password: {made.passwords['p02']}" in out
    assert "-t 'workshop/p02/hello'" in out or "workshop/p02/hello" in out


def test_print_credentials_before_any_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        print_credentials("service", tmp_path)
    assert "start the broker first" in capsys.readouterr().err


# --- nothing secret is committed --------------------------------------------------------------

SECRET_PATTERNS = [
    re.compile(r"\$7\$\d+\$[A-Za-z0-9+/]{8,}"),  # Mosquitto PBKDF2 hash
    re.compile(r"\$6\$[^$\s]{1,16}\$[A-Za-z0-9./]{20,}"),  # sha512-crypt hash
    re.compile(r"\$argon2(?:id|i|d)\$v=\d+\$m=\d+"),  # Argon2 hash
    re.compile(r"\"password\"\s*:\s*\"[A-Za-z0-9_-]{20,}\""),  # a credentials.json entry
]


def test_no_generated_password_or_hash_is_tracked_by_git() -> None:
    if not (REPO / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=30
    ).stdout.split(b"\0")
    offenders: list[str] = []
    for name in filter(None, files):
        path = REPO / name.decode()
        if path.name in {"credentials.json", "passwd", "mosquitto.passwd", "amqtt.passwd"}:
            offenders.append(f"{name.decode()}: a credentials file")
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        offenders += [f"{name.decode()}: {p.pattern}" for p in SECRET_PATTERNS if p.search(text)]
    assert offenders == []


def test_the_secret_patterns_catch_what_we_generate() -> None:
    creds = merge_credentials(None, {"weld-01": "factory/s/a/l/weld-01"})
    generated = [
        mosquitto_hash("x"),
        amqtt_hash("x"),
        json.dumps(creds.to_json()),
    ]
    for text in generated:
        assert any(p.search(text) for p in SECRET_PATTERNS), text


def test_example_messages_carry_the_robots_simulated_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stamped with the robot's clock as the broker holds it, never the wall clock."""
    from broker_config.credentials import _example_lines

    creds = ensure_credentials(tmp_path, load_scenario().robots)
    asked: list[str] = []

    def clock(host: str, port: int, topic: str, cafile: str | None) -> float:
        asked.append(topic)
        return 1_800_000_000.0

    for who in ("service", "paint-01"):
        pub = next(x for x in _example_lines(creds, who, "h", 1, clock) if "mosquitto_pub" in x)
        message = orjson.loads(shlex.split(pub)[shlex.split(pub).index("-m") + 1])
        assert message["ts"] == 1_800_000_000.0
    assert asked[-1] == f"{creds.prefixes['paint-01']}/state"
    assert asked[0] == f"{creds.prefixes[creds.robot_ids[0]]}/state"


def test_without_a_robot_clock_the_printed_line_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ensure_credentials(tmp_path, load_scenario().robots)
    print_credentials("weld-01", tmp_path)  # no broker running from tmp_path
    out = capsys.readouterr().out.splitlines()
    note = out[out.index(next(x for x in out if x.startswith("mosquitto_pub"))) - 1]
    assert note.startswith("# weld-01's simulated time is unknown")
    pub = next(x for x in out if x.startswith("mosquitto_pub"))
    message = orjson.loads(shlex.split(pub)[shlex.split(pub).index("-m") + 1])
    assert message["ts"] == 0.0  # not the wall clock


@pytest.mark.integration
def test_the_robot_clock_is_read_from_its_retained_state(
    broker: BrokerHandle, topic_site: str
) -> None:
    from factory.robot_clock import robot_now_ts

    robot = broker.robot_ids[0]
    topic = robot_topic(topic_site, robot, "state")
    assert robot_now_ts(broker.host, broker.port, topic) is None  # nothing retained yet
    state = {"v": 1, "robot": robot, "ts": 1_790_000_123.5, "state": "RUNNING", "seq": 3}
    broker.publish(broker.client(robot), topic, orjson.dumps(state), retain=True)
    assert robot_now_ts(broker.host, broker.port, topic) == 1_790_000_123.5
