"""The stream hub without HTTP: filters, bounded per-client queues, dropping slow clients."""

from __future__ import annotations

import asyncio

import orjson

from api.app import create_app
from api.inbound import Inbound
from api.settings import Settings
from api.stream import ALL_CHANNELS, RAW_PAYLOAD_BYTES, StreamEvent, StreamFilter, StreamHub


def event(channel: str = "telemetry", robot: str = "r-1", line: str = "line-1") -> StreamEvent:
    return StreamEvent(channel, robot, line, f'{{"robot": "{robot}"}}')


def test_filters_admit_by_line_robot_and_channel() -> None:
    wanted = StreamFilter.of(["line-1"], None, ["state", "event"])
    assert wanted.admits(event("state"))
    assert not wanted.admits(event("telemetry"))
    assert not wanted.admits(event("state", line="line-2"))
    assert StreamFilter.of(None, ["r-2"], None).admits(event(robot="r-2"))
    assert not StreamFilter.of(None, ["r-2"], None).admits(event(robot="r-1"))
    assert StreamFilter.of([], [], []).admits(event())  # empty lists mean "no filter"


def test_a_slow_client_is_dropped_and_told_why_others_keep_their_events() -> None:
    async def scenario() -> tuple[list[object], list[object], int, int]:
        drops: list[int] = []
        hub = StreamHub(max_queue=3, on_drop=lambda: drops.append(1))
        slow = hub.subscribe(StreamFilter())
        fast = hub.subscribe(StreamFilter())
        received_fast: list[object] = []
        for n in range(5):
            hub.publish(event(robot=f"r-{n}"))
            received_fast.append(fast.queue.get_nowait())  # the fast client keeps up
        slow_items = [item async for item in StreamHub.events(slow, heartbeat_s=1.0)]
        return slow_items, received_fast, hub.clients, len(drops)

    slow_items, received_fast, clients, drops = asyncio.run(scenario())
    assert len(received_fast) == 5
    assert drops == 1
    assert clients == 1
    # Its queued events are discarded (it will not read them) and the stream ends with a reason.
    assert len(slow_items) == 1
    assert isinstance(slow_items[0], str)
    assert "too slowly" in slow_items[0]


def test_heartbeat_when_idle_and_close_ends_every_stream() -> None:
    async def scenario() -> list[object]:
        hub = StreamHub(max_queue=3)
        subscription = hub.subscribe(StreamFilter())
        items: list[object] = []
        async for item in StreamHub.events(subscription, heartbeat_s=0.01):
            items.append(item)
            if len(items) == 2:
                hub.close()
        return items

    items = asyncio.run(scenario())
    assert items[:2] == [None, None]
    assert items[2] == "the service is shutting down"


def test_the_stream_route_offers_exactly_the_streamed_channels() -> None:
    schema = create_app(Settings(mqtt_username="x")).openapi()
    parameters = schema["paths"]["/api/stream"]["get"]["parameters"]
    channel = next(p for p in parameters if p["name"] == "channel")
    items = channel["schema"]["anyOf"][0]["items"]
    assert set(items["enum"]) == set(ALL_CHANNELS)
    assert {"alarm", "work_order", "raw"} <= set(items["enum"])


def test_raw_is_only_for_clients_that_name_it() -> None:
    raw = event("raw")
    assert not StreamFilter().admits(raw)  # no channel filter: everything but raw
    assert StreamFilter().admits(event("alarm"))
    assert StreamFilter().admits(event("work_order"))
    assert StreamFilter.of(None, None, ["raw"]).admits(raw)
    assert not StreamFilter.of(None, None, ["raw"]).admits(event("telemetry"))
    hub = StreamHub(max_queue=3)
    assert not hub.wants_raw
    everything = hub.subscribe(StreamFilter())
    assert not hub.wants_raw
    inspector = hub.subscribe(StreamFilter.of(None, None, ["raw", "state"]))
    assert hub.wants_raw
    hub.publish(raw)
    assert everything.queue.empty()
    assert inspector.queue.get_nowait() is raw
    hub.unsubscribe(inspector)
    assert not hub.wants_raw


def test_a_raw_event_shows_the_message_as_received_cut_at_2_kib() -> None:
    body = ("x" + "é" * 2000).encode()  # 4001 bytes; the cut falls inside a two-byte character
    inbound = Inbound("factory/s/a/line-7/r-9/telemetry", body, 12.5, qos=1, retain=True)
    raw = StreamEvent.raw(inbound, "bad_json")
    assert (raw.channel, raw.robot, raw.line) == ("raw", "r-9", "line-7")
    data = orjson.loads(raw.data)
    assert data["topic"] == inbound.topic
    assert (data["qos"], data["retain"], data["received_at"]) == (1, True, 12.5)
    assert data["rejected"] == "bad_json"
    assert (data["size"], data["truncated"]) == (4001, True)
    assert data["payload"] == "x" + "é" * ((RAW_PAYLOAD_BYTES - 1) // 2) + "\ufffd"
    odd = StreamEvent.raw(Inbound("not/a/factory/topic", b"\xff", 1.0, qos=0), None)
    assert (odd.robot, odd.line) == ("", "")
    assert orjson.loads(odd.data)["payload"] == "\ufffd"
