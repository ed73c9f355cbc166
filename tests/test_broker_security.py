"""The security ladder, with real clients on Mosquitto and amqtt, one broker per profile.

Each broker here is started from the default scenario (robots pinned to their full prefixes
``factory/plant-1/…``) with four participants, unlike the session brokers of tests/brokers.py.
What gets in and what does not, per profile:

- ``open``: anonymous clients publish; ``password`` and up: a wrong password is refused;
- ``acl`` and up: a robot cannot publish as another robot, nor under another site/area/line;
  anonymous clients and participants never receive ``truth``; participants write only under
  ``workshop/pNN/``; the instructor reads truth and sends commands;
- ``tls``: plain TCP gets no MQTT answer, the local CA is accepted, another CA is refused;
- every profile: a client id of the service or a robot cannot be used to take their sessions.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator

import pytest
from brokers import BrokerHandle, ConnectRefused, handle_for, start_session_broker

from broker_config.probe import connack_code
from broker_config.profiles import Security
from broker_config.sessions import robot_client_id, session_client_id
from broker_config.tls import ensure_tls

pytestmark = pytest.mark.integration

NOT_AUTHORISED = 0x87
PARTICIPANTS = 4
LINE1 = "factory/plant-1/body-shop/line-1"
LINE2 = "factory/plant-1/body-shop/line-2"
#: Both brokers answer 3.1.1's "not authorised" (5), which paho 2 reports as 0x87; Mosquitto's
#: MQTT 5 answer to a refused anonymous client is 0x87 too, to a bad login 0x86 or 0x87.
REFUSED = {0x86, 0x87}


def _start(impl: str, security: Security, tmp: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    process = start_session_broker(
        impl,
        tmp.mktemp(f"{impl}-{security}"),
        security=security,
        participants=PARTICIPANTS,
        robot_prefixes=None,  # the scenario's full prefixes
    )
    handle = handle_for(process)
    try:
        yield handle
    finally:
        handle.close_clients()
        process.stop()


@pytest.fixture(scope="module", params=["mosquitto", "amqtt"])
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def acl_broker(impl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    yield from _start(impl, Security.ACL, tmp_path_factory)


@pytest.fixture(scope="module")
def open_broker(impl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    yield from _start(impl, Security.OPEN, tmp_path_factory)


@pytest.fixture(scope="module")
def password_broker(impl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    yield from _start(impl, Security.PASSWORD, tmp_path_factory)


@pytest.fixture(scope="module")
def tls_broker(impl: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerHandle]:
    yield from _start(impl, Security.TLS, tmp_path_factory)


def _marker() -> bytes:
    return f"marker-{os.urandom(4).hex()}".encode()


def _delivered(broker: BrokerHandle, publisher: str | None, topic: str, watcher: str) -> bool:
    """Does a message ``publisher`` sends on ``topic`` reach ``watcher`` (subscribed to #)?

    A marker the watcher may receive follows from the service on a ``cmd`` topic; same-publisher
    order does not hold across publishers, so the marker is sent only after the watcher has
    had the candidate or after the candidate's PUBACK (routing then precedes the marker's).
    """
    capture = broker.capture("factory/#", "workshop/#", who=watcher)
    payload = _marker()
    broker.publish(broker.client(publisher), topic, payload)
    marker, marker_topic = _marker(), f"{LINE1}/weld-01/cmd"
    service = broker.client("service")
    broker.publish(service, marker_topic, marker)
    broker.publish(service, marker_topic, marker)  # amqtt routes after PUBACK: one more hop
    capture.wait_for(lambda m: m.payload == marker, count=2)
    return any(m.payload == payload for m in capture.messages)


# --- open ---------------------------------------------------------------------------------------


def test_open_lets_anonymous_clients_write(open_broker: BrokerHandle) -> None:
    assert _delivered(open_broker, None, f"{LINE1}/weld-01/cmd", "service")
    assert _delivered(open_broker, None, f"{LINE2}/weld-05/truth", None)


# --- password -----------------------------------------------------------------------------------


def test_password_requires_a_login_and_checks_it(password_broker: BrokerHandle) -> None:
    broker = password_broker
    assert broker.connack("weld-01") == 0
    assert broker.connack("weld-01", password="wrong") in REFUSED
    assert broker.connack(None) in REFUSED
    # Logins only, no topic rules: a robot may publish as another one.
    assert _delivered(broker, "weld-01", f"{LINE2}/weld-05/telemetry", "service")


# --- acl ----------------------------------------------------------------------------------------


def test_acl_refuses_a_wrong_password_and_drops_anonymous_writes(
    acl_broker: BrokerHandle,
) -> None:
    assert acl_broker.connack("weld-01", password="wrong") in REFUSED
    assert acl_broker.connack("p03", password="wrong") in REFUSED
    assert not _delivered(acl_broker, None, f"{LINE1}/weld-01/state", "service")


def test_a_robot_publishes_only_under_its_own_full_prefix(acl_broker: BrokerHandle) -> None:
    assert _delivered(acl_broker, "weld-03", f"{LINE1}/weld-03/telemetry", "service")
    assert not _delivered(acl_broker, "weld-03", f"{LINE1}/weld-02/telemetry", "service")
    for elsewhere in (
        "factory/evil/body-shop/line-1",
        "factory/plant-1/zone/line-1",
        "factory/plant-1/body-shop/line-9",
    ):
        assert not _delivered(acl_broker, "weld-03", f"{elsewhere}/weld-03/telemetry", "service")


def test_truth_reaches_only_the_service_and_the_instructor(acl_broker: BrokerHandle) -> None:
    truth = f"{LINE2}/weld-05/truth"
    assert _delivered(acl_broker, "weld-05", truth, "service")
    assert _delivered(acl_broker, "weld-05", truth, "instructor")
    assert not _delivered(acl_broker, "weld-05", truth, None)
    assert not _delivered(acl_broker, "weld-05", truth, "p01")
    # Everything else under factory/ stays readable by anonymous clients and participants.
    assert _delivered(acl_broker, "weld-05", f"{LINE2}/weld-05/telemetry", None)
    assert _delivered(acl_broker, "weld-05", f"{LINE2}/weld-05/telemetry", "p01")


def test_a_participant_writes_only_under_its_own_workshop_topic(acl_broker: BrokerHandle) -> None:
    assert _delivered(acl_broker, "p03", "workshop/p03/hello", "p04")  # and p04 reads it
    assert not _delivered(acl_broker, "p03", "workshop/p04/hello", "instructor")
    assert not _delivered(acl_broker, "p03", f"{LINE1}/weld-01/cmd", "service")
    assert not _delivered(acl_broker, "p03", f"{LINE1}/weld-01/telemetry", "service")


def test_the_instructor_sends_commands(acl_broker: BrokerHandle) -> None:
    assert _delivered(acl_broker, "instructor", f"{LINE1}/weld-02/cmd", "service")
    assert not _delivered(acl_broker, "instructor", f"{LINE1}/weld-02/state", "service")


# --- sessions belong to logins ------------------------------------------------------------------


@pytest.mark.parametrize("thief", [None, "p02"])
def test_no_one_else_takes_the_services_session(acl_broker: BrokerHandle, thief: str) -> None:
    broker = acl_broker
    _, password = broker.credentials("service")
    own_id = session_client_id("factory-service", password)
    topic = f"{LINE1}/weld-01/telemetry"
    service = broker.capture(topic, who="service", client_id=own_id, clean_session=False)
    broker.disconnect(service.client)
    robot = broker.client("weld-01")
    readings = [f"reading-{i}".encode() for i in range(5)]
    for payload in readings:
        broker.publish(robot, topic, payload)
    witness = broker.capture(topic, who="instructor")
    broker.publish(robot, topic, b"last")
    witness.wait_for(lambda m: m.payload == b"last")  # routed: the session holds them now

    try:
        stolen = broker.capture(topic, who=thief, client_id="factory-service", clean_session=False)
    except ConnectRefused as refused:  # amqtt: the id belongs to the service's login
        assert (broker.impl, refused.reason in REFUSED) == ("amqtt", True)  # noqa: PT017
    else:  # Mosquitto cannot tie an id to a login, but the public id names no session
        assert broker.impl == "mosquitto"
        assert not broker.last_session_present
        broker.disconnect(stolen.client)
        broker.connack(thief, client_id="factory-service")  # a clean session: the thief's goes
    # The real id carries a tag made from the service's password: a thief cannot name it, and
    # on amqtt could not use it anyway.
    assert own_id.startswith("factory-service-")
    assert password not in own_id
    if broker.impl == "amqtt":
        with pytest.raises(ConnectRefused):
            broker.client(thief, client_id=own_id, clean_session=False)

    back = broker.capture(topic, who="service", client_id=own_id, clean_session=False)
    back.wait_for(lambda m: m.payload == b"last")
    assert [m.payload for m in back.messages] == [*readings, b"last"]  # 0 readings lost
    broker.disconnect(back.client)


def test_a_refused_login_cannot_wipe_a_session_on_amqtt(acl_broker: BrokerHandle) -> None:
    """A wrong password with the service's own id and a clean session: refused before lookup."""
    broker = acl_broker
    _, password = broker.credentials("service")
    own_id = session_client_id("factory-service", password) + "-wipe"
    topic = f"{LINE1}/weld-02/telemetry"
    service = broker.capture(topic, who="service", client_id=own_id, clean_session=False)
    broker.disconnect(service.client)
    broker.publish(broker.client("weld-02"), topic, b"kept")
    witness = broker.capture(topic, who="instructor")
    broker.publish(broker.client("weld-02"), topic, b"last")
    witness.wait_for(lambda m: m.payload == b"last")

    assert broker.connack("service", password="wrong", client_id=own_id) in REFUSED

    back = broker.capture(topic, who="service", client_id=own_id, clean_session=False)
    back.wait_for(lambda m: m.payload == b"last")
    assert [m.payload for m in back.messages] == [b"kept", b"last"]
    broker.disconnect(back.client)


