"""Grafana provisioning and the factory dashboard: the queries use only what the service exports.

Every PromQL expression in ``dashboards/grafana/dashboards/*.json`` (panel targets and template
variables) is reduced to the metric names it reads, and each must be a series name the real
service puts in ``/metrics``: a counter ``x`` is exposed as ``x_total``, a histogram as
``x_bucket``/``x_sum``/``x_count``, so a bare ``x`` in a query would silently show nothing. The
service runs for real (``create_app`` with a real SQLite store); with a broker, a robot
publishing over MQTT must fill the per-robot series (readings, state, health index).
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from brokers import BrokerHandle, robot_topic
from prometheus_client.parser import text_string_to_metric_families
from test_compose_model import ROOT, load_compose
from test_grafana_promql import dashboard_queries, exported_series, missing_names

from api.app import create_app
from api.inbound import Inbound
from api.ingest.pipeline import Pipeline
from api.settings import Settings
from api.store.sqlite import SqliteStore
from broker_config.embedded import free_port
from contract.codec import encode
from contract.payloads import Reading, State, Telemetry
from contract.topics import Channel

with warnings.catch_warnings():
    # Starlette wants httpx2 for its TestClient and warns on import; httpx behaves the same.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

GRAFANA = ROOT / "dashboards" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "factory.yml"
PROMETHEUS = ROOT / "dashboards" / "prometheus" / "prometheus.yml"

# --- the provisioning files agree with each other and with docker-compose.yml -----------------


def load_dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def all_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out += [panel, *panel.get("panels", [])]
    return out


def test_the_dashboards_use_the_provisioned_datasource() -> None:
    datasources = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    uids = {d["uid"] for d in datasources}
    assert DASHBOARDS, "no dashboard JSON under dashboards/grafana/dashboards/"
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        used = {p["datasource"]["uid"] for p in all_panels(dashboard) if p.get("datasource")}
        used |= {
            t["datasource"]["uid"] for p in all_panels(dashboard) for t in p.get("targets", [])
        }
        used |= {
            v["datasource"]["uid"] for v in dashboard["templating"]["list"] if "datasource" in v
        }
        assert used, f"{path.name}: no panel names a datasource"
        assert used <= uids, f"{path.name}: datasource uids {used - uids} not provisioned"


def test_every_panel_has_a_title_a_query_and_its_own_place() -> None:
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        titles = [p["title"] for p in all_panels(dashboard) if p["type"] != "row"]
        assert len(titles) == len(set(titles)), f"{path.name}: repeated panel titles"
        cells: set[tuple[int, int]] = set()
        for panel in all_panels(dashboard):
            if panel["type"] != "row":
                assert panel.get("targets"), f"{panel['title']!r} has no query"
            g = panel["gridPos"]
            assert g["x"] >= 0, f"{panel['title']!r} is off the grid"
            assert g["x"] + g["w"] <= 24, f"{panel['title']!r} is off the grid"
            area = {(g["x"] + dx, g["y"] + dy) for dx in range(g["w"]) for dy in range(g["h"])}
            assert not area & cells, f"{panel['title']!r} overlaps another panel"
            cells |= area


def test_the_factory_dashboard_shows_what_the_demo_is_about() -> None:
    dashboard = load_dashboard(GRAFANA / "dashboards" / "factory.json")
    queries = " ".join(q for _, q in dashboard_queries(dashboard))
    wanted = {
        "vibration": 'metric="vibration_rms_mm_s"',
        "state": "factory_robot_state",
        "ingest rate": "factory_ingest_messages_total",
        "rejected": "factory_ingest_rejected_total",
        "duplicates": "factory_ingest_duplicates_total",
        "ingest lag": "factory_ingest_commit_latency_seconds_bucket",
        "health index": "factory_component_health_index",
        "ISO zone": "> bool 4.5",
        "remaining useful life": "factory_component_rul_low_hours",
        "work orders": "factory_work_orders",
        "alarms": "factory_alarms_active",
    }
    assert not [what for what, needle in wanted.items() if needle not in queries]


def test_grafana_mounts_match_the_provisioning() -> None:
    grafana = load_compose().services["grafana"]
    provider = yaml.safe_load(PROVIDERS.read_text())["providers"][0]
    dashboards_dir = grafana.host_path(provider["options"]["path"], Path("/nonexistent"))
    assert dashboards_dir == GRAFANA / "dashboards", "the provider reads another directory"
    assert grafana.host_path("/etc/grafana/provisioning", Path("/x")) == GRAFANA / "provisioning"
    home = grafana.environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    home_path = grafana.host_path(home, Path("/nonexistent"))
    assert home_path is not None
    assert home_path.is_file()
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert 9090 in [c for _, c in load_compose().services["prometheus"].ports]


def test_prometheus_scrapes_the_api_service_metrics_route() -> None:
    compose = load_compose()
    config = yaml.safe_load(PROMETHEUS.read_text())
    jobs = config["scrape_configs"]
    targets = [t for job in jobs for group in job["static_configs"] for t in group["targets"]]
    assert targets == ["api:8000"]
    assert jobs[0].get("metrics_path", "/metrics") == "/metrics"
    assert "--port" in compose.services["api"].command
    command = compose.services["api"].command or []
    assert command[command.index("--port") + 1] == "8000"
    mount = compose.services["prometheus"].mount_for("/etc/prometheus/prometheus.yml")
    assert mount is not None
    assert Path(mount.source) == PROMETHEUS
    assert mount.read_only


# --- against the real service -------------------------------------------------------------

T0 = 1_767_592_800.0


def robot_messages(site: str, robot: str) -> list[tuple[str, bytes]]:
    """A robot's state and a few readings of every metric, as it would publish them."""
    state = State(v=1, robot=robot, ts=T0, boot="boot-1", seq=1, state="RUNNING", since=T0)
    messages = [(robot_topic(site, robot, Channel.STATE), encode(state))]
    for seq in range(2, 6):
        reading = Reading(
            ts=T0 + seq,
            vibration_rms_mm_s=0.5,
            temperature_c=40.0,
            motor_current_a=5.0,
            cycle_time_s=30.0,
        )
        telemetry = Telemetry(
            v=1, robot=robot, ts=T0 + seq, boot="boot-1", seq=seq, readings=[reading]
        )
        messages.append((robot_topic(site, robot, Channel.TELEMETRY), encode(telemetry)))
    return messages


