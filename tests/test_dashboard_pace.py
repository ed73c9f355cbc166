"""The pace controls in the dashboard's top bar, in headless Chromium against the real stack:
choose a speed, pause (the simulated clock on the page stands still), resume (it moves again).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from brokers import require_broker
from browser import PageLog, Stack, chromium, live_stack, open_page, save_screenshot
from playwright.sync_api import Page, expect

from broker_config.embedded import BrokerProcess

pytestmark = [pytest.mark.browser, pytest.mark.integration]

#: The window over which a paused page's clock must not move, probed every PROBE_S.
STILL_WINDOW_S = 3.0
PROBE_S = 0.25


@pytest.fixture(scope="module")
def stack(
    _mosquitto_process: BrokerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    require_broker("mosquitto")
    with live_stack(_mosquitto_process, tmp_path_factory.mktemp("pace"), seed=3) as running:
        yield running


@pytest.fixture
def page(stack: Stack, request: pytest.FixtureRequest) -> Iterator[tuple[Page, PageLog]]:
    with chromium() as browser:
        tab, log = open_page(browser, origin=stack.url)
        try:
            yield tab, log
        finally:
            save_screenshot(tab, f"dashboard-{request.node.name}")
            tab.context.close()
    log.assert_clean()


def test_pause_and_resume_from_the_top_bar(page: tuple[Page, PageLog], stack: Stack) -> None:
    tab, log = page
    log.allow(r"status of 401")
    tab.goto(f"{stack.url}/#/")
    toggle = tab.get_by_test_id("pace-toggle")
    status = tab.get_by_test_id("pace-status")
    expect(toggle).to_have_text("Pause")
    # Without a key: refused, in words.
    tab.get_by_test_id("pace-speed").select_option("3600")
    expect(status).to_contain_text("401")
    tab.goto(f"{stack.url}/#/controls")
    tab.get_by_role("textbox", name="API key").fill(stack.api_key)
    tab.get_by_role("button", name="Use key").click()
    tab.get_by_test_id("pace-speed").select_option("3600")
    expect(status).to_have_text("")
    expect(tab.get_by_test_id("pace-speed")).to_have_value("3600")
    assert httpx.get(f"{stack.url}/api/clock").json()["factor"] == 3600

    clock = tab.get_by_test_id("sim-clock")
    expect(clock).not_to_have_text("—")
    toggle.click()
    expect(toggle).to_have_text("Resume")
    expect(status).to_have_text("paused")
    assert httpx.get(f"{stack.url}/api/clock").json()["paused"] is True
    # The robots stop as soon as the retained pace reaches them; then the clock holds.
    held: list[str] = []

    def settled() -> bool:
        held.append(clock.inner_text())
        return len(held) >= 4 and len(set(held[-4:])) == 1

    deadline = time.monotonic() + 15.0
    while not settled():
        assert time.monotonic() < deadline, f"the page's clock kept moving: {held[-5:]}"
        time.sleep(PROBE_S)
    still = held[-1]
    end = time.monotonic() + STILL_WINDOW_S
    while time.monotonic() < end:
        time.sleep(PROBE_S)
        assert clock.inner_text() == still, "the simulated clock moved while paused"

    toggle.click()
    expect(toggle).to_have_text("Pause")
    expect(status).to_have_text("")
    expect(clock).not_to_have_text(still)
    assert httpx.get(f"{stack.url}/api/clock").json()["paused"] is False
