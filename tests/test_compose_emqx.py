"""The compose profile ``emqx``, checked without Docker (EMQX cannot be pulled or run here).

``docker-compose --profile emqx config`` must accept the file (skipped without docker-compose,
as in ``tests/test_compose_file.py``); the three nodes must seed each other by the names their
aliases resolve, mount the committed ``broker_config/emqx.conf`` and the files init writes where
that config looks for them, and hash passwords as :mod:`broker_config.emqx_conf` does. The
generated ``users.csv`` and ``acl.conf`` are checked against the ACL source: every login is there
with a hash of its password, and the rules, evaluated the way EMQX does (first match wins; a
subscription checked when made), answer as :func:`broker_config.acl.permits` does — or refuse
where EMQX cannot express the policy (a participant's ``factory/#``), never allow more.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from test_compose_file import compose_config
from test_compose_model import ROOT, load_compose

from broker_config.acl import acl_table, permits
from broker_config.config_files import write_docker_config
from broker_config.credentials import load_credentials
from broker_config.emqx_conf import (
    EMQX_ACL_FILE,
    EMQX_DIR,
    EMQX_USERS_FILE,
    PBKDF2,
    pbkdf2_hex,
    render_emqx_acl,
)
from broker_config.profiles import Security
from contract.topics import Channel
from plant import load_plant

PROFILE = "emqx"
NODES = ("emqx1", "emqx2", "emqx3")
EMQX_CONF = ROOT / "broker_config" / "emqx.conf"
CONFIG_TARGET = "/opt/emqx/etc/emqx.conf"


def conf_text() -> str:
    return EMQX_CONF.read_text(encoding="utf-8")


def test_docker_compose_accepts_the_profile() -> None:
    services = compose_config({}, profiles=(PROFILE,))["services"]
    assert set(NODES) <= set(services)
    for node in NODES:
        assert services[node]["profiles"] == [PROFILE]


def test_the_profile_is_off_by_default_and_adds_only_the_nodes() -> None:
    assert not set(NODES) & set(load_compose().services)
    default, emqx = load_compose().services, load_compose(profiles=(PROFILE,)).services
    assert set(emqx) - set(default) == set(NODES)


def test_nodes_seed_each_other_by_the_names_their_aliases_resolve() -> None:
    services = load_compose(profiles=(PROFILE,)).services
    seeds_line = re.search(r"static\.seeds = \[(.*)\]", conf_text())
    assert seeds_line is not None
    seeds = json.loads(f"[{seeds_line[1]}]")
    names = []
    for node in NODES:
        spec = services[node].spec
        name = services[node].environment["EMQX_NODE__NAME"]
        host = name.split("@", 1)[1]
        assert host in spec["networks"]["default"]["aliases"], node
        assert services[node].image == "emqx/emqx:5.8.6"
        assert services[node].depends_on == {"init": "service_completed_successfully"}
        assert services[node].healthcheck["test"][:2] == ["CMD", "/opt/emqx/bin/emqx"]  # type: ignore[index]
        names.append(name)
    assert sorted(seeds) == sorted(names)
    assert "discovery_strategy = static" in conf_text()


def test_nodes_mount_the_config_and_what_init_writes_where_the_config_looks() -> None:
    services = load_compose(profiles=(PROFILE,)).services
    init = services["init"]
    init_dir = init.environment["MOSQUITTO_CONFIG_DIR"]
    written = init.mount_for(init_dir)
    assert written is not None
    paths = dict(re.findall(r'(bootstrap_file|path) = "([^"]+)"', conf_text()))
    data_volumes = set()
    for node in NODES:
        service = services[node]
        conf = service.mount_for(CONFIG_TARGET)
        assert conf is not None
        assert (conf.kind, conf.read_only) == ("bind", True)
        assert Path(conf.source) == EMQX_CONF
        for key, name in (("bootstrap_file", EMQX_USERS_FILE), ("path", EMQX_ACL_FILE)):
            mount = service.mount_for(paths[key])
            assert mount is not None, f"{node}: {key}"
            assert mount.read_only, f"{node}: {key}"
            assert mount.source == written.source, f"{node}: {key} is not where init writes"
            assert Path(paths[key]).relative_to(mount.target) == Path(EMQX_DIR) / name
        data = service.mount_for("/opt/emqx/data")
        assert data is not None
        assert (data.kind, data.read_only) == ("volume", False)
        data_volumes.add(data.source)
    assert len(data_volumes) == len(NODES), "each node needs its own data volume"


def test_the_config_hashes_as_the_generator_does() -> None:
    algorithm = re.search(r"password_hash_algorithm \{(.*)\}", conf_text())
    assert algorithm is not None
    settings = dict(re.findall(r"(\w+) = (\w+)", algorithm[1]))
    assert settings == {k: str(v) for k, v in PBKDF2.items()}
    assert "bootstrap_type = hash" in conf_text()
    assert "no_match = deny" in conf_text()


def test_the_services_can_be_pointed_at_two_nodes() -> None:
    env = {"FACTORY_MQTT_HOST": "emqx2", "FACTORY_ROBOTS_MQTT_HOST": "emqx1"}
    services = load_compose(env=env, profiles=(PROFILE,)).services
    for name, node in (("api", "emqx2"), ("simulator", "emqx1")):
        command = services[name].command or []
        assert command[command.index("--broker") + 1] == f"mqtt://{node}:1883"
    header = (ROOT / "docker-compose.yml").read_text(encoding="utf-8").split("\nx-factory")[0]
    assert "FACTORY_MQTT_HOST=emqx2 FACTORY_ROBOTS_MQTT_HOST=emqx1" in header
    docs = (ROOT / "docs" / "compose.md").read_text(encoding="utf-8")
    assert "--profile emqx" in docs
    assert "localhost:1884" in docs  # emqx1's published MQTT port


# --- the generated files against the ACL source ---------------------------------------------

_TERM = re.compile(r'^\{(allow|deny), \{username, "([^"]+)"\}, (publish|subscribe), \[(.*)\]\}\.$')


def emqx_rules(text: str) -> list[tuple[str, str | None, str, list[str]]]:
    rules: list[tuple[str, str | None, str, list[str]]] = []
    for line in text.splitlines():
        if not line or line.startswith("%%"):
            continue
        if line == "{deny, all}.":
            rules.append(("deny", None, "all", ["#"]))
        elif line == '{allow, all, all, ["#"]}.':
            rules.append(("allow", None, "all", ["#"]))
        else:
            match = _TERM.match(line)
            assert match is not None, f"not an EMQX rule this test knows: {line}"
            rules.append((match[1], match[2], match[3], json.loads(f"[{match[4]}]")))
    return rules


def emqx_match(name: str, rule_filter: str) -> bool:
    """EMQX's ``emqx_topic:match``: a wildcard in ``name`` is a word like any other."""
    words, pattern = name.split("/"), rule_filter.split("/")
    for i, level in enumerate(pattern):
        if level == "#":
            return True
        if i >= len(words) or (level != "+" and level != words[i]):
            return False
    return len(words) == len(pattern)


