"""The parity test's remapping rules (``tests/test_compose_native.py``), without running anything.

A rule that maps too much would hide a broken compose file; one that maps too little would make
the parity test fail for no reason (or write outside its temp dir). Pure: no process is started.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_compose_model import ROOT
from test_compose_native import VENV_BIN, NativeStack, start_order

from broker_config.mosquitto_conf import directives


@pytest.fixture
def native(tmp_path: Path) -> NativeStack:
    return NativeStack.create(tmp_path)


def test_container_paths_map_into_the_mounts_or_fail(native: NativeStack) -> None:
    init, broker = native.compose.services["init"], native.compose.services["mosquitto"]
    volumes = native.volumes_dir
    assert native.remap(init, "/var/lib/factory") == str(volumes / "factory-state")
    assert native.remap(broker, "/mosquitto/data/") == f"{volumes / 'mosquitto-data'}/"
    assert native.remap(broker, "/mosquitto/config/passwd") == str(
        volumes / "mosquitto-config" / "passwd"
    )
    conf = ROOT / "broker_config" / "mosquitto.conf"
    assert native.remap(broker, "/mosquitto/config/mosquitto.conf") == str(conf)
    assert native.remap(broker, "/dev/null") == "/dev/null"
    with pytest.raises(pytest.fail.Exception, match="in no volume or bind mount"):
        native.remap(init, "/var/lib/factroy")
    with pytest.raises(pytest.fail.Exception, match="in no volume or bind mount"):
        native.remap(broker, "/var/lib/factory")  # the broker must never see the credentials


def test_service_addresses_and_container_ports_map_to_loopback(native: NativeStack) -> None:
    api = native.compose.services["api"]
    broker, http = native.ports[1883], native.ports[8000]
    assert native.remap(api, "mqtt://mosquitto:1883") == f"mqtt://127.0.0.1:{broker}"
    probe = "urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
    assert native.remap(api, probe) == probe.replace(":8000", f":{http}")
    assert native.remap(api, "localhost:9001") == f"127.0.0.1:{native.ports[9001]}"
    assert native.remap(api, "1883") == str(broker)
    assert native.remap(api, "0.0.0.0") == "127.0.0.1"
    for unchanged in ("mqtt://elsewhere:1883", "api:1234", "serve", "--seed", "7"):
        assert native.remap(api, unchanged) == unchanged
    assert len(set(native.ports.values())) == len(native.ports)


def test_programs_resolve_to_the_repository_and_this_environment(native: NativeStack) -> None:
    assert native.executable("factory-init") == str(ROOT / "docker" / "init.sh")
    helper = native.executable("/usr/local/bin/factory-mqtt-connected")
    assert helper == str(ROOT / "docker" / "mqtt_connected.py")
    assert Path(native.executable("factory")).parent == VENV_BIN
    command = native.command(native.compose.services["api"])
    assert command[0] == str(VENV_BIN / "factory")
    assert command[command.index("--broker") + 1] == f"mqtt://127.0.0.1:{native.ports[1883]}"
    env = native.env(native.compose.services["api"])
    assert env["FACTORY_STATE_DIR"] == str(native.volumes_dir / "factory-state")
    assert env["PYTHONUNBUFFERED"] == "1", "the Dockerfile's ENV applies too"


def test_the_mounted_mosquitto_conf_changes_only_listeners_and_paths(native: NativeStack) -> None:
    conf = ROOT / "broker_config" / "mosquitto.conf"
    broker = native.compose.services["mosquitto"]
    original = directives(conf.read_text())
    rendered = directives(native.mosquitto_conf(broker, conf).read_text())
    if os.geteuid() == 0:
        assert rendered.pop() == "user root"
    assert [d.split()[0] for d in rendered] == [d.split()[0] for d in original]
    for before, after in zip(original, rendered, strict=True):
        name, value = before.split(" ", 1)
        if name == "listener":
            port = native.ports[int(value.split()[0])]
            assert after == f"listener {port} 127.0.0.1"
        elif value.startswith("/"):
            assert after.split(" ", 1)[1].startswith(str(native.volumes_dir))
        else:
            assert after == before


def test_services_start_after_what_they_depend_on(native: NativeStack) -> None:
    order = start_order(native.compose)
    assert order == ["init", "mosquitto", "api", "simulator"]
