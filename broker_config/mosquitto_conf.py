"""Render ``broker_config/mosquitto.conf`` for a local run: other ports and paths, same settings.

The committed ``mosquitto.conf`` is the docker-compose broker's config and the single source of
every setting. :func:`render_mosquitto_conf` rewrites only the directives that name a port or a
path (:data:`RENDERED_DIRECTIVES`) and passes every other line through unchanged, so a local
broker, ``factory broker`` and the tests run with exactly the limits, persistence and security
choices that are documented in that file. If the template stops containing a directive the
renderer expects, rendering fails loudly instead of silently running with a default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from broker_config.profiles import DEFAULT_SECURITY, Security
from broker_config.tls import TlsFiles

TEMPLATE_NAME = "mosquitto.conf"
DOCKER_MQTT_PORT = 1883
DOCKER_WS_PORT = 9001
#: Directives whose value the renderer replaces; everything else is kept as written.
RENDERED_DIRECTIVES = frozenset(
    {"listener", "persistence_location", "password_file", "acl_file", "log_dest", "allow_anonymous"}
)


class TemplateError(RuntimeError):
    """``mosquitto.conf`` no longer has a line the renderer must rewrite."""


def template_text() -> str:
    return (resources.files("broker_config") / TEMPLATE_NAME).read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class LocalPaths:
    """Files of a locally run Mosquitto, all under the state directory's ``broker/``."""

    data_dir: Path
    password_file: Path
    acl_file: Path
    log_file: Path


def _directive(line: str) -> tuple[str, str] | None:
    stripped = line.strip()
    if not stripped or stripped.startswith("#"):
        return None
    name, _, value = stripped.partition(" ")
    return name, value.strip()


def render_mosquitto_conf(
    *,
    port: int,
    paths: LocalPaths,
    bind: str = "127.0.0.1",
    ws_port: int | None = None,
    log_stdout: bool = False,
    template: str | None = None,
    security: Security = DEFAULT_SECURITY,
    tls: TlsFiles | None = None,
    protocol_log: bool = False,
) -> str:
    """The template with local ports, bind address and paths; WebSockets only with ``ws_port``.

    ``security`` picks the profile: ``open`` drops the password file and the ACL and lets
    anonymous clients in, ``password`` refuses anonymous clients and drops the ACL, ``acl`` is the
    template as written, and ``tls`` turns the MQTT (on ``port``) and WebSocket listeners into
    TLS listeners with the certificate files ``tls``. ``protocol_log`` logs every packet
    (``log_type all``) for the protocol inspector.
    """
    text = template_text() if template is None else template
    secure: list[str] = []
    if security.tls:
        if tls is None:
            raise ValueError("the tls profile needs certificate files")
        secure = [
            f"cafile {tls.ca_pem}",
            f"certfile {tls.server_cert_pem}",
            f"keyfile {tls.server_key_pem}",
            "tls_version tlsv1.2",
        ]
    out: list[str] = []
    seen: set[str] = set()
    skip_ws_protocol = False
    for line in text.splitlines():
        parsed = _directive(line)
        if parsed is None:
            out.append(line)
            continue
        name, value = parsed
        if skip_ws_protocol and name == "protocol":
            out.append(f"#{line}  (no --ws-port)")
            skip_ws_protocol = False
            continue
        skip_ws_protocol = False
        if name == "listener" and value == str(DOCKER_MQTT_PORT):
            out += [f"listener {port} {bind}", *secure]
        elif name == "listener" and value == str(DOCKER_WS_PORT):
            if ws_port is None:
                out.append(f"#{line}  (no --ws-port)")
                skip_ws_protocol = True
            else:
                out += [f"listener {ws_port} {bind}", *secure]
        elif name == "persistence_location":
            out.append(f"persistence_location {paths.data_dir}/")
        elif name == "allow_anonymous":
            out.append(f"allow_anonymous {'false' if security.logins_required else 'true'}")
        elif name == "password_file":
            if security.checks_passwords:
                out.append(f"password_file {paths.password_file}")
            else:
                out.append(f"#password_file {paths.password_file}  (security profile open)")
        elif name == "acl_file":
            if security.topic_rules:
                out.append(f"acl_file {paths.acl_file}")
            else:
                out.append(f"#acl_file {paths.acl_file}  (security profile {security})")
        elif name == "log_dest":
            out.append(f"log_dest file {paths.log_file}")
            if log_stdout:
                out.append("log_dest stdout")
            if protocol_log:  # connections, sessions, wills, every PUBLISH: api/protocol_log.py
                out.append("log_type all")
        else:
            out.append(line)
            continue
        seen.add(f"{name} {value}" if name == "listener" else name)
    expected = {
        f"listener {DOCKER_MQTT_PORT}",
        f"listener {DOCKER_WS_PORT}",
        *(RENDERED_DIRECTIVES - {"listener"}),
    }
    if missing := expected - seen:
        raise TemplateError(f"{TEMPLATE_NAME} lacks the line(s) {sorted(missing)} to render")
    if os.geteuid() == 0:
        # Started as root, Mosquitto drops to user "mosquitto", who cannot read files in a
        # private state directory; stay root instead (this only happens in containers and CI).
        out += ["", "# Local run as root: keep root (the state dir is private).", "user root"]
    return "\n".join(out) + "\n"


def directives(text: str) -> list[str]:
    """The directive lines of a config, normalised (used to compare template and rendering)."""
    return [f"{d[0]} {d[1]}".strip() for line in text.splitlines() if (d := _directive(line))]
