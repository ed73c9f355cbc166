"""The participant page ``/join`` in headless Chromium against Mosquitto's WebSocket listener:
a login the broker does not know is refused; ``p01`` logs in, subscribes with wildcards and sees
the retained states, publishes under ``workshop/p01/``, and is refused, visibly, on ``factory/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from brokers import any_site_prefixes, require_broker
from browser import chromium, open_page, save_screenshot, with_dashboard
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import expect

from api.app import create_app
from api.serve import BackgroundServer
from api.settings import Settings
from broker_config.credentials import load_credentials
from broker_config.embedded import BrokerProcess, free_port, start_broker

pytestmark = [pytest.mark.browser, pytest.mark.integration]

SITE = "t-join"
STATE_TOPIC = f"factory/{SITE}/area-1/line-1/weld-01/state"


@pytest.fixture
def ws_broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    require_broker("mosquitto")
    broker = start_broker(
        "mosquitto",
        free_port(),
        tmp_path / "state",
        ws_port=free_port(),
        participants=1,
        robot_prefixes=any_site_prefixes(),
    )
    try:
        yield broker
    finally:
        broker.stop()


def retained_state(broker: BrokerProcess) -> None:
    """weld-01's retained state, as the robot would leave it."""
    credentials = load_credentials(broker.state_dir)
    assert credentials is not None
    client = mqtt.Client(CallbackAPIVersion.VERSION2, "robot-weld-01")
    client.username_pw_set(*credentials.get("weld-01"))
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(STATE_TOPIC, b'{"state":"RUNNING"}', qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_join_page_subscribes_sees_retained_states_and_shows_a_refusal(
    ws_broker: BrokerProcess, tmp_path: Path
) -> None:
    retained_state(ws_broker)
    settings = Settings(
        state_dir=ws_broker.state_dir,
        db_path=tmp_path / "f.db",
        broker_url=ws_broker.url,
        broker_ws_url=f"ws://127.0.0.1:{ws_broker.ws_port}",
        mqtt_client_id=f"svc-{os.urandom(4).hex()}",
        mqtt_topic_filter=f"factory/{SITE}/#",
    )
    with (
        BackgroundServer(with_dashboard(create_app(settings))) as server,
        chromium() as browser,
    ):
        page, log = open_page(browser, origin=server.url)
        try:
            page.goto(f"{server.url}/join")
            url = page.get_by_role("textbox", name="Broker address")
            expect(url).to_have_value(f"ws://127.0.0.1:{ws_broker.ws_port}")
            # A login the broker does not know is refused at connect, and says so.
            page.get_by_role("textbox", name="Login").fill("p99")
            page.get_by_role("textbox", name="Password").fill("wrong")
            page.get_by_role("button", name="Connect").click()
            expect(page.get_by_test_id("status")).to_contain_text("refused")
            credentials = load_credentials(ws_broker.state_dir)
            assert credentials is not None
            login, password = credentials.get("p01")
            page.get_by_role("textbox", name="Login").fill(login)
            page.get_by_role("textbox", name="Password").fill(password)
            page.get_by_role("button", name="Connect").click()
            expect(page.get_by_test_id("status")).to_have_text("connected as p01")
            page.get_by_role("button", name="Subscribe").click()
            lines = page.get_by_test_id("log")
            expect(
                lines.locator("[data-kind=ok]", has_text="subscribed to factory/+/+/+/+/state")
            ).to_have_count(1)
            expect(
                lines.locator("[data-kind=message]", has_text=f"{STATE_TOPIC} (QoS 1, retained)")
            ).to_have_count(1)
            page.get_by_role("textbox", name="Topic").fill("workshop/p01/hello")
            page.get_by_role("button", name="Publish").click()
            expect(
                lines.locator("[data-kind=ok]", has_text="published to workshop/p01/hello")
            ).to_have_count(1)
            page.get_by_role("textbox", name="Topic").fill(STATE_TOPIC)
            page.get_by_role("button", name="Publish").click()
            refused = lines.locator(
                "[data-kind=refused]", has_text=f"publish to {STATE_TOPIC} refused"
            )
            expect(refused).to_have_count(1)
            expect(refused).to_have_css("color", "rgb(179, 38, 30)")
        finally:
            save_screenshot(page, "join-page")
            page.context.close()
    log.assert_clean()
