"""``/api/stream``: live readings, state changes and events as Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.auth import ReadAccess
from api.deps import HubDep, MetricsDep, SettingsDep
from api.stream import StreamFilter, StreamHub

router = APIRouter(prefix="/api", tags=["stream"], dependencies=[ReadAccess])

StreamChannel = Annotated[
    list[Literal["birth", "state", "telemetry", "event"]] | None,
    Query(
        description="birth, state, telemetry or event; repeat to ask for several.",
        max_length=4,
    ),
]


@router.get("/stream", response_class=EventSourceResponse, summary="Live events (SSE)")
async def stream(
    hub: HubDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    line: Annotated[list[str] | None, Query(description="Only these lines.")] = None,
    robot: Annotated[list[str] | None, Query(description="Only these robots.")] = None,
    channel: StreamChannel = None,
) -> AsyncIterator[ServerSentEvent]:
    """One SSE event per committed message: ``event:`` is the channel, ``data:`` is JSON with the
    topic levels and the payload. A comment arrives first (``: connected``) and after every
    ``stream_heartbeat_s`` of silence. A client that reads too slowly is dropped; its stream
    ends with a comment saying so. Try ``curl -N 'http://HOST:PORT/api/stream?channel=state'``."""
    subscription = hub.subscribe(StreamFilter.of(line, robot, channel))
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
