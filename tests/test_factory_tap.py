"""``factory tap``: formatting without a network, then watching both real brokers."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import pytest
from brokers import BrokerHandle, robot_topic

from broker_config.embedded import free_port
from contract.codec import encode
from contract.mqtt import parse_broker_url
from contract.payloads import RobotStateName, State
from contract.topics import Channel
from factory.tap import RAW_PREVIEW_BYTES, Received, format_message, run_tap

AT = datetime(2026, 1, 5, 6, 0, 1, 250000)


def _state(robot: str, state: RobotStateName = "RUNNING") -> bytes:
    payload = State(v=1, robot=robot, ts=1.0, boot="boot-1", seq=3, state=state, since=1.0)
    return encode(payload)


def test_format_valid_payload() -> None:
    topic = "factory/plant-1/body-shop/line-1/weld-01/state"
    line = format_message(Received(topic, _state("weld-01"), 1, True, AT))
    assert line.startswith("[dim]06:00:01.250[/] q1 [magenta]R[/] [cyan]")
    assert topic in line
    assert '[green]State[/] {"v":1,"robot":"weld-01"' in line
    assert '"state":"RUNNING"' in line


def test_format_rejected_payload_shows_reason_and_truncated_bytes() -> None:
    topic = "factory/plant-1/body-shop/line-1/weld-01/telemetry"
    garbage = b"{" + b"x" * 500
    line = format_message(Received(topic, garbage, 0, False, AT))
    assert "q0   [cyan]" in line
    assert "REJECTED bad_json" in line
    assert f"…(+{len(garbage) - RAW_PREVIEW_BYTES} bytes)" in line
    assert f"raw={garbage[:RAW_PREVIEW_BYTES]!r}…" in line


def test_format_robot_mismatch() -> None:
    topic = "factory/plant-1/body-shop/line-1/weld-02/state"
    line = format_message(Received(topic, _state("weld-01"), 1, False, AT))
    assert "REJECTED robot_mismatch" in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1884", ("127.0.0.1", 1884)),
        ("mqtt://broker", ("broker", 1883)),
        ("localhost:2000", ("localhost", 2000)),
    ],
)
def test_parse_broker_url(url: str, expected: tuple[str, int]) -> None:
    assert parse_broker_url(url) == expected


def test_parse_broker_url_refuses_other_schemes() -> None:
    with pytest.raises(ValueError, match=r"mqtt://HOST:PORT"):
        parse_broker_url("http://127.0.0.1:8000")


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_tap_prints_decoded_and_rejected_messages_and_ignores_others(
    broker: BrokerHandle, topic_site: str, capsys: pytest.CaptureFixture[str]
) -> None:
    robot = broker.robot_ids[0]
    # A live filter over everything: on amqtt the tap is then also sent retained messages from
    # outside its own filter when it connects, which it must ignore.
    watcher = broker.capture("factory/#", who="service")
    client = broker.client(robot)
    state = robot_topic(topic_site, robot, Channel.STATE)
    birth = robot_topic(topic_site, robot, Channel.BIRTH)
    elsewhere = robot_topic(f"{topic_site}x", robot, Channel.STATE)
    broker.publish(client, elsewhere, _state(robot, "IDLE"), retain=True)
    broker.publish(client, state, _state(robot), retain=True)
    broker.publish(client, birth, b"not json", retain=True)
    watcher.wait_for(lambda m: m.topic == birth)

    run_tap(f"factory/{topic_site}/#", broker.url, None, None, count=2, raw=False)

    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    by_topic = {next(t for t in (state, birth) if t in line): line for line in out}
    assert '"state":"RUNNING"' in by_topic[state]
    # amqtt's first copies come from its push on CONNECT (for the watcher's filter), at QoS 0,
    # before it has even read the tap's SUBSCRIBE.
    assert f" q{0 if broker.impl == 'amqtt' else 1} R " in by_topic[state]
    assert "REJECTED bad_json" in by_topic[birth]
    assert all(elsewhere not in line for line in out)


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_tap_raw_prints_payloads(
    broker: BrokerHandle, topic_site: str, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    robot = broker.robot_ids[0]
    topic = robot_topic(topic_site, robot, Channel.STATE)
    broker.publish(broker.client(robot), topic, b"as sent \xff", retain=True)

    run_tap(topic, broker.url, None, None, count=1, raw=True)

    assert capfdbinary.readouterr().out == b"as sent \xff\n"


@pytest.mark.integration
@pytest.mark.timeout(60)
def test_tap_without_broker_finds_the_one_running_from_its_state_dir(
    broker: BrokerHandle, topic_site: str
) -> None:
    """``factory up`` may have moved its broker off 1883; ``factory tap`` finds it anyway."""
    robot = broker.robot_ids[0]
    topic = robot_topic(topic_site, robot, Channel.STATE)
    broker.publish(broker.client(robot), topic, _state(robot), retain=True)
    result = subprocess.run(
        [sys.executable, "-m", "factory.cli", "tap", topic, "--count", "1",
         "--state-dir", str(broker.state_dir)],
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"connected to {broker.url}" in result.stderr  # which broker it found is said
    assert topic in result.stdout
    assert '"state":"RUNNING"' in result.stdout


@pytest.mark.integration
@pytest.mark.timeout(30)
def test_tap_with_a_wrong_password_says_what_to_do(
    broker: BrokerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_tap("factory/#", broker.url, "service", "wrong", count=1, raw=False)
    assert exit_info.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: the broker refused the login")
    assert "factory credentials service" in line


def test_tap_connection_refused_is_one_line() -> None:
    port = free_port()  # nothing listens there
    result = subprocess.run(
        [sys.executable, "-m", "factory.cli", "tap", "--broker", f"mqtt://127.0.0.1:{port}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot connect to mqtt://127.0.0.1:{port} (Connection refused); start a broker "
        "(`factory broker` or `factory up`) or point --broker at one"
    ]


def test_tap_refuses_a_bad_filter(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_tap("factory/#/x", "mqtt://127.0.0.1:1", None, None, count=1, raw=False)
    assert "'#' must be a whole last level" in capsys.readouterr().err