def wait_ready(client: TestClient, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, f"the service was not ready within {timeout_s} s"
        time.sleep(0.05)


def test_dashboard_queries_name_only_series_the_service_exports(tmp_path: Path) -> None:
    """No broker: the real store holds a robot's messages, the service loads them at start
    (and says on /readyz that the broker is missing, which does not matter here)."""
    database = tmp_path / "factory.db"
    store = SqliteStore(database)
    messages = robot_messages("site-1", "weld-01")
    Pipeline(store).write([Inbound(topic, payload, time.time()) for topic, payload in messages])
    store.close()
    settings = Settings(
        state_dir=tmp_path,
        db_path=database,
        broker_url=f"mqtt://127.0.0.1:{free_port()}",
        mqtt_username="service",
        mqtt_password="unused",
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    series = exported_series(response.text)
    assert "factory_robot_reading" in series, "the stored robot did not reach /metrics"
    for path in DASHBOARDS:
        assert not missing_names(load_dashboard(path), series), path.name


def robot_series(exposition: str, robot: str) -> set[str]:
    """Names of the series with a sample labelled ``robot``."""
    return {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.labels.get("robot") == robot
    }


@pytest.mark.integration
def test_a_robot_publishing_over_mqtt_fills_the_per_robot_panels(
    mosquitto_broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    robot = mosquitto_broker.robot_ids[0]
    settings = Settings(
        state_dir=mosquitto_broker.state_dir,
        db_path=tmp_path / "factory.db",
        broker_url=mosquitto_broker.url,
        mqtt_topic_filter=f"factory/{topic_site}/#",
        mqtt_client_id=f"grafana-test-{topic_site}",
    )
    dashboard = load_dashboard(GRAFANA / "dashboards" / "factory.json")
    queries = " ".join(query for _, query in dashboard_queries(dashboard))
    wanted = {
        "factory_robot_reading",
        "factory_robot_state",
        "factory_robot_last_seen_sim_seconds",
        "factory_component_health_index",
    }
    assert all(name in queries for name in wanted)
    publisher = mosquitto_broker.client(robot)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        for topic, payload in robot_messages(topic_site, robot):
            mosquitto_broker.publish(publisher, topic, payload, retain=topic.endswith("/state"))
        deadline = time.monotonic() + 15.0
        while missing := wanted - robot_series(client.get("/metrics").text, robot):
            assert time.monotonic() < deadline, f"no {sorted(missing)} samples of {robot}"
            time.sleep(0.1)
        exposition = client.get("/metrics").text
    for path in DASHBOARDS:
        assert not missing_names(load_dashboard(path), exported_series(exposition)), path.name
