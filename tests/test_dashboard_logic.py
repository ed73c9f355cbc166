"""The dashboard's pure logic run in headless Chromium: MQTT topic-filter matching (checked
against ``contract.topics.matches``) and the bounded buffers. No broker: a server with only the
dashboard router serves the modules.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser import chromium, open_page
from fastapi import FastAPI
from playwright.sync_api import Page

from api.routes import dashboard
from api.serve import BackgroundServer
from contract.topics import matches

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def origin() -> Iterator[str]:
    app = FastAPI()
    app.include_router(dashboard.router)
    with BackgroundServer(app) as server:
        yield server.url


@pytest.fixture(scope="module")
def tab(origin: str) -> Iterator[Page]:
    """A same-origin document (the icon) from which the page's modules can be imported."""
    with chromium() as browser:
        page, log = open_page(browser, origin=origin)
        page.goto(f"{origin}/static/favicon.svg")
        yield page
        page.context.close()
        log.assert_clean()


def test_topic_filters_match_like_a_broker(tab: Page) -> None:
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


def test_buffers_stay_bounded(tab: Page) -> None:
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
