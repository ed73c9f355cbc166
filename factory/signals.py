"""Ctrl-C and ``kill`` stop every ``factory`` command in order, however it was started.

A process started as a background job of a script (``factory up &`` in a shell script, or under
``nohup``) inherits SIGINT *ignored*, and Python then never installs its own Ctrl-C handler: such
a ``factory up`` would go on running when its process group gets Ctrl-C. So the entry point sets
both handlers explicitly — SIGINT raises ``KeyboardInterrupt`` as usual, and SIGTERM (``kill``,
``docker stop``, ``factory up`` stopping its children) does the same — and every command stops
through the one ``except KeyboardInterrupt`` / ``finally`` path it already has for Ctrl-C.
"""

from __future__ import annotations

import signal
from types import FrameType

#: The signals that stop a command the way Ctrl-C does.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """Make SIGINT and SIGTERM raise ``KeyboardInterrupt`` in the main thread, even if the
    process inherited either of them ignored."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, _interrupt)
