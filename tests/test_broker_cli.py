"""``factory broker`` and ``factory credentials`` as a user runs them, checked with the real
``mosquitto_sub`` / ``mosquitto_pub`` clients (Debian package mosquitto-clients)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from brokers import require_broker

from broker_config.embedded import free_port
from broker_config.layout import read_running
from broker_config.mosquitto_conf import template_text
from broker_config.passwords import verify_mosquitto_hash
from broker_config.probe import wait_for_broker
from contract.codec import decode_message
from contract.topics import matches

pytestmark = pytest.mark.integration

FACTORY = [sys.executable, "-m", "factory.cli"]
CLIENT_TIMEOUT_S = 5


def _tool(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None
    )
    if path is None:
        if os.environ.get("FACTORY_REQUIRE_BROKERS") == "1":
            pytest.fail(f"{name} is not installed (apt install mosquitto-clients)")
        pytest.skip(f"{name} is not installed (apt install mosquitto-clients)")
    return path


@dataclass
class Subscriber:
    """A background ``mosquitto_sub -v``; ``-W`` bounds its life if nothing arrives."""

    process: subprocess.Popen[str]
    topic_filter: str

    def lines_until(self, last: str, stop: bool = True) -> list[str]:
        """Lines printed up to and including ``last`` (or until it gives up)."""
        assert self.process.stdout is not None
        lines: list[str] = []
        while line := self.process.stdout.readline():
            lines.append(line.rstrip("\n"))
            if lines[-1] == last:
                break
        if stop:
            self.process.terminate()
            self.process.communicate(timeout=CLIENT_TIMEOUT_S)
        return lines

    def own(self, lines: list[str]) -> list[str]:
        """The lines whose topic matches the subscription (amqtt also sends others)."""
        return [line for line in lines if matches(self.topic_filter, line.split(" ", 1)[0])]


@dataclass
class RunningCli:
    impl: str
    process: subprocess.Popen[str]
    port: int
    state_dir: Path
    stdout_file: Path
    stderr_file: Path

    def output(self) -> str:
        return self.stdout_file.read_text() + self.stderr_file.read_text()

    def credentials(self, who: str) -> tuple[str, str]:
        data = json.loads((self.state_dir / "credentials.json").read_text())
        return who, data["users"][who]["password"]

    def sub(self, topic_filter: str, *auth: str) -> Subscriber:
        args = [_tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", str(self.port)]
        args += ["-t", topic_filter, "-v", "-q", "1", "-W", str(CLIENT_TIMEOUT_S), "-i", _cid()]
        process = subprocess.Popen([*args, *auth], stdout=subprocess.PIPE, text=True)
        return Subscriber(process, topic_filter)

    def pub(self, topic: str, message: str, *auth: str) -> subprocess.CompletedProcess[str]:
        args = [_tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(self.port), "-t", topic]
        args += ["-m", message, "-q", "1"]
        return subprocess.run(
            [*args, *auth], capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, check=False
        )

    def check(self, subscriber: Subscriber, lines: list[str], expected: list[str]) -> None:
        assert subscriber.own(lines) == expected
        if self.impl == "mosquitto":
            assert lines == expected  # only amqtt sends retained messages of other filters


def _cid() -> str:
    return f"cli-test-{uuid.uuid4().hex[:8]}"


def _login(who: str, password: str) -> tuple[str, ...]:
    return ("-u", who, "-P", password)


def _wait_for_banner(cli: RunningCli, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if "listening on" in cli.stdout_file.read_text() or cli.process.poll() is not None:
            break
        time.sleep(0.05)
    return wait_for_broker("127.0.0.1", cli.port, timeout_s=1.0)


@pytest.fixture(params=["mosquitto", "amqtt"])
def cli_broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningCli]:
    """``factory broker`` running in the foreground, as a user starts it."""
    impl: str = request.param
    require_broker(impl)
    port = free_port()
    state_dir = tmp_path / "state"
    command = [*FACTORY, "broker", "--port", str(port), "--impl", impl]
    # Files, not pipes: a foreground broker logs every connection, and a full pipe would block it.
    stdout_file, stderr_file = tmp_path / "stdout", tmp_path / "stderr"
    with stdout_file.open("w") as out, stderr_file.open("w") as err:
        process = subprocess.Popen(
            [*command, "--state-dir", str(state_dir)],
            stdout=out,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    cli = RunningCli(impl, process, port, state_dir, stdout_file, stderr_file)
    try:
        if not _wait_for_banner(cli):
            pytest.fail(f"factory broker did not come up: {cli.output()}")
        yield cli
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if (left := read_running(state_dir)) is not None:  # never leave a broker behind
            os.kill(left.pid, signal.SIGKILL)


def test_factory_broker_enforces_the_acl_for_real_clients(cli_broker: RunningCli) -> None:
    robot_a, robot_b = "weld-01", "weld-02"
    prefix_a, prefix_b = (f"factory/plant-1/body-shop/line-1/{r}" for r in (robot_a, robot_b))
    service = _login(*cli_broker.credentials("service"))
    login_a = _login(*cli_broker.credentials(robot_a))
    state_a = f"{prefix_a}/state"

    # A robot's retained state reaches an anonymous subscriber.
    assert cli_broker.pub(state_a, "running", *login_a, "-r").returncode == 0
    anonymous = cli_broker.sub(state_a)
    expected = [f"{state_a} running"]
    cli_broker.check(anonymous, anonymous.lines_until(expected[-1]), expected)

    # Forged messages (anonymous; robot A on B's topic; robot A moving itself to another
    # site/area/line) are dropped; a later allowed one arrives. amqtt may still hold the
    # anonymous subscription for up to a second and push the retained messages matching it to
    # every client that connects (docs/broker.md): the watcher reads other topics.
    birth_a = f"{prefix_a}/birth"
    assert cli_broker.pub(birth_a, "born", *login_a, "-r").returncode == 0
    watcher = cli_broker.sub("factory/+/+/+/+/birth", *service)
    seen = watcher.lines_until(f"{birth_a} born", stop=False)  # retained: it has subscribed
    publishes = [
        (f"{prefix_b}/birth", "forged by anonymous", ()),
        (f"{prefix_b}/birth", "forged by a", login_a),
        (f"factory/evil/zone/line-9/{robot_a}/birth", "moved by a", login_a),
        (birth_a, "born again", login_a),  # allowed, and after the forged ones
    ]
    for topic, message, login in publishes:
        assert cli_broker.pub(topic, message, *login).returncode == 0
    seen += watcher.lines_until(f"{birth_a} born again")
    cli_broker.check(watcher, seen, [f"{birth_a} born", f"{birth_a} born again"])

    # A wrong password is refused.
    refused = cli_broker.pub(state_a, "x", "-u", robot_a, "-P", "wrong")
    assert refused.returncode != 0
    assert "not authori" in refused.stderr.lower()


def test_credentials_lines_paste_and_work(cli_broker: RunningCli) -> None:
    """The mosquitto_sub/mosquitto_pub lines ``factory credentials`` prints run as printed."""
    state = ["--state-dir", str(cli_broker.state_dir)]
    service = subprocess.run(
        [*FACTORY, "credentials", "service", *state],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    robot = subprocess.run(
        [*FACTORY, "credentials", "weld-01", *state],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"broker:   mqtt://127.0.0.1:{cli_broker.port}" in robot.stdout
    sub_line = next(x for x in service.stdout.splitlines() if x.startswith("mosquitto_sub "))
    pub_line = next(x for x in robot.stdout.splitlines() if x.startswith("mosquitto_pub "))

    watcher = subprocess.Popen(
        [*shlex.split(sub_line), "-C", "1", "-W", str(CLIENT_TIMEOUT_S), "-q", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    # Publish until the watcher has it: the first publish can beat its SUBSCRIBE.
    for _ in range(20):
        subprocess.run(shlex.split(pub_line), check=True, timeout=CLIENT_TIMEOUT_S)
        try:
            out, _ = watcher.communicate(timeout=0.25)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        watcher.kill()
        pytest.fail("the printed mosquitto_pub line never reached the printed mosquitto_sub line")
    topic, payload = out.strip().split(" ", 1)
    parsed, event = decode_message(topic, payload.encode())
    assert (parsed.robot, event.robot) == ("weld-01", "weld-01")


def test_ctrl_c_stops_the_broker_and_frees_the_port(cli_broker: RunningCli) -> None:
    running = read_running(cli_broker.state_dir)
    assert running is not None
    assert running.port == cli_broker.port
    cli_broker.process.send_signal(signal.SIGINT)
    cli_broker.process.wait(timeout=15)
    out = cli_broker.stdout_file.read_text()

    assert cli_broker.process.returncode == 0, cli_broker.output()
    assert f"listening on mqtt://127.0.0.1:{cli_broker.port}" in out
    assert "stopping the broker" in out
    with pytest.raises(ProcessLookupError):
        os.kill(running.pid, 0)
    assert read_running(cli_broker.state_dir) is None
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", cli_broker.port))


def test_port_taken_is_one_line_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*FACTORY, "broker", "--port", str(port), "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert re.fullmatch(
        rf"error: port {port} is already in use \(another broker\?\); "
        r"pick another with --port N, e.g. --port (\d+)",
        line,
    ), line


def test_write_config_for_docker(tmp_path: Path) -> None:
    out_dir, state_dir = tmp_path / "config", tmp_path / "state"
    result = subprocess.run(
        [*FACTORY, "broker", "--write-config", str(out_dir), "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert sorted(p.name for p in out_dir.iterdir()) == ["acl", "emqx", "mosquitto.conf", "passwd"]
    assert sorted(p.name for p in (out_dir / "emqx").iterdir()) == ["acl.conf", "users.csv"]
    assert "wrote" in result.stdout
    assert (out_dir / "mosquitto.conf").read_text() == template_text()
    passwords = json.loads((state_dir / "credentials.json").read_text())["users"]
    lines = dict(line.split(":", 1) for line in (out_dir / "passwd").read_text().splitlines())
    assert lines.keys() == passwords.keys()
    assert all(verify_mosquitto_hash(passwords[u]["password"], h) for u, h in lines.items())
    assert (out_dir / "passwd").stat().st_mode & 0o777 == 0o600
    acl = (out_dir / "acl").read_text()
    assert "user weld-01\ntopic write factory/plant-1/body-shop/line-1/weld-01/birth" in acl


def test_write_config_carries_the_profile_and_refuses_tls(tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    out_dir = tmp_path / "config"
    base = [*FACTORY, "broker", "--write-config", str(out_dir), *state]
    subprocess.run([*base, "--security", "open", "--participants", "2"], check=True, timeout=30)
    acl = (out_dir / "acl").read_text()
    assert acl.splitlines()[1] == "topic readwrite #"
    passwd = (out_dir / "passwd").read_text()
    assert {"p01", "p02", "instructor"} <= {line.split(":")[0] for line in passwd.splitlines()}
    refused = subprocess.run(
        [*base, "--security", "tls"], capture_output=True, text=True, timeout=30, check=False
    )
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: the docker-compose broker has no TLS listener")
