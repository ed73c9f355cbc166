"""The maintenance engine on an ingest worker that shares PostgreSQL with others.

Every worker holds a :class:`~api.maintenance.loop.MaintenanceLoop`, but it stays on standby
(engine endpoints answer 503 naming the reason) until
:class:`~api.maintenance.leadership.Leadership` elects this worker. Then the seat starts the engine
afresh, exactly as a restarted service does: work orders restored from the store, the last hours of
telemetry and events replayed, alarms adopted, orders whose schedule command was never acknowledged
sent again (the robot runs a command id at most once), all under the loop's lock so no live message
slips in half-way; and only then takes the view's live messages (:mod:`api.ingest.view`). A worker
that loses the lock stops feeding and planning at once and goes back to standby, so two engines
never plan at the same time.
"""

from __future__ import annotations

import asyncio
import logging
import time

from api.ingest.view import ViewFeed
from api.maintenance.changes import ChangeTracker
from api.maintenance.loop import MaintenanceLoop
from api.warmup import start_loop
from contract.topics import Channel, Topic
from engine import MaintenanceEngine

log = logging.getLogger(__name__)

STANDBY = "this worker is on standby: the maintenance engine runs on the leader worker"


class EngineSeat:
    def __init__(
        self,
        maintenance: MaintenanceLoop,
        view: ViewFeed,
        run_id: str,
        *,
        warmup_h: float,
        warmup_max_rows: int,
    ) -> None:
        self.maintenance = maintenance
        self.view = view
        self.run_id = run_id
        self.warmup_h = warmup_h
        self.warmup_max_rows = warmup_max_rows
        self.took_over_s: float | None = None
        maintenance.standby = STANDBY

    async def elect(self) -> None:
        """Take the engine: a fresh one, restored and warmed up from the store, then fed."""
        loop = self.maintenance
        began = time.perf_counter()
        async with loop.lock:
            old = loop.engine
            engine = MaintenanceEngine(old.scenario, old.policy_name)
            loop.engine = engine
            loop.tracker = ChangeTracker(engine, self.run_id)
            loop.last_plan_ts = None
            loop.boots = {}
            store = loop.store
            known = await asyncio.to_thread(store.robots)
            clock = await asyncio.to_thread(store.clock)
            for robot in known:  # where to send commands: as each robot last published
                loop.sender.topics[robot.id] = Topic(
                    robot.site, robot.area, robot.line, robot.id, Channel.CMD
                )
            await start_loop(loop, known, clock, self.warmup_h, self.warmup_max_rows)
            loop.standby = None
            self.view.on_new = loop.on_committed
        self.took_over_s = time.perf_counter() - began
        log.info("maintenance engine restored from the store in %.2f s", self.took_over_s)

    async def lose(self) -> None:
        """Stop feeding and planning now; another worker may already hold the lock."""
        self.view.on_new = None
        async with self.maintenance.lock:
            self.maintenance.standby = STANDBY
