"""Broker config rendering and the embedded broker's helpers, without starting a broker."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from dacite import Config as DaciteConfig
from dacite import from_dict

from broker_config.amqtt_main import SnapshotDict, amqtt_config
from broker_config.amqtt_plugins import AnonymousOrFileAuthPlugin, PolicyTopicPlugin
from broker_config.embedded import (
    BrokerError,
    PortInUseError,
    free_port,
    port_is_free,
    resolve_impl,
)
from broker_config.layout import RunningBroker, clear_running, read_running, write_running
from broker_config.mosquitto_conf import (
    RENDERED_DIRECTIVES,
    LocalPaths,
    TemplateError,
    directives,
    render_mosquitto_conf,
    template_text,
)
from broker_config.profiles import Security
from broker_config.tls import TlsFiles
from contract.codec import MAX_PAYLOAD_BYTES

PATHS = LocalPaths(
    data_dir=Path("/state/broker/data"),
    password_file=Path("/state/broker/mosquitto.passwd"),
    acl_file=Path("/state/broker/mosquitto.acl"),
    log_file=Path("/state/broker/mosquitto.log"),
)


def _settings(text: str) -> dict[str, str]:
    """Directive → value for directives that appear once."""
    found: dict[str, list[str]] = {}
    for line in directives(text):
        name, _, value = line.partition(" ")
        found.setdefault(name, []).append(value)
    return {name: values[0] for name, values in found.items() if len(values) == 1}


def test_template_holds_the_deliberate_settings() -> None:
    settings = _settings(template_text())
    assert settings["persistence"] == "true"
    assert int(settings["autosave_interval"]) <= 60
    assert int(settings["max_queued_messages"]) > 1000  # the default drops QoS 1 for slow readers
    assert int(settings["message_size_limit"]) == MAX_PAYLOAD_BYTES
    assert settings["allow_anonymous"] == "true"
    assert settings["password_file"] == "/mosquitto/config/passwd"
    assert settings["acl_file"] == "/mosquitto/config/acl"
    assert settings["persistence_location"] == "/mosquitto/data/"
    assert "listener 9001" in directives(template_text())
    assert "protocol websockets" in directives(template_text())
    assert "#listener 8883" in template_text()  # TLS: there, commented out, with instructions


def test_rendering_changes_only_ports_and_paths() -> None:
    rendered = render_mosquitto_conf(port=41883, paths=PATHS, ws_port=49001)

    def kept(text: str) -> list[str]:
        return [d for d in directives(text) if d.split(" ")[0] not in RENDERED_DIRECTIVES]

    assert [d for d in kept(rendered) if d != "user root"] == kept(template_text())
    lines = directives(rendered)
    assert "listener 41883 127.0.0.1" in lines
    assert "listener 49001 127.0.0.1" in lines
    assert "persistence_location /state/broker/data/" in lines
    assert "password_file /state/broker/mosquitto.passwd" in lines
    assert "acl_file /state/broker/mosquitto.acl" in lines
    assert "log_dest file /state/broker/mosquitto.log" in lines
    assert "log_dest stdout" not in lines
    assert not any("/mosquitto/" in line for line in lines)
    assert ("user root" in lines) is (os.geteuid() == 0)


def test_rendering_without_websockets_leaves_the_listener_out() -> None:
    rendered = render_mosquitto_conf(port=41883, paths=PATHS, log_stdout=True, bind="0.0.0.0")
    lines = directives(rendered)
    assert [line for line in lines if line.startswith("listener")] == ["listener 41883 0.0.0.0"]
    assert "protocol websockets" not in lines
    assert "protocol mqtt" in lines
    assert "log_dest stdout" in lines


def test_rendering_refuses_a_template_missing_a_rendered_line() -> None:
    broken = template_text().replace("acl_file /mosquitto/config/acl", "")
    with pytest.raises(TemplateError, match="acl_file"):
        render_mosquitto_conf(port=1, paths=PATHS, template=broken)


PREFIXES = {"weld-01": "factory/plant-1/body-shop/line-1/weld-01"}
TLS = TlsFiles(
    Path("/state/tls/ca.pem"), Path("/state/tls/server.pem"), Path("/state/tls/server.key")
)


def test_amqtt_config_loads_strictly_into_our_plugins() -> None:
    config = amqtt_config(
        port=41883, ws_port=49001, password_file=Path("/p"), robot_prefixes=PREFIXES
    )
    assert config["listeners"] == {
        "default": {"type": "tcp", "bind": "127.0.0.1:41883"},
        "ws": {"type": "ws", "bind": "127.0.0.1:49001"},
    }
    plugins = config["plugins"]
    assert plugins["amqtt.plugins.authentication.FileAuthPlugin"] == {"password_file": "/p"}
    strict = DaciteConfig(strict=True)
    policy = plugins["broker_config.amqtt_plugins.PolicyTopicPlugin"]
    assert from_dict(PolicyTopicPlugin.Config, policy, strict).robot_prefixes == PREFIXES
    auth = plugins["broker_config.amqtt_plugins.AnonymousOrFileAuthPlugin"]
    loaded = from_dict(AnonymousOrFileAuthPlugin.Config, auth, strict)
    assert (loaded.allow_anonymous, loaded.open, loaded.topic_rules) == (True, False, True)


@pytest.mark.parametrize(
    ("security", "anonymous", "passwords", "rules"),
    [
        (Security.OPEN, True, False, False),
        (Security.PASSWORD, False, True, False),
        (Security.ACL, True, True, True),
        (Security.TLS, True, True, True),
    ],
)
def test_each_profile_on_amqtt(
    security: Security, anonymous: bool, passwords: bool, rules: bool
) -> None:
    config = amqtt_config(
        port=1,
        tls_port=2,
        tls=TLS,
        password_file=Path("/p"),
        robot_prefixes=PREFIXES,
        security=security,
    )
    plugins = config["plugins"]
    auth = plugins["broker_config.amqtt_plugins.AnonymousOrFileAuthPlugin"]
    assert auth["allow_anonymous"] is anonymous
    assert ("amqtt.plugins.authentication.FileAuthPlugin" in plugins) is passwords
    assert ("broker_config.amqtt_plugins.PolicyTopicPlugin" in plugins) is rules
    listener = config["listeners"]["default"]
    assert listener.get("ssl", False) is security.tls
    assert listener["bind"].endswith(":2" if security.tls else ":1")


@pytest.mark.parametrize("security", list(Security))
def test_each_profile_on_mosquitto(security: Security) -> None:
    text = render_mosquitto_conf(port=8883, paths=PATHS, security=security, tls=TLS)
    lines = directives(text)
    assert ("allow_anonymous false" in lines) is (security is Security.PASSWORD)
    assert (f"password_file {PATHS.password_file}" in lines) is security.checks_passwords
    assert (f"acl_file {PATHS.acl_file}" in lines) is security.topic_rules
    assert ("certfile /state/tls/server.pem" in lines) is security.tls
    assert "listener 8883 127.0.0.1" in lines


def test_snapshot_dict_survives_changes_while_iterating() -> None:
    table = SnapshotDict({"a": 1, "b": 2})
    for key in table:
        table[key + "x"] = 0  # a plain dict raises "changed size during iteration"
    for key, _ in table.items():
        del table[key]
    assert table == {}


def test_port_checks() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        assert not port_is_free("127.0.0.1", taken)
    assert port_is_free("127.0.0.1", free_port())


def test_port_in_use_message() -> None:
    assert str(PortInUseError(1883, "--port", 1884)) == (
        "port 1883 is already in use (another broker?); pick another with --port N, "
        "e.g. --port 1884"
    )
    assert str(PortInUseError(9001, "--ws-port", None)).endswith("pick another with --ws-port N")


def test_resolve_impl() -> None:
    assert resolve_impl("amqtt") == "amqtt"
    assert resolve_impl("auto") in ("mosquitto", "amqtt")
    with pytest.raises(BrokerError, match="use --impl auto, mosquitto or amqtt"):
        resolve_impl("hivemq")


def test_running_note(tmp_path: Path) -> None:
    info = RunningBroker("mosquitto", os.getpid(), "127.0.0.1", 41883, None)
    write_running(tmp_path, info)
    assert read_running(tmp_path) == info
    assert info.url == "mqtt://127.0.0.1:41883"
    clear_running(tmp_path, pid=os.getpid() + 1)  # another broker's: kept
    assert read_running(tmp_path) == info
    clear_running(tmp_path, pid=os.getpid())
    assert read_running(tmp_path) is None


def test_running_note_of_a_dead_broker_is_ignored(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the default pid_max: never a live process
    write_running(tmp_path, RunningBroker("amqtt", dead, "127.0.0.1", 1, None))
    assert read_running(tmp_path) is None
    assert read_running(tmp_path, check_alive=False) is not None
