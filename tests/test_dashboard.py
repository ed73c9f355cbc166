"""The dashboard in headless Chromium against the real stack (``browser.live_stack``): the
session's Mosquitto, the service under uvicorn, and the default scenario's twelve robots
simulated live at 3600× on a site of their own — the floor, live updates, the robot page and the
message inspector.

One stack and one browser serve the module (starting them is most of its time); each test gets a
fresh page at 1280×720, fails on any console error, and leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from brokers import handle_for, require_broker
from browser import (
    PageLog,
    Stack,
    chromium,
    live_stack,
    open_page,
    save_screenshot,
)
from playwright.sync_api import Browser, Page, expect

from broker_config.embedded import BrokerProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SEED = 11
#: Robots measure only in shifts: a night without readings lasts 8 s of wall time at 3600×.
NIGHT_PROOF_MS = 20_000


@pytest.fixture(scope="module")
def stack(
    _mosquitto_process: BrokerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    require_broker("mosquitto")
    with live_stack(_mosquitto_process, tmp_path_factory.mktemp("dashboard"), seed=SEED) as running:
        yield running


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


def tile(robot: str) -> str:
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


def test_the_floor_shows_the_plant_kpis_per_line_from_the_service(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    tab, _ = page
    tab.goto(stack.url)
    panel = tab.get_by_test_id("kpis")
    rows = panel.locator("tbody tr")
    expect(rows).to_have_count(len(stack.scenario.lines) + 1)
    shown = rows.evaluate_all("rows => rows.map(r => r.dataset.kpi)")
    assert shown == [line.id for line in stack.scenario.lines] + ["plant"]
    # Percentages, as GET /api/kpis computes them (engine.kpis), one decimal.
    availability = panel.locator('tr[data-kpi="plant"] td[data-field="availability"]')
    expect(availability).to_have_text(re.compile(r"^\d{1,3}\.\d %$"))
    expect(panel.locator('tr[data-kpi="plant"] td[data-field="oee"]')).to_have_text(
        re.compile(r"^\d{1,3}\.\d %$")
    )
    expect(tab.locator(".kpi-note")).to_contain_text("of simulated time")


def test_tiles_and_the_clock_update_live(page: tuple[Page, PageLog], stack: Stack) -> None:
    tab, _ = page
    tab.goto(stack.url)
    robot = stack.scenario.robots[0].id
    reading = tab.locator(f'{tile(robot)} dd[data-metric="temperature_c"]')
    expect(reading).to_have_text(re.compile(r"°C"))
    first_value, first_clock = reading.inner_text(), tab.get_by_test_id("sim-clock").inner_text()
    # A reading comes every 300 simulated seconds = 83 ms, except at night.
    expect(reading).not_to_have_text(first_value, timeout=NIGHT_PROOF_MS)
    expect(tab.get_by_test_id("sim-clock")).not_to_have_text(first_clock, timeout=NIGHT_PROOF_MS)


def test_the_robot_page_draws_history_then_appends_live(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    tab, _ = page
    tab.goto(stack.url)
    robot = stack.scenario.robots[0].id
    tab.locator(tile(robot)).click()
    expect(tab).to_have_url(re.compile(f"#/robot/{robot}$"))
    charts = tab.get_by_test_id("robot-charts")
    expect(charts.locator(".chart canvas")).to_have_count(4)
    # The class comes from the robot's birth (the service keeps it), not a guess.
    expect(charts.locator(".u-title").first).to_contain_text(
        "ISO 10816 class I zones (from its birth)"
    )
    tab.wait_for_function(
        "() => Number(document.querySelector('[data-testid=robot-charts]').dataset.points) > 0"
    )
    points = int(charts.get_attribute("data-points") or 0)
    tab.wait_for_function(
        f"() => Number(document.querySelector('[data-testid=robot-charts]').dataset.points)"
        f" > {points}",
        timeout=NIGHT_PROOF_MS,
    )
    # A long window asks the service for averaged buckets, not every reading.
    with tab.expect_request(re.compile(r"/telemetry\?.*every=\d+")) as asked:
        tab.get_by_role("button", name="30 d").click()
    assert f"/api/robots/{robot}/telemetry" in asked.value.url
    expect(tab.locator(".robot-head button[aria-pressed=true]")).to_have_text("30 d")


def rows(tab: Page) -> list[list[str]]:
    """The inspector's table as text, one list of cells per row."""
    cells: list[list[str]] = (
        tab.get_by_test_id("raw-rows")
        .locator("tr")
        .evaluate_all("rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    )
    return cells


def test_the_inspector_shows_raw_messages_filtered_by_mqtt_wildcards(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    tab, _ = page
    tab.goto(f"{stack.url}/#/inspector")
    body = tab.get_by_test_id("raw-rows")
    expect(body.locator("tr").nth(5)).to_be_attached(timeout=NIGHT_PROOF_MS)
    for received, topic, qos, _retained, payload, _refused in rows(tab)[:5]:
        assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", received)
        assert topic.replace("\n", "").startswith(f"factory/{stack.site}/")
        assert qos == "1"
        assert '"v":1' in payload
    robot = stack.scenario.robots[1].id
    box = tab.get_by_role("textbox", name="Topic filter")
    box.fill("factory/#/oops")
    expect(tab.locator("[role=alert]", has_text="must be a whole level")).to_be_visible()
    expect(box).to_have_attribute("aria-invalid", "true")
    box.fill(f"factory/+/+/+/{robot}/#")
    expect(box).to_have_attribute("aria-invalid", "false")
    tab.wait_for_function(
        """robot => {
            const topics = [...document.querySelectorAll('[data-testid=raw-rows] tr td.topic')];
            return topics.length > 0 && topics.every(t => t.innerText.includes(`/${robot}/`));
        }""",
        arg=robot,
        timeout=NIGHT_PROOF_MS,
    )
    # A malformed message from that robot is shown with the reason the service refused it.
    handle = handle_for(stack.broker)
    try:
        client = handle.client(robot)
        topic = f"factory/{stack.site}/{stack.scenario.robots[1].area}/"
        topic += f"{stack.scenario.robots[1].line}/{robot}/telemetry"
        handle.publish(client, topic, b"{not json")
        refused = body.locator("tr.rejected", has_text="{not json")
        expect(refused).to_have_count(1)
        assert refused.locator("td").last.inner_text().strip()
    finally:
        handle.close_clients()
    # Pause freezes the table while messages keep being counted; Clear empties it.
    pause = tab.get_by_role("button", name="Pause", exact=True)
    pause.click()
    frozen = rows(tab)
    expect(tab.locator(".counts")).to_contain_text(
        re.compile(r"paused \([1-9]\d* new\)"), timeout=NIGHT_PROOF_MS
    )
    assert rows(tab) == frozen
    tab.get_by_role("button", name="Resume", exact=True).click()
    tab.get_by_role("button", name="Clear").click()
    tab.wait_for_function(
        "() => document.querySelectorAll('[data-testid=raw-rows] tr').length < 150"
    )


def test_the_inspector_shows_ground_truth_only_once_the_api_key_is_entered(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    """The robots publish truth with every sample; without the key the inspector shows every
    other message and none of those, and says why; with it (entered under Controls) they come."""
    tab, _ = page
    tab.goto(f"{stack.url}/#/inspector")
    expect(tab.get_by_text("Ground truth (truth topics) is hidden")).to_be_visible()
    body = tab.get_by_test_id("raw-rows")
    # Retained births and states, the pace and the service's probes can fill the first rows on a
    # slow machine: wait for the robots' telemetry itself (truth goes with every sample).
    expect(body.locator("td.topic", has_text="/telemetry").first).to_be_attached(
        timeout=NIGHT_PROOF_MS
    )
    expect(body.locator("tr").nth(40)).to_be_attached(timeout=NIGHT_PROOF_MS)
    topics = [cells[1].replace("\n", "") for cells in rows(tab)]
    assert any(t.endswith("/telemetry") for t in topics)
    assert not [t for t in topics if t.endswith("/truth")]
    tab.goto(f"{stack.url}/#/controls")
    tab.get_by_role("textbox", name="API key").fill(stack.api_key)
    tab.get_by_role("button", name="Use key").click()
    tab.goto(f"{stack.url}/#/inspector")
    expect(tab.get_by_text("Ground truth (truth topics) is hidden")).to_be_hidden()
    expect(body.locator("td.topic", has_text="/truth").first).to_be_attached(timeout=NIGHT_PROOF_MS)
