"""The service's FastAPI app: :func:`create_app` builds it; its lifespan runs the ingest.

On start the lifespan opens the store, loads live state from it, starts the MQTT client (which
connects in the background and keeps retrying) and the consumer task. On stop it cancels and
awaits the consumer, disconnects cleanly (the broker keeps the session and queues for it), ends
every stream and closes the store. Everything lives on the lifespan state; nothing is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from api.consumer import Consumer
from api.deps import AppState
from api.inbox import Inbox
from api.ingest import Pipeline
from api.live import LiveState
from api.metrics import Metrics
from api.mqtt_client import IngestClient
from api.routes import ops, robots, stream
from api.settings import Settings, load_settings
from api.store import QueryRefused
from api.store_sqlite import SqliteStore
from api.stream import StreamHub
from broker_config.acl import SERVICE_USER
from broker_config.credentials import CredentialsError, load_credentials

API_VERSION = "1"
#: How long a stop waits for received messages to be committed and acknowledged.
DRAIN_TIMEOUT_S = 2.0

log = logging.getLogger(__name__)


def service_credentials(settings: Settings) -> tuple[str, str | None]:
    """The MQTT login: from the settings if given, else the state dir's ``service`` account."""
    if settings.mqtt_username is not None:
        password = settings.mqtt_password
        return settings.mqtt_username, None if password is None else password.get_secret_value()
    credentials = load_credentials(settings.state_dir)
    if credentials is None or SERVICE_USER not in credentials.passwords:
        raise CredentialsError(
            f"no service credentials in {settings.state_dir}: start the broker from that state "
            f"dir first (`factory broker --state-dir {settings.state_dir}`), "
            "or set FACTORY_MQTT_USERNAME and FACTORY_MQTT_PASSWORD"
        )
    return credentials.get(SERVICE_USER)


@contextlib.asynccontextmanager
async def run_service(settings: Settings) -> AsyncIterator[AppState]:
    """Open the store, connect to the broker, run the consumer; undo it all on exit."""
    username, password = service_credentials(settings)
    loop = asyncio.get_running_loop()
    store = await asyncio.to_thread(
        SqliteStore, settings.database, dead_letter_max_rows=settings.dead_letter_max_rows
    )
    try:
        live = LiveState.from_robots(
            await asyncio.to_thread(store.robots), await asyncio.to_thread(store.clock)
        )
        inbox = Inbox(settings.ingest_queue_max)
        metrics = Metrics(live, inbox)
        hub = StreamHub(settings.stream_client_queue, on_drop=metrics.stream_dropped.inc)
        background: set[asyncio.Task[None]] = set()

        def on_status(problem: str | None) -> None:
            if problem != live.broker_problem:
                if problem is None:
                    log.info("subscribed to %s at %s", settings.subscription, settings.broker_url)
                else:
                    log.warning("%s", problem)
            live.broker_problem = problem

        client = IngestClient(settings, username, password, loop, inbox.put_all, on_status)

        def on_idle() -> None:
            # Messages turned away were not acknowledged. Only now that everything queued is
            # committed and acknowledged, reconnect so the broker resends them (earlier, the
            # acks of the queued messages would be lost with the connection and the broker
            # would resend those same messages first, again and again).
            if inbox.take_overflow():
                background.add(task := asyncio.create_task(client.redeliver()))
                task.add_done_callback(background.discard)

        consumer = Consumer(
            inbox,
            Pipeline(store),
            live,
            hub,
            metrics,
            client.ack,
            on_idle,
            max_messages=settings.ingest_batch_max_messages,
            max_wait_s=settings.ingest_batch_max_wait_ms / 1000,
        )
        client.start()
        task = asyncio.create_task(consumer.run(), name="ingest-consumer")
        try:
            yield AppState(settings=settings, store=store, live=live, hub=hub, metrics=metrics)
        finally:
            await consumer.drain(DRAIN_TIMEOUT_S)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(client.stop)
            hub.close()
    finally:
        await asyncio.to_thread(store.close)


async def _query_refused(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_400_BAD_REQUEST)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: :func:`load_settings`, i.e. the environment)."""
    resolved = settings if settings is not None else load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        async with run_service(resolved) as state:
            yield state

    app = FastAPI(
        title="Smart-factory service",
        version=API_VERSION,
        description="Robots, their telemetry history and live events, ingested over MQTT.",
        lifespan=lifespan,
    )
    app.add_exception_handler(QueryRefused, _query_refused)
    for router in (robots.router, stream.router, ops.router):
        app.include_router(router)
    return app
