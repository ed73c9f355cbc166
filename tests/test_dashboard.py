"""The dashboard in headless Chromium against the real stack: the session's Mosquitto, the
service under uvicorn, and the default scenario's twelve robots simulated live on a unique site.

One stack and one browser serve the whole module (starting them is most of its time); each test
gets a fresh page at 1280×720 and leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from brokers import require_broker
from browser import PageLog, chromium, open_page, save_screenshot, with_dashboard
from playwright.sync_api import Browser, Page, expect
from pydantic import SecretStr

from api.app import create_app
from api.serve import BackgroundServer
from api.settings import Settings
from broker_config.embedded import BrokerProcess
from simulator.run import LiveFactory
from simulator.scenario import Scenario, load_scenario

pytestmark = [pytest.mark.browser, pytest.mark.integration]

API_KEY = "dashboard-test-key"
SEED = 11
FACTOR = 3600.0  # the scenario's own pace: one simulated hour per wall second
READY_TIMEOUT_S = 15.0
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "simulator/scenarios/default.toml"


@dataclass(frozen=True)
class Stack:
    url: str
    site: str
    scenario: Scenario
    robots: LiveFactory


def scenario_file(site: str, directory: Path) -> Path:
    """The default scenario on a site of its own (the session broker is shared by all tests)."""
    text = DEFAULT_SCENARIO.read_text(encoding="utf-8")
    text, count = re.subn(r'(?m)^site = "[^"]*"', f'site = "{site}"', text)
    assert count == 1, "the default scenario's site line changed; update this test"
    path = directory / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(
    _mosquitto_process: BrokerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    require_broker("mosquitto")
    broker = _mosquitto_process
    site = f"t-{uuid.uuid4().hex[:8]}"
    directory = tmp_path_factory.mktemp("dashboard")
    scenario_path = scenario_file(site, directory)
    scenario = load_scenario(scenario_path)
    settings = Settings(
        state_dir=broker.state_dir,
        db_path=directory / "factory.db",
        scenario=str(scenario_path),
        broker_url=broker.url,
        mqtt_protocol="mqtt5",
        mqtt_client_id=f"svc-{os.urandom(4).hex()}",
        mqtt_topic_filter=f"factory/{site}/#",
        api_key=SecretStr(API_KEY),
        stream_heartbeat_s=1.0,
    )
    with BackgroundServer(with_dashboard(create_app(settings))) as server:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while httpx.get(f"{server.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.05)
        robots = LiveFactory(
            scenario,
            seed=SEED,
            factor=FACTOR,
            host=broker.host,
            port=broker.port,
            state_dir=broker.state_dir,
        )
        robots.start()
        try:
            yield Stack(server.url, site, scenario, robots)
        finally:
            robots.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture
def page(
    browser: Browser, stack: Stack, request: pytest.FixtureRequest
) -> Iterator[tuple[Page, PageLog]]:
    page, log = open_page(browser, origin=stack.url)
    try:
        yield page, log
    finally:
        save_screenshot(page, f"dashboard-{request.node.name}")
        page.context.close()
    log.assert_clean()


def tile(page: Page, robot: str) -> str:
    return f'.tile[data-robot="{robot}"]'


def test_the_floor_shows_every_robot_of_the_scenario_by_line(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    tab, _ = page
    tab.goto(stack.url)
    expect(tab.locator(".tile")).to_have_count(len(stack.scenario.robots))
    for line in stack.scenario.lines:
        shown = tab.locator(f'[data-line="{line.id}"] .tile').evaluate_all(
            "tiles => tiles.map(t => t.dataset.robot)"
        )
        assert sorted(shown) == sorted(r.id for r in line.robots)
    # Every tile says its state in words, not only in colour, and the legend explains colours.
    states = tab.locator(".tile .tile-state").all_inner_texts()
    assert set(states) <= {"RUNNING", "IDLE", "MAINTENANCE", "BROKEN", "OFFLINE", "UNKNOWN"}
    assert "RUNNING" in states
    expect(tab.locator(".legend")).to_contain_text("BROKEN")
    expect(tab.get_by_test_id("sim-clock")).to_have_text(
        re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC")
    )
    expect(tab.locator("#connection")).to_have_text("● live")


def test_tiles_and_the_clock_update_live(page: tuple[Page, PageLog], stack: Stack) -> None:
    tab, _ = page
    tab.goto(stack.url)
    robot = stack.scenario.robots[0].id
    reading = tab.locator(f'{tile(tab, robot)} dd[data-metric="temperature_c"]')
    expect(reading).to_have_text(re.compile(r"°C"))
    first_value, first_clock = reading.inner_text(), tab.get_by_test_id("sim-clock").inner_text()
    # A reading comes every 300 simulated seconds = 83 ms; nights pause them for 8 s.
    expect(reading).not_to_have_text(first_value, timeout=20_000)
    expect(tab.get_by_test_id("sim-clock")).not_to_have_text(first_clock)


def test_the_robot_page_draws_history_then_appends_live(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    tab, _ = page
    tab.goto(stack.url)
    robot = stack.scenario.robots[0].id
    tab.locator(tile(tab, robot)).click()
    expect(tab).to_have_url(re.compile(f"#/robot/{robot}$"))
    charts = tab.get_by_test_id("robot-charts")
    expect(charts.locator(".chart canvas")).to_have_count(4)
    expect(charts.locator(".u-title").first).to_contain_text("ISO 10816 class I zones")
    tab.wait_for_function(
        "() => Number(document.querySelector('[data-testid=robot-charts]').dataset.points) > 0"
    )
    points = int(charts.get_attribute("data-points") or 0)
    tab.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=robot-charts]').dataset.points)"
        f" > {points}",
        timeout=20_000,
    )
    # A long window asks the service for averaged buckets, not every reading.
    with tab.expect_request(re.compile(r"/telemetry\?.*every=\d+")) as asked:
        tab.get_by_role("button", name="30 d").click()
    assert f"/api/robots/{robot}/telemetry" in asked.value.url
    expect(tab.locator(".robot-head button[aria-pressed=true]")).to_have_text("30 d")


def test_topic_filters_match_like_a_broker(page: tuple[Page, PageLog], stack: Stack) -> None:
    from contract.topics import matches

    tab, _ = page
    tab.goto(f"{stack.url}/static/favicon.svg")  # any same-origin document can import modules
    cases = [
        ("factory/#", "factory/plant-1/a/l/weld-01/state"),
        ("factory/#", "factory"),
        ("factory/+/+/+/weld-01/+", "factory/plant-1/a/l/weld-01/telemetry"),
        ("factory/+/+/+/weld-01/+", "factory/plant-1/a/l/weld-02/telemetry"),
        ("factory/+/+/+/+/state", "factory/plant-1/a/l/weld-01/state/extra"),
        ("+/#", "$SYS/broker/uptime"),
        ("#", "$SYS/broker/uptime"),
        ("factory/plant-1/+", "factory/plant-1"),
        ("factory/plant-1/a/l/weld-01/cmd", "factory/plant-1/a/l/weld-01/cmd"),
    ]
    got = tab.evaluate(
        """async (cases) => {
            const { topicMatches, filterProblem } = await import('/static/js/topics.js');
            return {
                matches: cases.map(([f, t]) => topicMatches(f, t)),
                problems: ['a/#/b', 'a/b#', 'a/+b', 'a/+/#', ''].map(filterProblem),
            };
        }""",
        cases,
    )
    assert got["matches"] == [matches(f, t) for f, t in cases]
    bad, glued_hash, glued_plus, good, empty = got["problems"]
    assert all((bad, glued_hash, glued_plus)), got["problems"]
    assert (good, empty) == (None, None)


def test_buffers_stay_bounded(page: tuple[Page, PageLog], stack: Stack) -> None:
    tab, _ = page
    tab.goto(f"{stack.url}/static/favicon.svg")
    got = tab.evaluate(
        """async () => {
            const { SeriesBuffer, bucketFor } = await import('/static/js/series.js');
            const { Ring, boundMap } = await import('/static/js/frame.js');
            // A week of raw readings every 60 s into a 2-day window, bucketed by 6 minutes.
            const every = bucketFor(2 * 86400, 300, 500);
            const series = new SeriesBuffer(['v'], 2 * 86400, every, 1800);
            for (let ts = 0; ts < 7 * 86400; ts += 60) {
                series.addReading({ ts, v: 1 + (ts % 600) / 600 });
                series.trim(ts);
            }
            const merged = new SeriesBuffer(['v'], 1e9, 360, 1800);
            [1, 2, 3, 4, 5, 6, 7].forEach((v, i) => merged.addReading({ ts: i * 60, v }));
            const ring = new Ring(500);
            for (let i = 0; i < 20000; i++) ring.push(i);
            const map = new Map();
            for (let i = 0; i < 1000; i++) map.set(i, { active: i % 100 === 0 });
            boundMap(map, 50, (v) => !v.active);
            return {
                every, points: series.length, oldest: series.ts[0],
                merged: [merged.ts, merged.values[0], merged.counts],
                ring: ring.toArray().length, last: ring.toArray().at(-1),
                map: map.size, activeKept: [...map.values()].filter((v) => v.active).length,
            };
        }"""
    )
    assert got["every"] == 360
    assert got["points"] <= 2 * 86400 / 360 + 1
    assert got["oldest"] >= 5 * 86400 - 360
    # Live readings average into the history's bucket width: six in the first 360 s, then a new one.
    assert got["merged"] == [[0, 360], [3.5, 7], [6, 1]]
    assert got["ring"] == 500
    assert got["last"] == 19999
    assert got["map"] == 50
    assert got["activeKept"] == 10
