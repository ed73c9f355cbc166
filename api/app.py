"""The service's FastAPI app: :func:`create_app` builds it; its lifespan runs the ingest.

On start the lifespan opens the store, loads live state from it, builds the maintenance engine
for the scenario and policy (restored and warmed up from the store, :mod:`api.warmup`), starts
the MQTT client (which connects in the background and keeps retrying) and the consumer task,
which feeds the engine after every commit (:mod:`api.maintenance`). On PostgreSQL (``db_url``)
several such workers may share the store and, with ``mqtt_shared_group``, the telemetry: each
then also keeps a view of every message (:mod:`api.ingest.view`) for live state, the stream and
the engine, which runs on one elected worker (:mod:`api.maintenance.leadership`,
:mod:`api.engine_seat`).
On stop it cancels and awaits the consumer, disconnects cleanly (the broker keeps the session
and queues for it), ends every stream and closes the store. Everything lives on the lifespan
state; nothing is global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from api.deps import AppState
from api.engine_seat import EngineSeat
from api.ingest.clock_guard import ClockGuard, ClockRule, trusted_clock
from api.ingest.consumer import Consumer
from api.ingest.hearing import watch_hearing
from api.ingest.inbox import Inbox
from api.ingest.metrics import Metrics
from api.ingest.mqtt_client import IngestClient
from api.ingest.pipeline import Pipeline
from api.ingest.progress import ProgressReport
from api.ingest.view import ViewFeed
from api.live import LiveState
from api.maintenance.command_sender import CommandSender
from api.maintenance.leadership import Leadership
from api.maintenance.loop import MaintenanceLoop
from api.maintenance.metrics import MaintenanceCollector
from api.pace import PaceDesk
from api.protocol_feed import ProtocolFeed
from api.rate_limit import WriteLimiter
from api.records import Robot
from api.routes import clock, dashboard, kpis, maintenance, ops, robots, stream
from api.settings import Settings, load_settings
from api.store import QueryRefused, Store
from api.store.opening import open_store
from api.stream import StreamHub
from api.warmup import start_loop
from broker_config.acl import SERVICE_USER
from broker_config.credentials import CredentialsError, load_credentials
from contract.topics import Channel, Topic
from engine import MaintenanceEngine
from plant import Plant, load_plant

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


def new_boot_id() -> str:
    """The service's boot id: in its command envelopes and its alarm ids."""
    return f"svc-{os.urandom(4).hex()}"


def placements(scenario: Plant, robots: list[Robot]) -> dict[str, Topic]:
    """Where each robot is: as it last published (the store), else as the scenario places it."""
    where = {r.id: Topic.for_robot(r, Channel.CMD) for r in scenario.robots}
    for robot in robots:
        where[robot.id] = Topic(robot.site, robot.area, robot.line, robot.id, Channel.CMD)
    return where


def guarded(robots: list[Robot]) -> list[tuple[str, float | None, float | None]]:
    return [(r.id, r.last_seen, r.sample_interval_s) for r in robots]


async def resume_clock(store: Store, rule: ClockRule) -> tuple[list[Robot], float | None]:
    """The stored robots and clock, repaired: a robot whose newest time is past the rest of the
    fleet by more than the clock guard allows (poisoned before the guard existed) has its
    messages past the trusted clock dropped (:func:`~api.ingest.clock_guard.trusted_clock`)."""
    known = await asyncio.to_thread(store.robots)
    guard = ClockGuard.resumed(rule, [(r.id, None, r.sample_interval_s) for r in known])
    seen = [(r.id, r.last_seen) for r in known if r.last_seen is not None]
    clock, poisoned = trusted_clock(seen, guard.lead_s)
    if clock is not None and poisoned:
        for robot in poisoned:
            dropped = await asyncio.to_thread(
                store.repair_clock, robot, clock + guard.lead_s(robot)
            )
            log.warning(
                "clock repaired: %s was ahead of the fleet; %d of its messages dropped",
                robot,
                dropped,
            )
        known = await asyncio.to_thread(store.robots)
    return known, await asyncio.to_thread(store.clock)


