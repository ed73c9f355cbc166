"""One worker of ``factory simulate --processes P``: a shard of the fleet, run as a
:class:`~simulator.devices.run.LiveFactory` in a process of its own.

Started by :mod:`simulator.devices.shards` as ``python -m simulator.devices.shard_child``. The
parent writes the shard on the first line of stdin
(:func:`~simulator.devices.shard_procs.encode_spec`), then ``run`` once
every worker has reported its connections, and ``stop`` to end; the worker writes JSON lines to
stdout: ``connected`` (who is not, and why), ``status`` every second, then ``done`` (or
``failed`` if it could not start). Anything else the process prints goes to stderr.

No orphans: the end of stdin means the parent is gone (however it died: the kernel closes its
end of the pipe), and so does SIGTERM, which the parent's death also sends (``setpriv
--pdeathsig``); either stops the robots as a ``stop`` does — OFFLINE published — and the
process exits. SIGINT stops it too (when a user signals it directly: the parent puts its
workers in their own process group, so a Ctrl-C on the terminal reaches the parent only).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Any

from broker_config.credentials import CredentialsError
from simulator.devices.broker_link import CONNECT_WAIT_S, why_nothing
from simulator.devices.progress import STATUS_EVERY_WALL_S
from simulator.devices.run import LiveFactory
from simulator.devices.shard_procs import decode_spec
from simulator.model.scenario import ScenarioError, parse_scenario

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
#: Exit codes: as ``factory simulate``'s (2: it could not start; 1: the run failed).
START_FAILED, RUN_FAILED = 2, 1


class Stopped(Exception):
    """SIGTERM or SIGINT reached the worker: stop as if asked."""


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signal.Signals(signum).name)


class Reporter:
    """JSON lines to the parent; a write that fails means the parent is gone: ``gone`` is set."""

    def __init__(self, out: IO[str], gone: threading.Event) -> None:
        self._out = out
        self._gone = gone

    def send(self, kind: str, **fields: Any) -> None:
        try:
            self._out.write(json.dumps({"kind": kind, **fields}) + "\n")
            self._out.flush()
        except (OSError, ValueError):
            self._gone.set()


def _listen(stdin: IO[bytes], go: threading.Event, stop: threading.Event) -> None:
    """``run`` starts the simulation; ``stop`` or the end of stdin (the parent gone) stops."""
    for line in stdin:
        if line.strip() == b"run":
            go.set()
        elif line.strip() == b"stop":
            break
    stop.set()
    go.set()


def _status(live: LiveFactory) -> dict[str, Any]:
    agents = live.agents.values()
    return {
        "published": live.published(),
        "buffered": sum(agent.buffered for agent in agents),
        "dropped": sum(agent.stats.dropped for agent in agents),
        "links": dataclasses.asdict(live.links()),
        "now_ts": live.now_ts,
        "paused": live.paused,
        "factor": live.factor,
        "flow": live.flow_line(),
    }


def serve_shard(spec: dict[str, Any], stdin: IO[bytes], out: IO[str]) -> int:
    """Run the shard until its duration ends, the parent says stop or goes away; the exit code."""
    stop = threading.Event()
    go = threading.Event()
    report = Reporter(out, stop)
    try:
        live = LiveFactory(
            parse_scenario(spec["scenario"], f"shard {spec['index'] + 1}"),
            seed=spec["seed"],
            factor=spec["factor"],
            host=spec["host"],
            port=spec["port"],
            state_dir=Path(spec["state_dir"]),
            tls=spec["tls"],
            cafile=spec["cafile"],
            flow_window=spec["flow_window"],
        )
    except (CredentialsError, ScenarioError) as exc:
        report.send("failed", message=str(exc), code=START_FAILED)
        return START_FAILED
    threading.Thread(target=_listen, args=(stdin, go, stop), name="parent", daemon=True).start()
    ended_by = "parent"
    try:
        live.connect(CONNECT_WAIT_S)
        problems = live.connection_problems()
        waited = any(not live.agents[robot].refused for robot in problems)
        report.send("connected", problems=problems, waited=waited)
        go.wait()
        if not stop.is_set():
            live.run(spec["duration_s"])
            while not stop.wait(STATUS_EVERY_WALL_S):
                if live.wait(0):
                    ended_by = "end"  # its --duration, or the simulation stopped
                    break
                report.send("status", **_status(live))
    except Stopped as stopped:
        ended_by = str(stopped)
    finally:
        for signum in STOP_SIGNALS:  # a second signal must not cut the OFFLINE round short
            signal.signal(signum, signal.SIG_IGN)
        live.stop()
    error = None if live.error is None else repr(live.error)
    report.send(
        "done",
        **_status(live),
        ended_by=ended_by,
        error=error,
        nothing=why_nothing(live) if live.published() == 0 else None,
    )
    return RUN_FAILED if error is not None else 0


def main() -> None:
    # The status pipe is the real stdout; whatever else prints goes to stderr.
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    for signum in STOP_SIGNALS:
        signal.signal(signum, _raise_stopped)
    try:
        spec = decode_spec(sys.stdin.buffer.readline())
        code = serve_shard(spec, sys.stdin.buffer, out)
    except Stopped:
        code = 0  # stopped before it started anything
    # The robots are stopped and reported; only the stdin listener may still be reading, and
    # an interpreter shutdown would wait on its lock: leave at once, output flushed.
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
