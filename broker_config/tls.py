"""A local certificate authority for the ``tls`` security profile, made with ``cryptography``.

::

    STATE_DIR/tls/ca.pem       the CA certificate: what clients verify the broker (and API) with
    STATE_DIR/tls/ca.key       the CA's private key (mode 0600; only used to sign server.pem)
    STATE_DIR/tls/server.pem   the server certificate, for the broker's TLS listeners and HTTPS
    STATE_DIR/tls/server.key   its private key (mode 0600)

:func:`ensure_tls` makes them on first use and reuses them afterwards, so participants verify
against the same ``ca.pem`` all workshop long. The server certificate names ``localhost``,
``127.0.0.1`` and the host names and addresses it is asked for; asked for one it does not name,
it is re-issued by the same CA (the CA never changes unless its files are deleted).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TLS_DIR = "tls"
CA_VALID_DAYS = 3650
SERVER_VALID_DAYS = 825  # what browsers still accept for a leaf certificate
DEFAULT_NAMES = ("localhost", "127.0.0.1")
PRIVATE_MODE = 0o600


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Paths of the CA certificate and of the server's certificate and key."""

    ca_pem: Path
    server_cert_pem: Path
    server_key_pem: Path


def tls_dir(state_dir: Path) -> Path:
    return Path(state_dir) / TLS_DIR


def tls_files(state_dir: Path) -> TlsFiles:
    root = tls_dir(state_dir)
    return TlsFiles(root / "ca.pem", root / "server.pem", root / "server.key")


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _make_ca(root: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smart-factory local CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(root / "ca.key", _key_pem(key), PRIVATE_MODE)
    _write(root / "ca.pem", cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _load_ca(root: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((root / "ca.pem").read_bytes())
        key = serialization.load_pem_private_key((root / "ca.key").read_bytes(), None)
    except (OSError, ValueError):
        return None
    return (cert, key) if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _server_names(path: Path) -> set[str] | None:
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, x509.ExtensionNotFound):
        return None
    return {str(n.value) for n in sans}


def _make_server(
    root: Path, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, names: list[str]
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=SERVER_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write(root / "server.key", _key_pem(key), PRIVATE_MODE)
    _write(root / "server.pem", cert.public_bytes(serialization.Encoding.PEM))


def ensure_tls(state_dir: Path, hostnames: Iterable[str] = ()) -> TlsFiles:
    """The CA and a server certificate naming ``hostnames`` (and localhost), made if missing."""
    root = tls_dir(state_dir)
    root.mkdir(parents=True, exist_ok=True)
    files = tls_files(state_dir)
    names = list(dict.fromkeys([*DEFAULT_NAMES, *(h for h in hostnames if h and h != "0.0.0.0")]))
    loaded = _load_ca(root)
    ca, ca_key = loaded if loaded is not None else _make_ca(root)
    have = _server_names(files.server_cert_pem)
    if (
        loaded is None
        or have is None
        or not set(names) <= have
        or not files.server_key_pem.exists()
    ):
        _make_server(root, ca, ca_key, list(dict.fromkeys([*names, *sorted(have or ())])))
    return files


def print_ca(state_dir: Path) -> None:
    """``factory ca``: where the CA certificate is, and a command line that verifies with it."""
    import sys

    from broker_config.layout import DEFAULT_HOST, read_running
    from broker_config.profiles import DEFAULT_TLS_PORT

    files = tls_files(state_dir)
    if not files.ca_pem.exists():
        print(
            f"error: no CA in {tls_dir(state_dir)} yet; start with --security tls "
            f"(`factory up --security tls` or `factory broker --security tls`)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    running = read_running(state_dir)
    tls_running = running is not None and running.cafile is not None
    host = running.host if running is not None and tls_running else DEFAULT_HOST
    port = running.port if running is not None and tls_running else DEFAULT_TLS_PORT
    print(files.ca_pem)
    print()
    print(f"mosquitto_sub --cafile {files.ca_pem} -h {host} -p {port} -t 'factory/#' -v")
    if not tls_running:
        print("  (no tls broker running from this state dir; default port)")
