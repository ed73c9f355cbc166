"""Headless Chromium for the dashboard's browser tests (Playwright, sync API).

Import with ``from browser import ...`` (pytest puts ``tests/`` on ``sys.path``). Debian's
Chromium is used (``/usr/bin/chromium``), never a browser Playwright downloads; without it the
tests are skipped, unless ``FACTORY_REQUIRE_BROWSER=1`` (CI), when they fail saying so. Mark
such tests ``@pytest.mark.browser``.

    with chromium() as browser:             # one Chromium for a module
        page, log = open_page(browser)      # 1280×720, the projector size
        page.goto(url)
        ...
        save_screenshot(page, "floor")      # test-artifacts/floor.png
        log.assert_clean()                  # no console errors, page errors or failed loads

:func:`with_dashboard` mounts the dashboard router on an app unless the app already has it
(``api/app.py`` includes it once the service owner adds the line).

:func:`live_stack` starts what the page runs against: the service under uvicorn on an ephemeral
port and the default scenario's robots simulated live, both on a site of their own on a session
broker (``_mosquitto_process`` from ``tests/conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Page,
    Request,
    ViewportSize,
    expect,
    sync_playwright,
)
from processes import lasting
from pydantic import SecretStr

from api.app import create_app
from api.routes import dashboard
from api.serve import BackgroundServer
from api.settings import Settings
from broker_config.embedded import BrokerProcess
from simulator.devices.run import LiveFactory
from simulator.model.scenario import Scenario, load_scenario

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_ENV = "FACTORY_REQUIRE_BROWSER"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
#: What a workshop projector shows.
VIEWPORT: ViewportSize = {"width": 1280, "height": 720}
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: Bound of every wait on a page condition.
WAIT_MS = 15_000
# ``expect(...)`` assertions wait for their condition up to this too (Playwright's own default,
# 5 s, is a guess a loaded machine beats).
expect.set_options(timeout=WAIT_MS)
#: The scenario's own pace: one simulated hour per wall second.
FACTOR = 3600.0
READY_TIMEOUT_S = 15.0
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "plant/scenarios/default.toml"


def require_chromium() -> Path:
    """Debian's Chromium, or skip (fail under FACTORY_REQUIRE_BROWSER=1)."""
    if CHROMIUM.exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: install Debian's chromium package to run browser tests"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1 requires them)")
    pytest.skip(message)


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    executable = require_chromium()
    with contextlib.ExitStack() as stack:
        with lasting():  # Playwright's driver and Chromium serve a whole module
            playwright = stack.enter_context(sync_playwright())
            browser = playwright.chromium.launch(
                executable_path=str(executable), headless=True, args=LAUNCH_ARGS
            )
        stack.callback(browser.close)
        yield browser


@dataclass
class PageLog:
    """What went wrong in a page: console errors, uncaught exceptions, failed or foreign loads."""

    origin: str = ""
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        # The page reports a view that failed to render as a "dashboard:" warning (the other
        # views go on); for a test that is an error like any other.
        if message.type == "error" or message.text.startswith("dashboard:"):
            self.errors.append(f"console: {message.text}")

    def on_page_error(self, error: Exception) -> None:
        self.errors.append(f"page error: {error}")

    def on_request(self, request: Request) -> None:
        if self.origin and not request.url.startswith((self.origin, "data:")):
            self.foreign.append(request.url)

    def on_request_failed(self, request: Request) -> None:
        # A stream closed by the page itself (navigation, page hide) is not a failure.
        if request.failure != "net::ERR_ABORTED":
            self.errors.append(f"request failed: {request.url} ({request.failure})")

    def allow(self, pattern: str) -> None:
        """Expect console errors matching ``pattern`` (e.g. the 401 a test provokes)."""
        self.allowed.append(re.compile(pattern))

    def assert_clean(self) -> None:
        unexpected = [e for e in self.errors if not any(p.search(e) for p in self.allowed)]
        assert not unexpected, f"the page reported errors: {unexpected}"
        assert not self.foreign, f"the page loaded from other origins: {self.foreign}"


def open_page(browser: Browser, origin: str = "") -> tuple[Page, PageLog]:
    """A fresh context (own sessionStorage) and page at 1280×720, watched by a :class:`PageLog`."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    log = PageLog(origin=origin)
    page.on("console", log.on_console)
    page.on("pageerror", log.on_page_error)
    page.on("request", log.on_request)
    page.on("requestfailed", log.on_request_failed)
    return page, log


def save_screenshot(page: Page, name: str) -> Path:
    """``test-artifacts/<name>.png`` (gitignored): what the page looked like, pass or fail."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def with_dashboard(app: FastAPI) -> FastAPI:
    """``app`` with the dashboard router, unless ``api/app.py`` already included it."""
    if not any(getattr(route, "path", None) == "/" for route in app.routes):
        app.include_router(dashboard.router)
    return app


@dataclass(frozen=True)
class Stack:
    url: str
    site: str
    scenario: Scenario
    robots: LiveFactory
    broker: BrokerProcess
    api_key: str


def scenario_file(site: str, directory: Path) -> Path:
    """The default scenario on a site of its own (the session broker is shared by all tests)."""
    text = DEFAULT_SCENARIO.read_text(encoding="utf-8")
    text, count = re.subn(r'(?m)^site = "[^"]*"', f'site = "{site}"', text)
    assert count == 1, "the default scenario's site line changed; update tests/browser.py"
    path = directory / "scenario.toml"
    path.write_text(text, encoding="utf-8")
    return path


@contextlib.contextmanager
def live_stack(broker: BrokerProcess, directory: Path, *, seed: int) -> Iterator[Stack]:
    """Service (with the dashboard) and twelve live robots on a new site of ``broker`` (Mosquitto:
    the service speaks MQTT 5). The robots start at the scenario's Monday 06:00."""
    site = f"t-{uuid.uuid4().hex[:8]}"
    scenario_path = scenario_file(site, directory)
    scenario = load_scenario(scenario_path)
    api_key = f"key-{os.urandom(6).hex()}"
    settings = Settings(
        state_dir=broker.state_dir,
        db_path=directory / "factory.db",
        scenario=str(scenario_path),
        broker_url=broker.url,
        mqtt_protocol="mqtt5",
        mqtt_client_id=f"svc-{os.urandom(4).hex()}",
        mqtt_topic_filter=f"factory/{site}/#",
        api_key=SecretStr(api_key),
        stream_heartbeat_s=1.0,
        # A fault command is stamped with the service's clock, its newest message time. At
        # FACTOR× the default 6 simulated hours of validity are a few wall seconds, and on a
        # loaded machine the robots can run that far ahead of what the service has ingested: the
        # robot would rightly reject the page's fault as expired. Expiry is not what the pages
        # test (tests/test_e2e_maintenance.py does, in lockstep with the service).
        fault_command_expiry_s=30 * 86400.0,
    )
    with BackgroundServer(with_dashboard(create_app(settings))) as server:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while httpx.get(f"{server.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "the service did not become ready"
            time.sleep(0.05)
        robots = LiveFactory(
            scenario,
            seed=seed,
            factor=FACTOR,
            host=broker.host,
            port=broker.port,
            state_dir=broker.state_dir,
        )
        robots.start()
        try:
            yield Stack(server.url, site, scenario, robots, broker, api_key)
        finally:
            robots.stop()
