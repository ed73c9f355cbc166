"""``factory broker``: run a broker in the foreground with a security profile, and its banner.

The banner (:func:`connect_lines`, also printed by ``factory up``) says where to connect from this
machine and from the room (``--bind 0.0.0.0``), how (``--cafile`` on ``tls``), which logins exist
and, once, the passwords of participants made just now.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

from broker_config.addresses import lan_addresses
from broker_config.credentials import Credentials, CredentialsError, load_credentials
from broker_config.embedded import BrokerError, BrokerProcess, start_broker
from broker_config.layout import DEFAULT_HOST
from broker_config.ports import port_is_free
from broker_config.profiles import DEFAULT_TLS_PORT, OPEN_WARNING, Security, parse_security
from plant import PlantError, load_plant

BIND_ENV = "FACTORY_BROKER_BIND"
DEFAULT_MQTT_PORT = 1883
#: How far above the default port to look for a free one when no port was asked for.
PORT_SEARCH = 50


def default_port(host: str, security: Security, wanted: int | None) -> int:
    """The asked-for port, or 1883 (8883 on ``tls``) or the next free one above it."""
    if wanted is not None:
        return wanted
    base = DEFAULT_TLS_PORT if security.tls else DEFAULT_MQTT_PORT
    return next((p for p in range(base, base + PORT_SEARCH) if port_is_free(host, p)), base)


def new_participants(before: Credentials | None, after: Credentials) -> dict[str, str]:
    """Participants whose password was made just now (printed once)."""
    old = set(before.participants) if before else set()
    return {p: after.passwords[p] for p in after.participants if p not in old}


def connect_lines(broker: BrokerProcess, made: dict[str, str]) -> list[str]:
    """What to tell the room: addresses, how to connect, logins, new participants' passwords."""
    lines: list[str] = []
    if broker.security is Security.OPEN:
        lines.append(OPEN_WARNING)
    cafile = f" --cafile {shlex.quote(str(broker.tls.ca_pem))}" if broker.tls else ""
    hosts = [broker.client_host, *lan_addresses(broker.host)]
    for host in dict.fromkeys(hosts):
        scheme = "mqtts" if broker.tls else "mqtt"
        lines.append(
            f"  broker:      {scheme}://{host}:{broker.port}  (security: {broker.security})"
        )
    if broker.host == "0.0.0.0" and len(hosts) == 1:
        lines.append("  (no network address found: this machine looks offline)")
    if broker.ws_port is not None:
        lines.append(
            f"  WebSockets:  {'wss' if broker.tls else 'ws'}://{hosts[-1]}:{broker.ws_port}"
        )
    login = " -u p01 -P PASSWORD" if broker.security is Security.PASSWORD else ""
    lines.append(
        f"  watch:       mosquitto_sub -h {hosts[-1]} -p {broker.port}{cafile}{login} "
        "-t 'factory/#' -v"
    )
    if broker.tls:
        lines.append(f"  CA:          {broker.tls.ca_pem}  (factory ca)")
    default_dir = Path(".factory")
    in_state = (
        ""
        if broker.state_dir == default_dir
        else f" --state-dir {shlex.quote(str(broker.state_dir))}"
    )
    lines.append(
        f"  logins:      factory credentials{in_state} service | instructor | ROBOT"
        + (" | p01" if made else "")
    )
    if made:
        lines.append("  participants (passwords shown once; later: factory credentials pNN):")
        lines += [f"    {name}  {password}" for name, password in made.items()]
    return lines


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_broker(
    state_dir: Path,
    scenario: str | None,
    port: int | None,
    ws_port: int | None,
    impl: str,
    write_config: Path | None,
    security: str = "acl",
    participants: int | None = None,
    bind: str | None = None,
) -> None:
    """``factory broker``: run in the foreground until Ctrl-C, or only write the config files."""
    try:
        profile = parse_security(security)
    except ValueError as exc:
        _fail(str(exc))
    if write_config is not None:
        from broker_config.config_files import write_docker_config

        try:
            written = write_docker_config(
                write_config, state_dir, load_plant(scenario), profile, participants
            )
        except (PlantError, CredentialsError, ValueError) as exc:
            _fail(str(exc).splitlines()[0])
        for path in written:
            print(f"wrote {path}")
        print(f"mount {write_config} as /mosquitto/config; passwords: {state_dir}/credentials.json")
        return
    host = bind or os.environ.get(BIND_ENV, DEFAULT_HOST)
    # A closed terminal (SIGHUP) or `kill` (SIGTERM) stops the broker like Ctrl-C does; the broker
    # runs in its own session, so nothing else would stop it.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupt)
    broker: BrokerProcess | None = None
    try:
        before = load_credentials(state_dir)
        broker = start_broker(
            impl,
            default_port(host, profile, port),
            state_dir,
            scenario,
            ws_port,
            host=host,
            foreground=True,
            security=profile,
            participants=participants,
        )
        after = load_credentials(state_dir)
        made = new_participants(before, after) if after else {}
        print(f"{broker.impl} is listening on {broker.url} (pid {broker.pid})", flush=True)
        print("\n".join([*connect_lines(broker, made), "  Ctrl-C stops the broker."]), flush=True)
        code = broker.process.wait()
    except (BrokerError, CredentialsError) as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        print("stopping the broker …", flush=True)
        if broker is not None:
            broker.stop()
        return
    broker.stop()
    _fail(f"{broker.impl} exited with code {code}; see {broker.files.log_file}", code=code or 1)


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)
