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
from brokers import handle_for, require_broker
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
#: Robots measure only in shifts: a night without readings lasts 8 s of wall time at 3600×.
NIGHT_PROOF_MS = 20_000
#: Accelerated wear this strong outruns the engine's trend: zone C (an alarm) comes before the
#: planned job, a few simulated hours after the injection whenever in the week it is sent
#: (measured offline with the closed loop for this seed: 3–11 h).
FAULT_TARGET = ("weld-01", "reducer-j2")
FAULT_MAGNITUDE = 150
FAULT_WAIT_MS = 30_000
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "simulator/scenarios/default.toml"


@dataclass(frozen=True)
class Stack:
    url: str
    site: str
    scenario: Scenario
    robots: LiveFactory
    broker: BrokerProcess


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
            yield Stack(server.url, site, scenario, robots, broker)
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
    # A reading comes every 300 simulated seconds = 83 ms, except at night.
    expect(reading).not_to_have_text(first_value, timeout=NIGHT_PROOF_MS)
    expect(tab.get_by_test_id("sim-clock")).not_to_have_text(first_clock, timeout=NIGHT_PROOF_MS)


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
        timeout=NIGHT_PROOF_MS,
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
    pause = tab.get_by_role("button", name="Pause")
    pause.click()
    frozen = rows(tab)
    expect(tab.locator(".counts")).to_contain_text(
        re.compile(r"paused \([1-9]\d* new\)"), timeout=NIGHT_PROOF_MS
    )
    assert rows(tab) == frozen
    tab.get_by_role("button", name="Resume").click()
    tab.get_by_role("button", name="Clear").click()
    tab.wait_for_function(
        "() => document.querySelectorAll('[data-testid=raw-rows] tr').length < 150"
    )


def test_writes_without_the_right_api_key_say_what_to_do(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    tab, log = page
    log.allow(r"status of 40[13]")  # the browser logs the refused POSTs it was asked to make
    robot = stack.scenario.robots[2].id
    tab.goto(f"{stack.url}/#/controls?robot={robot}")
    form = tab.get_by_test_id("fault-form")
    submit = form.get_by_role("button", name="Inject fault")
    expect(submit).to_be_enabled()
    form.locator("select[name=fault]").select_option("overheat")
    submit.click()
    result = tab.get_by_test_id("fault-result")
    expect(result).to_have_text(re.compile(r"^401 .*STATE_DIR/api-key"))
    expect(result).to_have_attribute("role", "alert")
    key = tab.get_by_role("textbox", name="API key")
    key.fill("not-the-key")
    tab.get_by_role("button", name="Use key").click()
    submit.click()
    expect(result).to_have_text(re.compile(r"^403 .*wrong X-API-Key"))
    # A manual work order with a wrong key is refused the same way.
    order = tab.get_by_test_id("order-form")
    order.locator("input[name=component]").fill("gripper")
    order.get_by_role("button", name="Create work order").click()
    expect(tab.get_by_test_id("order-result")).to_have_text(re.compile(r"^403 "))


def test_a_manual_work_order_from_the_page_reaches_the_board(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    tab, _ = page
    robot = stack.scenario.robots[3]
    component = robot.kind.components[-1].name
    tab.goto(f"{stack.url}/#/controls?robot={robot.id}&form=order")
    tab.get_by_role("textbox", name="API key").fill(API_KEY)
    tab.get_by_role("button", name="Use key").click()
    order = tab.get_by_test_id("order-form")
    order.locator("input[name=component]").fill(component)
    order.locator("input[name=note]").fill("from the browser test")
    order.get_by_role("button", name="Create work order").click()
    result = tab.get_by_test_id("order-result")
    expect(result).to_have_text(re.compile(rf"^Work order wo-\S+ \w+: {robot.id} {component}"))
    order_id = result.inner_text().split()[2]
    tab.get_by_role("link", name="Work orders & alarms").click()
    card = tab.locator(f'.card[data-order="{order_id}"]')
    expect(card).to_contain_text(robot.id)
    expect(card).to_contain_text("manual")


def test_an_injected_fault_leads_to_an_alarm_and_a_work_order_on_the_page(
    page: tuple[Page, PageLog], stack: Stack
) -> None:
    tab, _ = page
    robot, component = FAULT_TARGET
    query: dict[str, str | int] = {"robot": robot, "limit": 1000}
    alarms_before = [a["id"] for a in httpx.get(f"{stack.url}/api/alarms", params=query).json()]
    orders_before = [
        o["id"] for o in httpx.get(f"{stack.url}/api/work-orders", params=query).json()
    ]
    # Inject during a shift: the service's clock is the newest message time, which stands still
    # while the robots are idle, and a command stamped hours behind the robot expires early.
    deadline = time.monotonic() + NIGHT_PROOF_MS / 1000
    while httpx.get(f"{stack.url}/api/robots/{robot}").json()["state"] != "RUNNING":
        assert time.monotonic() < deadline, f"{robot} did not start a shift"
        time.sleep(0.1)
    tab.goto(f"{stack.url}/#/controls?robot={robot}")
    tab.get_by_role("textbox", name="API key").fill(API_KEY)
    tab.get_by_role("button", name="Use key").click()
    form = tab.get_by_test_id("fault-form")
    form.locator("select[name=fault]").select_option("accelerated_wear")
    form.locator("input[name=component]").fill(component)
    form.locator("input[name=magnitude]").fill(str(FAULT_MAGNITUDE))
    form.get_by_role("button", name="Inject fault").click()
    # The page follows the command to the robot's answer (its ack on the event channel).
    expect(tab.get_by_test_id("fault-result")).to_have_text(
        re.compile(rf"^Sent accelerated_wear to {robot} as command \S+; the robot applied it")
    )
    tab.get_by_role("link", name="Floor", exact=True).click()
    tab.locator(tile(tab, robot)).click()
    # Its wear now runs FAULT_MAGNITUDE times faster: within hours of simulated time (seconds),
    # vibration leaves zone B, an alarm is raised and the engine plans a job on the component.
    tab.wait_for_function(
        """([component, alarmsBefore, ordersBefore]) => {
            const fresh = (selector, attribute, before) =>
                [...document.querySelectorAll(selector)].some(
                    (li) => li.innerText.includes(component)
                        && !before.includes(li.dataset[attribute]),
                );
            return fresh("[data-testid=robot-alarms] li[data-alarm]", "alarm", alarmsBefore)
                && fresh("[data-testid=robot-orders] li[data-order]", "order", ordersBefore);
        }""",
        arg=[component, alarms_before, orders_before],
        timeout=FAULT_WAIT_MS,
    )
    expect(
        tab.get_by_test_id("health").locator(f'tr[data-component="{component}"]')
    ).to_be_visible()
    tab.get_by_role("link", name="Work orders & alarms").click()
    expect(tab.locator(f'.card:has(a:text-is("{robot}"))', has_text=component)).not_to_have_count(0)
    expect(tab.get_by_test_id("alarm-rows").locator("tr", has_text=robot)).not_to_have_count(0)
