"""MQTT over TLS (``mqtts://``) and HTTPS, with a CA made in the test by ``trustme``.

A Mosquitto with a TLS listener on an ephemeral port (its own ``mosquitto.conf`` in tmp_path,
its own process group, killed however the test ends) stands for a broker of the ``tls``
profile. The service ingests over mqtts verifying the CA; the simulator's device agents and
``factory tap`` connect the same way; a client trusting another CA, or speaking plain TCP, is
refused. ``factory serve --tls`` is uvicorn with the certificate: HTTPS verified by the CA.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import trustme
from brokers import require_broker
from test_api_endpoints import settings_for
from test_api_ingest import eventually, running, telemetry, wait_rows
from test_api_maintenance import TestClient
from test_devices_agent import scenario_for

from api.app import create_app
from api.serve import BackgroundServer
from api.settings import Settings
from broker_config.credentials import ensure_credentials
from broker_config.embedded import find_mosquitto, free_port
from contract.mqtt import new_client, parse_broker_url
from factory.robot_clock import robot_now_ts
from factory.tap import run_tap
from plant import load_plant
from simulator.devices.run import LiveFactory

pytestmark = pytest.mark.integration

CONNECT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TlsBroker:
    url: str
    port: int
    ca: Path
    other_ca: Path
    state_dir: Path


def _connack(client: mqtt.Client, port: int) -> int:
    """Connect and return the CONNACK code; raises what the TLS handshake raises."""
    codes: list[int] = []
    client.on_connect = lambda c, u, f, reason, p: codes.append(int(reason.value))
    client.connect("127.0.0.1", port, keepalive=10)
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    try:
        while not codes and time.monotonic() < deadline:
            client.loop(timeout=0.1)
    finally:
        sock = client.socket()
        client.disconnect()
        if sock is not None:
            sock.close()
    return codes[0] if codes else -1


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    require_broker("mosquitto")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = {
        "ca": tmp_path / "ca.pem",
        "other": tmp_path / "other-ca.pem",
        "cert": tmp_path / "server.pem",
        "key": tmp_path / "server.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    other.cert_pem.write_to_path(str(files["other"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    with files["cert"].open("wb") as out:
        for blob in server.cert_chain_pems:
            out.write(blob.bytes())
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        f"cafile {files['ca']}\ncertfile {files['cert']}\nkeyfile {files['key']}\n"
        "allow_anonymous true\npersistence false\n"
        f"log_dest file {tmp_path / 'mosquitto.log'}\n"
        # As root, Mosquitto drops to user "mosquitto", who cannot read tmp_path.
        + ("user root\n" if os.geteuid() == 0 else ""),
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [str(find_mosquitto()), "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def accepts() -> bool:
            if process.poll() is not None:
                log = tmp_path / "mosquitto.log"
                pytest.fail(f"mosquitto exited: {log.read_text() if log.exists() else '?'}")
            client = new_client(f"probe-{os.urandom(3).hex()}", tls=True, cafile=str(files["ca"]))
            try:
                return _connack(client, port) == 0
            except OSError:
                return False

        eventually(accepts, "the TLS broker accepts a verified connection")
        state_dir = tmp_path / "state"
        yield TlsBroker(f"mqtts://127.0.0.1:{port}", port, files["ca"], files["other"], state_dir)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_mqtts_urls_parse_with_their_own_default_port() -> None:
    assert parse_broker_url("mqtts://broker") == ("broker", 8883)
    assert parse_broker_url("mqtts://127.0.0.1:9883") == ("127.0.0.1", 9883)


def test_a_client_trusting_another_ca_or_speaking_plain_tcp_is_refused(
    tls_broker: TlsBroker,
) -> None:
    # (With plain ssl: paho leaks the socket of a failed handshake.)
    stranger = ssl.create_default_context(cafile=str(tls_broker.other_ca))
    with (
        socket.create_connection(("127.0.0.1", tls_broker.port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
        stranger.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass
    plain = new_client("plain")
    try:
        code = _connack(plain, tls_broker.port)
    except OSError:
        code = -1
    assert code != 0


def test_the_service_ingests_over_mqtts(tls_broker: TlsBroker, tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tls_broker.state_dir,
        db_path=tmp_path / "f.db",
        broker_url=tls_broker.url,
        mqtt_cafile=tls_broker.ca,
        mqtt_username="service",
        mqtt_password="unused",
        mqtt_topic_filter="factory/tls/#",
        mqtt_reconnect_min_s=0.1,
        mqtt_reconnect_max_s=1.0,
    )
    robot = new_client("robot-weld-01", tls=True, cafile=str(tls_broker.ca))
    robot.connect("127.0.0.1", tls_broker.port)
    robot.loop_start()
    try:
        with running(settings) as client:
            for seq in range(1, 4):
                topic = "factory/tls/area-1/line-1/weld-01/telemetry"
                robot.publish(topic, telemetry("weld-01", seq, 40.0), qos=1).wait_for_publish(5)
            wait_rows(client, "weld-01", 3)
    finally:
        robot.disconnect()
        robot.loop_stop()


def test_the_service_with_the_wrong_ca_is_not_ready(tls_broker: TlsBroker, tmp_path: Path) -> None:
    settings = Settings(
        state_dir=tls_broker.state_dir,
        db_path=tmp_path / "f.db",
        broker_url=tls_broker.url,
        mqtt_cafile=tls_broker.other_ca,
        mqtt_username="service",
        mqtt_password="unused",
        mqtt_reconnect_min_s=0.1,
    )
    with TestClient(create_app(settings)) as client:
        eventually(
            lambda: "cannot reach the broker" in " ".join(client.get("/readyz").json()["problems"]),
            "/readyz says the broker cannot be reached",
        )
        assert client.get("/readyz").status_code == 503


def test_device_agents_and_the_tap_connect_over_mqtts(
    tls_broker: TlsBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = scenario_for("tls")
    ensure_credentials(tls_broker.state_dir, scenario.robots)
    live = LiveFactory(
        scenario,
        seed=1,
        factor=3600.0,
        host="127.0.0.1",
        port=tls_broker.port,
        state_dir=tls_broker.state_dir,
        tls=True,
        cafile=str(tls_broker.ca),
    )
    live.start(duration_s=4 * 3600.0)
    try:
        run_tap(
            "factory/tls/+/+/+/state",
            tls_broker.url,
            None,
            None,
            count=1,
            raw=False,
            cafile=str(tls_broker.ca),
        )
    finally:
        live.stop()
    assert '"state":' in capsys.readouterr().out


def test_factory_credentials_reads_a_robots_clock_over_mqtts(tls_broker: TlsBroker) -> None:
    topic = "factory/tls/area-1/line-1/weld-01/state"
    assert robot_now_ts("127.0.0.1", tls_broker.port, topic, str(tls_broker.ca)) is None
    robot = new_client("robot-weld-01", tls=True, cafile=str(tls_broker.ca))
    robot.connect("127.0.0.1", tls_broker.port)
    robot.loop_start()
    try:
        state = b'{"v":1,"robot":"weld-01","ts":1790000123.5,"boot":"b-1","seq":2}'
        robot.publish(topic, state, qos=1, retain=True).wait_for_publish(5)
    finally:
        robot.disconnect()
        robot.loop_stop()
    assert robot_now_ts("127.0.0.1", tls_broker.port, topic, str(tls_broker.ca)) == 1790000123.5


def test_factory_simulate_runs_against_an_mqtts_broker(tls_broker: TlsBroker) -> None:
    """The command line end to end: ``--broker mqtts://… --cafile``; it exits 0 having sent."""
    ensure_credentials(tls_broker.state_dir, load_plant().robots)
    command = [
        str(Path(sys.executable).with_name("factory")),
        "simulate",
        "--state-dir",
        str(tls_broker.state_dir),
        "--broker",
        tls_broker.url,
        "--cafile",
        str(tls_broker.ca),
        "--factor",
        "0",
        "--duration",
        "2h",
    ]
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            output, _ = process.communicate(timeout=120)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, output
    assert "done:" in output


def test_https_serves_the_api_verified_by_the_ca(tmp_path: Path) -> None:
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    cert, key, ca_file = tmp_path / "server.pem", tmp_path / "server.key", tmp_path / "ca.pem"
    server.cert_chain_pems[0].write_to_path(str(cert))
    server.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    settings = settings_for(tmp_path, tls_certfile=cert, tls_keyfile=key)
    assert settings.https == (cert, key)
    with BackgroundServer(create_app(settings), https=settings.https) as served:
        assert served.url.startswith("https://")
        verified = ssl.create_default_context(cafile=str(ca_file))
        assert httpx.get(served.url + "/healthz", verify=verified).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(served.url + "/healthz")  # the system's CAs do not know ours