@contextlib.asynccontextmanager
async def run_service(settings: Settings, scenario: Plant | None = None) -> AsyncIterator[AppState]:
    """Open the store, connect to the broker, run the consumer and the maintenance loop; undo it
    all on exit. ``scenario`` overrides ``settings.scenario`` (tests build one in memory)."""
    username, password = service_credentials(settings)
    model = scenario if scenario is not None else load_plant(settings.scenario)
    loop = asyncio.get_running_loop()
    store = await asyncio.to_thread(open_store, settings)
    try:
        known, clock = await resume_clock(store, ClockRule.of(settings))
        guard = ClockGuard.resumed(
            ClockRule.of(settings), guarded(known), await asyncio.to_thread(store.recent_pace)
        )
        live = LiveState.from_robots(known, clock)
        live.lag.max_s = settings.ingest_lag_max_s
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

        client = IngestClient(
            settings,
            username,
            password,
            loop,
            inbox.put_all,
            on_status,
            on_takeover=metrics.session_takeovers.inc,
        )

        def on_idle() -> None:
            # Messages turned away were not acknowledged. Only now that everything queued is
            # committed and acknowledged, reconnect so the broker resends them (earlier, the
            # acks of the queued messages would be lost with the connection and the broker
            # would resend those same messages first, again and again).
            if inbox.take_overflow():
                background.add(task := asyncio.create_task(client.redeliver()))
                task.add_done_callback(background.discard)

        boot = new_boot_id()
        engine = MaintenanceEngine(model, settings.policy)
        where = placements(model, known)
        sender = CommandSender(boot, client.publish, metrics.commands_sent, where)
        pace = PaceDesk(client.publish, {topic.site for topic in where.values()})
        progress = ProgressReport(
            settings.mqtt_client_id, pace.sites, client.publish, live.lag, lambda: inbox.depth
        )
        maintenance = MaintenanceLoop(engine, store, sender, hub, boot)
        # On PostgreSQL several workers may share the store: one leads the engine (elected),
        # and each sees every message through its view (api.ingest.view) while it stores a share.
        workers = settings.db_url is not None
        view = (
            ViewFeed(settings, username, password, loop, live, hub, on_status) if workers else None
        )
        consumer = Consumer(
            inbox,
            Pipeline(store, guard),
            live,
            hub,
            metrics,
            client.ack,
            on_idle,
            max_messages=settings.ingest_batch_max_messages,
            max_wait_s=settings.ingest_batch_max_wait_ms / 1000,
            on_new=None if workers else maintenance.on_committed,
            live_and_stream=not workers,
            on_ignored=pace.observe,
            on_committed=progress.committed,
        )
        client.start()
        consumer_task: asyncio.Task[None] | None = None
        try:
            if view is None:
                await start_loop(
                    maintenance,
                    known,
                    clock,
                    settings.engine_warmup_h,
                    settings.engine_warmup_max_rows,
                )
            else:
                view.client.start()
                _start_leadership(settings, maintenance, view, boot, background)
            metrics.registry.register(MaintenanceCollector(maintenance))
            if settings.broker_log_path is not None:
                feed = ProtocolFeed(settings.broker_log_path, hub)
                feed_task = asyncio.create_task(feed.run(), name="protocol-feed")
                background.add(feed_task)
                feed_task.add_done_callback(background.discard)
            consumer_task = asyncio.create_task(consumer.run(), name="ingest-consumer")
            consumer_task.add_done_callback(lambda task: _consumer_ended(task, live))
            if settings.ingest_progress_interval_s > 0:
                report = asyncio.create_task(
                    progress.run(settings.ingest_progress_interval_s), name="ingest-progress"
                )
                background.add(report)
                report.add_done_callback(background.discard)
            if settings.mqtt_probe_interval_s > 0:
                watch = asyncio.create_task(
                    watch_hearing(client, live, metrics, settings), name="mqtt-hearing"
                )
                background.add(watch)
            yield AppState(
                settings=settings,
                store=store,
                live=live,
                hub=hub,
                metrics=metrics,
                maintenance=maintenance,
                pace=pace,
                limiter=WriteLimiter(settings.write_rate_per_s, settings.write_burst),
                plant=model,
            )
        finally:
            for task in list(background):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if consumer_task is not None:
                await consumer.drain(DRAIN_TIMEOUT_S)
                consumer_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await consumer_task
            for task in list(background):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await asyncio.to_thread(client.stop)
            if view is not None:
                await asyncio.to_thread(view.client.stop)
            hub.close()
    finally:
        await asyncio.to_thread(store.close)