def test_no_one_else_steals_a_robots_command(acl_broker: BrokerHandle) -> None:
    broker = acl_broker
    _, password = broker.credentials("weld-05")
    own_id = session_client_id(robot_client_id("weld-05"), password)
    cmd = f"{LINE2}/weld-05/cmd"
    robot = broker.capture(cmd, who="weld-05", client_id=own_id, clean_session=False)
    broker.disconnect(robot.client)
    witness = broker.capture(cmd, who="instructor")
    broker.publish(broker.client("service"), cmd, b"inject_fault")
    witness.wait_for(lambda m: m.payload == b"inject_fault")

    try:
        thief = broker.capture(cmd, client_id=robot_client_id("weld-05"), clean_session=False)
    except ConnectRefused:
        assert broker.impl == "amqtt"
    else:
        assert broker.impl == "mosquitto"
        assert not broker.last_session_present
        broker.disconnect(thief.client)
        assert not any(m.payload == b"inject_fault" for m in thief.unfiltered)
        broker.connack(None, client_id=robot_client_id("weld-05"))  # clean the thief's session

    back = broker.capture(cmd, who="weld-05", client_id=own_id, clean_session=False)
    back.wait_for(lambda m: m.payload == b"inject_fault")  # 0 commands stolen
    broker.disconnect(back.client)


