"""What changed in the engine since it was last persisted: work orders and alarms.

The engine is a pure library and tells nobody when a work order moves or an alarm is raised; it
changes them as readings, events and plans come in. :class:`ChangeTracker` finds the changes
cheaply after each step: a work order changed when its history grew (only orders that were
active, or are new, can change: closed ones never move again), an alarm when it appears in or
leaves the active set. :meth:`ChangeTracker.collect` returns the records to store and stream;
:meth:`ChangeTracker.commit` marks them persisted once the store took them.

Alarm ids: the engine numbers its alarms from 1 in every process, so the service gives each a
public id with the service's run id in it (``al-<run>-000012``), unique across restarts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from api.records.maintenance import Alarm, WorkOrder, alarm_record, work_order_record
from engine import Alarm as EngineAlarm
from engine import MaintenanceEngine


def _number(engine_alarm_id: str) -> int:
    tail = engine_alarm_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


@dataclass(slots=True)
class Changes:
    """Records to persist and stream, and what to remember once they are persisted."""

    work_orders: list[WorkOrder] = field(default_factory=list)
    alarms: list[Alarm] = field(default_factory=list)
    _lengths: dict[str, int] = field(default_factory=dict)
    _active: dict[str, EngineAlarm] | None = None
    _newest_alarm: int = 0

    def __bool__(self) -> bool:
        return bool(self.work_orders or self.alarms)


class ChangeTracker:
    def __init__(self, engine: MaintenanceEngine, run_id: str) -> None:
        self._engine = engine
        self._run_id = run_id
        #: History length persisted, for orders that may still change (active when last seen).
        self._persisted: dict[str, int] = {}
        self._orders_seen = 0
        #: Active engine alarms as last persisted, by engine id.
        self._active: dict[str, EngineAlarm] = {}
        self._newest_alarm = 0
        self._public: dict[str, str] = {}

    # --- ids -------------------------------------------------------------------------------

    def alarm_id(self, alarm: EngineAlarm) -> str:
        public = self._public.get(alarm.id)
        if public is None:
            public = self._public[alarm.id] = f"al-{self._run_id}-{_number(alarm.id):06d}"
        return public

    def alarm(self, alarm: EngineAlarm) -> Alarm:
        """The API record of an engine alarm."""
        return alarm_record(alarm, self.alarm_id(alarm))

    # --- start-up --------------------------------------------------------------------------

    def start(self, persisted: dict[str, int]) -> None:
        """Begin from the orders the engine was restored with (id → history length stored)."""
        self._orders_seen = len(self._engine.book.orders)
        self._persisted = {
            i: persisted.get(i, 0) for i, wo in self._engine.book.orders.items() if wo.active
        }
        self._active = {}
        self._newest_alarm = max((_number(a.id) for a in self._engine.alarms(False)), default=0)

    def adopt(self, stored: list[Alarm], now_ts: float, why_cleared: str) -> list[Alarm]:
        """Match alarms stored as active before a restart with those the engine raised again
        while warming up: a match keeps its stored id and raise time; stored ones left over are
        returned cleared (to be saved). Engine alarms without a match are new."""
        left = list(stored)
        for alarm in self._engine.alarms(active_only=True):
            for old in left:
                same = (old.robot, old.signal, old.severity, old.component, old.limit)
                if same == (
                    alarm.robot,
                    alarm.signal,
                    alarm.severity,
                    alarm.component,
                    alarm.limit,
                ):
                    self._public[alarm.id] = old.id
                    alarm.raised_ts = old.raised_ts  # active since then, not since the restart
                    self._active[alarm.id] = alarm
                    left.remove(old)
                    break
        cleared = {"cleared_ts": now_ts, "cleared_reason": why_cleared}
        return [a.model_copy(update=cleared) for a in left]

    # --- steps -----------------------------------------------------------------------------

    def collect(self) -> Changes:
        changes = Changes(_newest_alarm=self._newest_alarm)
        orders = self._engine.book.orders
        if len(orders) > self._orders_seen:
            for wo in itertools.islice(reversed(orders.values()), len(orders) - self._orders_seen):
                self._persisted.setdefault(wo.id, 0)
            self._orders_seen = len(orders)
        for wo_id, length in self._persisted.items():
            wo = orders[wo_id]
            if len(wo.history) != length:
                changes.work_orders.append(work_order_record(wo))
                changes._lengths[wo_id] = len(wo.history)
        book = self._engine.fleet.alarm_book
        active = {a.id: a for a in book.active()}
        if active.keys() != self._active.keys():
            raised = [a for i, a in active.items() if i not in self._active]
            cleared = [a for i, a in self._active.items() if i not in active]
            changes.alarms += [self.alarm(a) for a in (*cleared, *raised)]
            changes._active = active
        raised_total = book.raised_total  # also the newest engine alarm's number
        if raised_total > self._newest_alarm:
            fresh = sum(1 for i in active if _number(i) > self._newest_alarm)
            if fresh < raised_total - self._newest_alarm:
                # Raised and cleared again between two looks: only in the cleared history.
                changes.alarms += [
                    self.alarm(a)
                    for a in book.all()
                    if not a.active and _number(a.id) > self._newest_alarm
                ]
            changes._newest_alarm = raised_total
        return changes

    def commit(self, changes: Changes) -> None:
        orders = self._engine.book.orders
        for wo_id, length in changes._lengths.items():
            if orders[wo_id].active:
                self._persisted[wo_id] = length
            else:
                del self._persisted[wo_id]  # closed: it never changes again
        if changes._active is not None:
            self._active = changes._active
        self._newest_alarm = changes._newest_alarm