def emqx_allows(
    rules: list[tuple[str, str | None, str, list[str]]], user: str, action: str, topic: str
) -> bool:
    for access, who, act, topics in rules:
        if who not in (None, user) or act not in ("all", action):
            continue
        if any(emqx_match(topic, t) for t in topics):
            return access == "allow"
    return False  # authorization.no_match = deny


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("emqx")
    state, out = tmp / "state", tmp / "config"
    write_docker_config(out, state, load_plant(None), Security.ACL, participants=2)
    return state, out / EMQX_DIR


def test_every_login_is_in_the_bootstrap_file_with_a_hash_of_its_password(
    generated: tuple[Path, Path],
) -> None:
    state, emqx = generated
    credentials = load_credentials(state)
    assert credentials is not None
    rows = list(csv.DictReader(io.StringIO((emqx / EMQX_USERS_FILE).read_text())))
    assert {r["user_id"] for r in rows} == set(credentials.passwords)
    for row in rows:
        assert row["password_hash"] == pbkdf2_hex(
            credentials.passwords[row["user_id"]], row["salt"]
        )
        assert row["is_superuser"] == "false"
    assert len({r["salt"] for r in rows}) == len(rows)
    assert (emqx / EMQX_USERS_FILE).stat().st_mode & 0o777 == 0o644  # EMQX's uid reads it


def test_the_acl_answers_as_the_policy_does(generated: tuple[Path, Path]) -> None:
    state, emqx = generated
    credentials = load_credentials(state)
    assert credentials is not None
    prefixes = credentials.robot_prefixes
    table = acl_table(prefixes, credentials.participants)
    rules = emqx_rules((emqx / EMQX_ACL_FILE).read_text())
    robots = sorted(prefixes)
    site = prefixes[robots[0]].split("/")[1]
    topics = [f"{prefixes[r]}/{c.value}" for r in robots for c in Channel]
    topics += [f"factory/{site}/pace", "factory/elsewhere/pace", "workshop/p01/x", "workshop/p02/x"]
    users = [*robots, "service", "instructor", "p01", "p02"]
    for user in users:
        for topic in topics:
            for action, policy in (("publish", "publish"), ("subscribe", "receive")):
                assert emqx_allows(rules, user, action, topic) == permits(
                    table, user, policy, topic
                ), (user, action, topic)
    # A wildcard subscription EMQX allows never reaches a topic the policy withholds.
    filters = ["factory/#", "#", "factory/+/+/+/+/+", "factory/+/+/+/+/truth", "workshop/#"]
    filters += [f"{prefixes[r]}/+" for r in robots[:2]]
    for user in users:
        for wildcard in filters:
            if emqx_allows(rules, user, "subscribe", wildcard):
                reached = [t for t in topics if emqx_match(t, wildcard)]
                assert all(permits(table, user, "receive", t) for t in reached), (user, wildcard)
    for user in ("service", "instructor"):
        assert emqx_allows(rules, user, "subscribe", "factory/#")
    assert not emqx_allows(rules, "p01", "subscribe", "factory/#")  # refused, not cut
    assert emqx_allows(rules, "p01", "subscribe", "factory/+/+/+/+/telemetry")


def test_every_robot_has_its_own_rules(generated: tuple[Path, Path]) -> None:
    state, emqx = generated
    credentials = load_credentials(state)
    assert credentials is not None
    text = (emqx / EMQX_ACL_FILE).read_text()
    for robot, prefix in credentials.robot_prefixes.items():
        assert f'{{allow, {{username, "{robot}"}}, publish, ["{prefix}/birth"' in text, robot
        assert f'{{allow, {{username, "{robot}"}}, subscribe, ["{prefix}/cmd"' in text, robot
    assert text.rstrip().endswith("{deny, all}.")


@pytest.mark.parametrize("security", [Security.OPEN, Security.PASSWORD])
def test_open_profiles_let_every_login_do_everything(security: Security) -> None:
    rules = emqx_rules(render_emqx_acl({"weld-01": "factory/s/a/l/weld-01"}, (), security))
    assert emqx_allows(rules, "weld-01", "publish", "factory/s/a/l/weld-02/cmd")
    assert emqx_allows(rules, "anyone", "subscribe", "#")
