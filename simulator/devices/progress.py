"""What ``factory simulate`` prints while it runs, for one process or several alike.

On a terminal a live table, redrawn every second; in a log file (not a terminal) a line
``N messages sent, R/s; <who is online>; <flow control>`` every :data:`LOG_EVERY_WALL_S`, and in
between a line whenever who is online changes (at most every :data:`LINKS_EVERY_WALL_S`). What
is shown comes from a :class:`Progress`: the one-process
:class:`~simulator.devices.run.LiveFactory`, or the parent of ``--processes P`` adding up its
workers (:mod:`simulator.devices.shards`).
"""

from __future__ import annotations

import time
from typing import Protocol

from rich.console import Console
from rich.live import Live
from rich.table import Table

from simulator.devices.fleet_links import LinkCounts

STATUS_EVERY_WALL_S = 1.0
LOG_EVERY_WALL_S = 30.0
#: At most this often a log line says that robots connected, were refused or lost the broker.
LINKS_EVERY_WALL_S = 5.0


class Progress(Protocol):
    """A running fleet as the progress output sees it."""

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block up to ``timeout_s``; True once the run has ended."""
        ...

    def published(self) -> int: ...

    def links(self) -> LinkCounts: ...

    def status_table(self, rate_per_s: float) -> Table: ...

    def notices(self) -> list[str]:
        """Lines to print once (the flow control following the service or running free)."""
        ...

    def flow_line(self) -> str:
        """The flow control in a few words (:mod:`simulator.devices.flow`)."""
        ...


def show_progress(live: Progress, console: Console) -> None:
    """Until the run ends: a live table on a terminal, a line now and then in a log file."""
    last_count, last_t = 0, time.monotonic()
    last_log = last_t
    # The first tick says who is connected; after that, changes (throttled).
    last_links_t, last_links = last_t - LINKS_EVERY_WALL_S, LinkCounts()
    with Live(console=console, auto_refresh=False, transient=False) as screen:
        while not live.wait(STATUS_EVERY_WALL_S):
            now, count = time.monotonic(), live.published()
            rate = (count - last_count) / max(now - last_t, 1e-9)
            last_count, last_t = count, now
            links = live.links()
            for notice in live.notices():
                console.print(notice)
            if console.is_terminal:
                screen.update(live.status_table(rate), refresh=True)
            elif now - last_log >= LOG_EVERY_WALL_S:
                last_log = last_links_t = now
                last_links = links
                flow = live.flow_line()
                print(f"{count} messages sent, {rate:,.0f}/s; {links.line()}; {flow}", flush=True)
            elif links != last_links and now - last_links_t >= LINKS_EVERY_WALL_S:
                # A change in who is connected is said soon (against what was last said),
                # but at most every LINKS_EVERY_WALL_S.
                last_links_t, last_links = now, links
                print(links.line(), flush=True)