def _start_leadership(
    settings: Settings,
    maintenance: MaintenanceLoop,
    view: ViewFeed,
    run_id: str,
    background: set[asyncio.Task[None]],
) -> None:
    """Run the view and compete for the engine (:mod:`api.maintenance.leadership`,
    :mod:`api.engine_seat`)."""
    assert settings.db_url is not None
    seat = EngineSeat(
        maintenance,
        view,
        run_id,
        warmup_h=settings.engine_warmup_h,
        warmup_max_rows=settings.engine_warmup_max_rows,
    )
    leadership = Leadership(
        settings.db_url,
        settings.mqtt_client_id,
        seat.elect,
        seat.lose,
        poll_s=settings.leader_poll_s,
    )
    for name, job in (("view", view.run()), ("leadership", leadership.run())):
        task = asyncio.create_task(job, name=name)
        background.add(task)
        task.add_done_callback(background.discard)


def _consumer_ended(task: asyncio.Task[None], live: LiveState) -> None:
    """The consumer stops only when the service does; if it ever ends otherwise, say so on
    ``/readyz`` (and in the log) rather than look ready while nothing is ingested."""
    if task.cancelled():
        return
    error = task.exception()
    reason = f"{type(error).__name__}: {error}" if error else "it returned"
    live.ingest_problem = f"the ingest consumer stopped ({reason}); restart the service"
    log.error("%s", live.ingest_problem, exc_info=error)


def end_streams(app: FastAPI) -> None:
    """End every open ``/api/stream`` now; callable from any thread or a signal handler.

    A server calls this as soon as a stop is asked for: uvicorn waits for open responses to
    finish before it runs the lifespan's teardown, so streams ended only there would hold the
    stop until the graceful timeout and then be cut off with an error, without a last word.
    """
    closer = getattr(app.state, "end_streams", None)
    if closer is not None:
        with contextlib.suppress(RuntimeError):  # the loop has already closed
            closer()


async def _query_refused(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status.HTTP_400_BAD_REQUEST)


def create_app(settings: Settings | None = None, *, scenario: Plant | None = None) -> FastAPI:
    """The app for ``settings`` (default: :func:`load_settings`, i.e. the environment); a
    ``scenario`` object replaces the settings' scenario file (for tests)."""
    resolved = settings if settings is not None else load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[AppState]:
        async with run_service(resolved, scenario) as state:
            loop = asyncio.get_running_loop()
            hub = state["hub"]
            app.state.end_streams = lambda: loop.call_soon_threadsafe(hub.close)
            yield state

    app = FastAPI(
        title="Smart-factory service",
        version=API_VERSION,
        description="Robots, their telemetry history and live events, ingested over MQTT; "
        "their health, alarms and maintenance work orders from the maintenance engine.",
        lifespan=lifespan,
    )
    app.add_exception_handler(QueryRefused, _query_refused)
    routers = (robots, kpis, maintenance, clock, stream, ops, dashboard)
    for module in routers:
        app.include_router(module.router)
    return app
