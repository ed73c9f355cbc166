"""Wording of the reasons attached to decisions: times and windows the way a planner says them.

Times are simulated UTC. A window ending at midnight is shown as ending at 24:00 of its day.
"""

from __future__ import annotations

from datetime import UTC, datetime

from plant.calendar import Window

DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def when(ts: float) -> str:
    """``2026-01-12 14:00`` (UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def window_text(window: Window) -> str:
    """``Tue 22:00–24:00`` (a window longer than a day shows both dates)."""
    start = datetime.fromtimestamp(window.start, UTC)
    end = datetime.fromtimestamp(window.end, UTC)
    day = DAY_NAMES[start.weekday()]
    if end.date() == start.date():
        return f"{day} {start:%H:%M}–{end:%H:%M}"
    if window.end - window.start <= 86400.0 and end.hour == 0 and end.minute == 0:
        return f"{day} {start:%H:%M}–24:00"
    return f"{day} {start:%m-%d %H:%M}–{DAY_NAMES[end.weekday()]} {end:%m-%d %H:%M}"


def hours(seconds: float) -> str:
    """``38 h``, ``1.5 h`` or ``25 min``."""
    if seconds < 3600.0:
        return f"{seconds / 60.0:.0f} min"
    value = seconds / 3600.0
    return f"{value:.0f} h" if value >= 10 else f"{value:.1f} h".replace(".0 h", " h")
