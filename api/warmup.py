"""Starting the maintenance loop after a restart without forgetting what it knew.

1. **Work orders** come back from the store into the engine (``restore_work_orders``); their ids
   continue after the highest one.
2. **Warm-up.** The engine keeps no state of its own, so a restart would forget a component that
   is half-way to failure (its baseline, trend and RUL). The last ``engine_warmup_h`` simulated
   hours of each robot's stored readings and events are replayed into it, in time order, then
   each robot's current state. Events replayed also re-apply robot answers the previous run had
   committed but not yet applied to its orders (a crash between the two). States are kept only
   as the latest one, so the operating clock of the replay relies on the engine's gap cap.
3. **Alarms** the previous run left active are matched with those the warm-up raised again: a
   match keeps its id and raise time; the others are cleared with the reason.
4. Orders that were planned or dispatched but not yet acknowledged have their schedule command
   sent again (robots run a command id at most once, so a copy that did arrive is harmless).
"""

from __future__ import annotations

import asyncio
import logging
import time

from api.maintenance.loop import MaintenanceLoop
from api.records import Robot
from api.records.maintenance import engine_work_order
from api.store import HistoryRow
from engine import MaintenanceEngine
from engine.maintenance import EVENT_KINDS
from engine.order_book import schedule_spec
from engine.work_orders import WorkOrderState

log = logging.getLogger(__name__)

#: States whose schedule command may not have reached the robot yet.
UNCONFIRMED = frozenset({WorkOrderState.PLANNED, WorkOrderState.DISPATCHED})


def replay(engine: MaintenanceEngine, robot: str, rows: list[HistoryRow]) -> int:
    """Feed stored readings and events of one robot into the engine; returns readings fed."""
    readings = 0
    for row in rows:
        if row.kind == "reading":
            engine.on_reading(robot, row.ts, row.data)
            readings += 1
            continue
        body = row.data
        kind = body.get("kind")
        if kind in EVENT_KINDS:
            engine.on_event(
                robot,
                row.ts,
                kind,
                component=body.get("component"),
                command_id=body.get("command_id"),
                status=body.get("status"),
                reason=body.get("reason"),
            )
    return readings


async def start_loop(
    loop: MaintenanceLoop,
    robots: list[Robot],
    clock: float | None,
    warmup_h: float,
    max_rows: int,
) -> None:
    """Restore, warm up and reconcile ``loop`` from its store (see the module docstring).
    ``robots`` are the robots the store knows, ``clock`` its newest simulated time."""
    engine, store = loop.engine, loop.store
    records = await asyncio.to_thread(store.work_orders)
    engine.restore_work_orders(engine_work_order(r) for r in reversed(records))
    followed = [r for r in robots if r.id in loop.robots]
    if clock is not None and warmup_h > 0:
        began = time.perf_counter()
        since_ts = clock - warmup_h * 3600.0
        readings = 0
        for robot in followed:
            rows = await asyncio.to_thread(store.recent_history, robot.id, since_ts, max_rows)
            readings += await asyncio.to_thread(replay, engine, robot.id, rows)
        log.info(
            "engine warmed up with %d readings of %d robots (%g simulated h) in %.2f s",
            readings,
            len(followed),
            warmup_h,
            time.perf_counter() - began,
        )
    loop.boots = {r.id: r.boot for r in followed if r.boot is not None}
    for robot in followed:
        if robot.state is not None and robot.state_since is not None:
            engine.on_state(robot.id, robot.state_since, robot.state)
    loop.tracker.start({r.id: len(r.history) for r in records})
    stored_active = await asyncio.to_thread(store.alarms, True)
    if clock is not None:
        why = (
            f"not raised again when the service restarted and re-read the last {warmup_h:g} "
            "simulated hours of telemetry"
        )
        leftovers = loop.tracker.adopt(stored_active, clock, why)
        if leftovers:
            await asyncio.to_thread(store.save_maintenance, [], leftovers)
    await loop.flush()
    if clock is not None:
        for wo in engine.work_orders(active_only=True):
            if wo.state in UNCONFIRMED and wo.expires_ts >= clock:
                spec = schedule_spec(wo)
                if loop.sender.send_spec(spec, clock):
                    engine.mark_dispatched(wo.id, clock)
        await loop.flush()
