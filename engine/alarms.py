"""Alarms: raised when a signal reaches an alert or failure level, cleared when it recovers.

An alarm is active until it is cleared (``cleared_ts`` set). At most one alarm is active per robot,
signal and cause: when a warning escalates to critical, the warning is cleared and a critical alarm
raised, so the active list always shows the current severity. Cleared alarms are kept in a bounded
history (the experiment raises many over a 90-day run).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class Alarm:
    """One alarm; ``limit`` names the zone or limit reached, ``value`` the smoothed reading."""

    id: str
    robot: str
    component: str
    signal: str
    severity: str
    limit: str
    value: float
    message: str
    raised_ts: float
    cleared_ts: float | None = None
    cleared_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.cleared_ts is None


#: Cleared alarms kept for the history view.
MAX_CLEARED_ALARMS = 2000


class AlarmBook:
    """Active alarms by (robot, signal, cause), plus a bounded history of cleared ones."""

    def __init__(self, max_cleared: int = MAX_CLEARED_ALARMS) -> None:
        self._active: dict[tuple[str, str, str], Alarm] = {}
        self._cleared: deque[Alarm] = deque(maxlen=max_cleared)
        self._next = 1
        self.raised_total = 0

    def raise_alarm(
        self,
        key: tuple[str, str, str],
        *,
        component: str,
        severity: str,
        limit: str,
        value: float,
        message: str,
        ts: float,
    ) -> Alarm:
        """Raise (or replace) the alarm for ``key``; a different active one is cleared first."""
        current = self._active.get(key)
        if current is not None:
            if current.severity == severity and current.component == component:
                return current
            self.clear(key, ts, f"superseded by a {severity} alarm")
        robot, signal, _ = key
        alarm = Alarm(
            id=f"al-{self._next:06d}",
            robot=robot,
            component=component,
            signal=signal,
            severity=severity,
            limit=limit,
            value=value,
            message=message,
            raised_ts=ts,
        )
        self._next += 1
        self.raised_total += 1
        self._active[key] = alarm
        return alarm

    def clear(self, key: tuple[str, str, str], ts: float, reason: str) -> Alarm | None:
        alarm = self._active.pop(key, None)
        if alarm is not None:
            alarm.cleared_ts = ts
            alarm.cleared_reason = reason
            self._cleared.append(alarm)
        return alarm

    def clear_signal(self, robot: str, signal: str, ts: float, reason: str) -> None:
        """Clear every active alarm of one robot's signal (its component was restored)."""
        for key in [k for k in self._active if k[0] == robot and k[1] == signal]:
            self.clear(key, ts, reason)

    def active(self, robot: str | None = None) -> list[Alarm]:
        alarms = self._active.values()
        return sorted(
            (a for a in alarms if robot is None or a.robot == robot), key=lambda a: a.raised_ts
        )

    def all(self, robot: str | None = None) -> list[Alarm]:
        """Cleared (most recent history) and active alarms, oldest first."""
        every = [*self._cleared, *self._active.values()]
        return sorted(
            (a for a in every if robot is None or a.robot == robot), key=lambda a: a.raised_ts
        )
