"""The local CA, ``factory ca``, the docker ACL per profile and the banner, without a broker."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from broker_config.acl import participant_name
from broker_config.addresses import lan_addresses
from broker_config.command import default_port
from broker_config.config_files import docker_acl
from broker_config.credentials import Credentials
from broker_config.profiles import Security, parse_security
from broker_config.tls import ensure_tls, print_ca, tls_files


def _names(path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in sans}


def test_the_ca_is_made_once_and_reused(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path)
    assert first == tls_files(tmp_path)
    assert first.ca_pem == tmp_path / "tls" / "ca.pem"
    assert first.server_cert_pem == tmp_path / "tls" / "server.pem"
    assert first.server_key_pem == tmp_path / "tls" / "server.key"
    for private in (first.server_key_pem, tmp_path / "tls" / "ca.key"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    before = {p: p.read_bytes() for p in (first.ca_pem, first.server_cert_pem)}
    ensure_tls(tmp_path)
    assert {p: p.read_bytes() for p in before} == before  # idempotent: nothing re-made
    assert {"localhost", "127.0.0.1"} <= _names(first.server_cert_pem)


def test_a_new_host_name_reissues_the_server_certificate_from_the_same_ca(
    tmp_path: Path,
) -> None:
    first = ensure_tls(tmp_path)
    ca = first.ca_pem.read_bytes()
    ensure_tls(tmp_path, ["192.168.1.23", "factory.local"])
    assert first.ca_pem.read_bytes() == ca
    assert {"localhost", "127.0.0.1", "192.168.1.23", "factory.local"} <= _names(
        first.server_cert_pem
    )


def test_a_client_trusting_the_ca_completes_a_handshake_and_another_ca_does_not(
    tmp_path: Path,
) -> None:
    files = ensure_tls(tmp_path / "ours")
    other = ensure_tls(tmp_path / "other")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(files.server_cert_pem, files.server_key_pem)
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def serve(count: int) -> None:
            for _ in range(count):
                conn, _ = listener.accept()
                try:
                    with server.wrap_socket(conn, server_side=True):
                        pass
                except (ssl.SSLError, OSError):
                    conn.close()

        thread = threading.Thread(target=serve, args=(2,), daemon=True)
        thread.start()
        good = ssl.create_default_context(cafile=str(files.ca_pem))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            good.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            assert tls.version() in {"TLSv1.2", "TLSv1.3"}
        bad = ssl.create_default_context(cafile=str(other.ca_pem))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            bad.wrap_socket(raw, server_hostname="127.0.0.1").close()
        thread.join(5)


def test_factory_ca_prints_the_path_and_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        print_ca(tmp_path)
    assert "--security tls" in capsys.readouterr().err
    files = ensure_tls(tmp_path)
    print_ca(tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(files.ca_pem)
    assert f"mosquitto_sub --cafile {files.ca_pem} -h 127.0.0.1 -p 8883" in out[2]


CREDENTIALS = Credentials(
    {"service": "s", "instructor": "i", "p01": "a", "weld-01": "w"},
    {"weld-01": "factory/plant-1/body-shop/line-1/weld-01"},
)


def test_the_docker_acl_carries_the_profile() -> None:
    acl = docker_acl(Security.ACL, CREDENTIALS)
    assert "topic deny factory/+/+/+/+/truth" in acl
    assert "topic write factory/plant-1/body-shop/line-1/weld-01/telemetry" in acl
    password = docker_acl(Security.PASSWORD, CREDENTIALS).split("\nuser ")
    assert "topic" not in password[0].replace("# Security", "")  # anonymous: nothing
    assert all(block.endswith("topic readwrite #\n") for block in password[1:])
    opened = docker_acl(Security.OPEN, CREDENTIALS).splitlines()
    assert opened[1] == "topic readwrite #"  # anonymous too


def test_profiles_parse_and_say_what_they_do() -> None:
    assert parse_security("TLS") is Security.TLS
    with pytest.raises(ValueError, match="open, password, acl, tls"):
        parse_security("paranoid")
    assert [s.logins_required for s in Security] == [False, True, False, False]
    assert [s.topic_rules for s in Security] == [False, False, True, True]
    assert participant_name(3) == "p03"


def test_default_ports_and_addresses() -> None:
    assert default_port("127.0.0.1", Security.ACL, 1999) == 1999
    assert default_port("127.0.0.1", Security.TLS, None) >= 8883
    assert lan_addresses("127.0.0.1") == []
    assert lan_addresses("192.168.1.23") == ["192.168.1.23"]
    assert all(not a.startswith("127.") for a in lan_addresses("0.0.0.0"))
