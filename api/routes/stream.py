"""``/api/stream``: live readings, state changes, events, alarms and work orders as Server-Sent
Events; and, only when asked for, the raw message inspector (ground truth in it only for a client
holding the API key)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.auth import StreamHoldsKey
from api.deps import HubDep, MetricsDep, SettingsDep
from api.stream import StreamFilter, StreamHub

router = APIRouter(prefix="/api", tags=["stream"])

StreamChannel = Annotated[
    list[Literal["birth", "state", "telemetry", "event", "alarm", "work_order", "raw", "mqtt"]]
    | None,
    Query(
        description="Repeat to ask for several. Default: every channel except raw. "
        "raw (the message inspector: every message received, valid or not, with topic, qos, "
        "retain, payload text up to 2 KiB and the reject reason) and mqtt (the protocol inspector: "
        "connections, sessions, wills, every PUBLISH with its flags and sender, from the "
        "broker's log) only when named; messages carrying ground truth (truth topics) in raw "
        "only with the API key.",
        max_length=8,
    ),
]


@router.get("/stream", response_class=EventSourceResponse, summary="Live events (SSE)")
async def stream(
    hub: HubDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    truth: StreamHoldsKey,
    line: Annotated[list[str] | None, Query(description="Only these lines.")] = None,
    robot: Annotated[list[str] | None, Query(description="Only these robots.")] = None,
    channel: StreamChannel = None,
) -> AsyncIterator[ServerSentEvent]:
    """One SSE event per committed message: ``event:`` is the channel, ``data:`` is JSON with the
    topic levels and the payload. ``alarm`` events carry an Alarm (on raise and on clear),
    ``work_order`` events a WorkOrder (on every change), ``raw`` events
    ``{topic, qos, retain, payload, size, truncated, received_at, rejected}``. A comment arrives
    first (``: connected``) and after every ``stream_heartbeat_s`` of silence. A client that
    reads too slowly is dropped; its stream ends with a comment saying so. Ground truth (a
    ``truth`` topic, or a truth payload on any topic) reaches only a client that presents the
    API key, as ``X-API-Key`` or ``?api_key=`` (EventSource cannot set headers). Try
    ``curl -N 'http://HOST:PORT/api/stream?channel=state'``."""
    subscription = hub.subscribe(StreamFilter.of(line, robot, channel, truth=truth))
    metrics.stream_clients.set(hub.clients)
    try:
        yield ServerSentEvent(comment="connected")
        async for item in StreamHub.events(subscription, settings.stream_heartbeat_s):
            if item is None:
                yield ServerSentEvent(comment="heartbeat")
            elif isinstance(item, str):
                yield ServerSentEvent(comment=item)
            else:
                yield ServerSentEvent(event=item.channel, raw_data=item.data)
    finally:
        hub.unsubscribe(subscription)
        metrics.stream_clients.set(hub.clients)