# --- tls ----------------------------------------------------------------------------------------


def test_tls_refuses_plain_tcp_and_accepts_the_local_ca(tls_broker: BrokerHandle) -> None:
    broker = tls_broker
    assert broker.process.tls is not None
    assert broker.url.startswith("mqtts://")
    assert connack_code(broker.host, broker.port, timeout_s=2.0) is None  # plain MQTT: no answer
    assert broker.connack("weld-01") == 0  # over TLS, verified with ca.pem
    assert broker.connack("weld-01", password="wrong") in REFUSED
    assert not _delivered(broker, "weld-01", f"{LINE1}/weld-02/telemetry", "service")
    assert not _delivered(broker, None, f"{LINE1}/weld-01/state", "service")  # anonymous write


def test_tls_refuses_a_certificate_from_another_ca(
    tls_broker: BrokerHandle, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = ensure_tls(tmp_path_factory.mktemp("other-ca"))
    context = ssl.create_default_context(cafile=str(other.ca_pem))
    with (
        socket.create_connection((tls_broker.host, tls_broker.port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname=tls_broker.host).close()


def _mosquitto_sub(broker: BrokerHandle, *options: str) -> subprocess.CompletedProcess[str]:
    """``mosquitto_sub … -E``: exit 0 once the SUBACK is in, non-zero if refused or 5 s pass."""
    if shutil.which("mosquitto_sub") is None:
        pytest.skip("mosquitto_sub is not installed (apt install mosquitto-clients)")
    username, password = broker.credentials("p03")
    command = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-u", username]
    command += ["-P", password, "-t", "factory/#", "-E", "-W", "5", *options]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=20, start_new_session=True, check=False
    )


def test_mosquitto_sub_connects_with_the_ca_and_not_without(
    tls_broker: BrokerHandle, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assert tls_broker.process.tls is not None
    ok = _mosquitto_sub(tls_broker, "--cafile", str(tls_broker.process.tls.ca_pem))
    assert ok.returncode == 0, ok.stderr
    assert _mosquitto_sub(tls_broker).returncode != 0  # plain TCP
    other = ensure_tls(tmp_path_factory.mktemp("other-ca-sub"))
    refused = _mosquitto_sub(tls_broker, "--cafile", str(other.ca_pem))
    assert refused.returncode != 0


def _mosquitto_pub(broker: BrokerHandle, who: str | None, topic: str, payload: bytes) -> int:
    if shutil.which("mosquitto_pub") is None:
        pytest.skip("mosquitto_pub is not installed (apt install mosquitto-clients)")
    command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1"]
    if who is not None:
        command += ["-u", who, "-P", broker.credentials(who)[1]]
    command += ["-t", topic, "-m", payload.decode()]
    done = subprocess.run(command, timeout=20, start_new_session=True, check=False)
    return done.returncode


def test_mosquitto_pub_anonymous_only_on_open(
    open_broker: BrokerHandle, acl_broker: BrokerHandle
) -> None:
    for broker, expected in ((open_broker, True), (acl_broker, False)):
        watcher = broker.capture("factory/#", who="service")
        payload = _marker()
        assert _mosquitto_pub(broker, None, f"{LINE1}/weld-01/state", payload) == 0
        marker = _marker()
        assert _mosquitto_pub(broker, "service", f"{LINE1}/weld-01/cmd", marker) == 0
        assert _mosquitto_pub(broker, "service", f"{LINE1}/weld-01/cmd", marker) == 0
        watcher.wait_for(lambda m, marker=marker: m.payload == marker, count=2)
        assert any(m.payload == payload for m in watcher.messages) is expected
