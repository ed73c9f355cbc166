"""A worker process of ``factory simulate --processes P`` as the parent sees it.

:class:`Worker` starts ``python -m simulator.devices.shard_child`` in its own process group (so
a Ctrl-C on the terminal reaches only the parent, which stops the workers in order) under
``setpriv --pdeathsig TERM`` where that exists, hands it its shard as the first stdin line
(:func:`encode_spec`), keeps stdin open for ``run`` and ``stop`` — and as the worker's lifeline:
when the parent dies, however, the kernel closes it and the worker stops — and reads the JSON
lines the worker reports on a thread of its own into the parent's inbox. :meth:`Worker.problem`
says why a worker failed, if it did.
"""

from __future__ import annotations

import base64
import json
import pickle
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from broker_config.embedded import die_with_parent

#: How long the workers get to stop (OFFLINE for every robot) before they are killed.
STOP_WAIT_S = 30.0
CHILD_MODULE = "simulator.devices.shard_child"
#: How long a worker whose report pipe has closed may take to be gone.
EXIT_WAIT_S = 2.0


@dataclass(frozen=True)
class ShardRun:
    """What every worker runs with, as ``factory simulate`` resolved it."""

    seed: int
    factor: float
    broker: str
    host: str
    port: int
    state_dir: Path
    duration_s: float | None
    tls: bool
    cafile: str | None
    #: Each worker's own flow-control window (:mod:`simulator.devices.flow`).
    flow_window: int

    def spec(self, shard: dict[str, Any], index: int) -> dict[str, Any]:
        """What worker ``index`` is handed: its shard's scenario data and these options."""
        return {
            "scenario": shard,
            "index": index,
            "seed": self.seed,
            "factor": self.factor,
            "host": self.host,
            "port": self.port,
            "state_dir": str(self.state_dir),
            "duration_s": self.duration_s,
            "tls": self.tls,
            "cafile": self.cafile,
            "flow_window": self.flow_window,
        }


def encode_spec(spec: dict[str, Any]) -> bytes:
    """A worker's first stdin line: its shard's scenario data (with datetimes, hence pickle:
    the worker is this same program) and the run's options."""
    return base64.b64encode(pickle.dumps(spec)) + b"\n"


def decode_spec(line: bytes) -> dict[str, Any]:
    spec: dict[str, Any] = pickle.loads(base64.b64decode(line))  # our own parent wrote it
    return spec


class Worker:
    """One worker process and what it last said."""

    def __init__(self, index: int, of: int, shard: dict[str, Any], inbox: queue.Queue[Any]):
        self.index = index
        self.lines = [line["id"] for line in shard["lines"]]
        self.robots = sum(len(line["robots"]) for line in shard["lines"])
        self.process = subprocess.Popen(
            [*die_with_parent(), sys.executable, "-m", CHILD_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            process_group=0,  # Ctrl-C on the terminal reaches the parent, which stops them all
        )
        self.name = (
            f"process {index + 1} of {of} (pid {self.process.pid}: {span(self.lines)}, "
            f"{self.robots} robots)"
        )
        self.connected: dict[str, Any] | None = None
        self.status: dict[str, Any] = {}
        self.done: dict[str, Any] | None = None
        self.failed: dict[str, Any] | None = None
        self.ended = False  # its stdout closed: the process is gone or going
        self.killed = False
        assert self.process.stdout is not None
        reader = threading.Thread(
            target=_read, args=(index, self.process.stdout, inbox), daemon=True
        )
        reader.start()

    def tell(self, line: bytes) -> None:
        """Write to the worker's stdin; a worker already gone is not an error here."""
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(line)
            stdin.flush()
        except (BrokenPipeError, ValueError):
            pass

    def take(self, message: dict[str, Any] | None) -> None:
        if message is None:
            self.ended = True
        elif message["kind"] == "connected":
            self.connected = message
        elif message["kind"] == "status":
            self.status = message
        elif message["kind"] == "done":
            # The final counts; who was online is kept from while it ran (its robots have just
            # gone offline on purpose: they are not "reconnecting").
            self.done = message
            self.status = {**message, "links": self.status.get("links", message["links"])}
        elif message["kind"] == "failed":
            self.failed = message

    def problem(self, interrupted: bool) -> str | None:
        """Why this worker failed, if it did (``interrupted``: this process was told to stop,
        so a worker stopped by the same signal did not fail)."""
        if self.killed:
            return f"did not stop within {STOP_WAIT_S:g} s and was killed"
        if self.failed is not None:
            return str(self.failed["message"])
        if self.done is None:
            return f"ended without a report (exit code {self._exit_code()})"
        if self.done["error"] is not None:
            return f"the simulation stopped: {self.done['error']}"
        if self.done["ended_by"] not in ("end", "parent") and not interrupted:
            return f"was stopped from outside ({self.done['ended_by']})"
        return None

    def _exit_code(self) -> int | None:
        """Its exit code; its report pipe closes as it exits, so the wait is short."""
        try:
            return self.process.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            return None


def span(lines: list[str]) -> str:
    return lines[0] if len(lines) == 1 else f"lines {lines[0]} … {lines[-1]}"


def _read(index: int, stdout: IO[bytes], inbox: queue.Queue[Any]) -> None:
    for line in stdout:
        try:
            inbox.put((index, json.loads(line)))
        except ValueError:
            continue  # not a report; the worker's own output goes to stderr
    inbox.put((index, None))
