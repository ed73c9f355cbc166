"""``factory simulate --processes P``: the fleet as P worker processes, run by this one.

The scenario is cut into P shards of whole lines (:mod:`simulator.devices.shard_plan`); each
runs as ``python -m simulator.devices.shard_child`` (its own
:class:`~simulator.devices.run.LiveFactory`, SimPy environment and broker connections). This
process coordinates them and prints what one process would:

1. start every worker (in its own process group, ``setpriv --pdeathsig TERM`` where there is
   one) and hand it its shard on stdin;
2. wait until each has reported its connections, then judge them as one fleet — no robot
   connected is an error naming the broker, some is a warning naming who and why — and only
   then tell every worker ``run``, so the shards' clocks start together;
3. show the added-up progress (:mod:`simulator.devices.progress`: robots online, connecting,
   reconnecting, refused with reasons, messages sent and the rate) until every shard's
   ``--duration`` has run, Ctrl-C or SIGTERM, or a worker fails;
4. tell every worker ``stop`` (each publishes OFFLINE for its robots), wait
   :data:`STOP_WAIT_S` at most, SIGKILL what is left, and exit non-zero naming any worker that
   failed: one that could not start, crashed, stopped from outside or had to be killed.

A worker never outlives this process: it stops when its stdin ends, and the kernel closes that
pipe however this process dies (:mod:`simulator.devices.shard_child`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import signal
import subprocess
import sys
import time
from typing import Any, NoReturn

from rich.console import Console
from rich.table import Table

from simulator.devices.broker_link import CONNECT_WAIT_S, BrokerUnreachable, judge_connects
from simulator.devices.fleet_links import LinkCounts
from simulator.devices.progress import show_progress
from simulator.devices.shard_plan import shard_data
from simulator.devices.shard_procs import STOP_WAIT_S, ShardRun, Worker, encode_spec, span
from simulator.model.scenario import Scenario

#: How long a worker may take to start (imports, its robots' clients) before its connections.
START_WAIT_S = 60.0


class WorkerFailed(Exception):
    """A worker could not start; ``code`` is the exit code ``factory simulate`` gives."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_links(counts: list[LinkCounts]) -> LinkCounts:
    """The fleet's link counts from its shards' (numbers added, refusals added per reason)."""
    total: dict[str, Any] = {}
    empty = LinkCounts()
    for field in dataclasses.fields(LinkCounts):
        values = [getattr(c, field.name) for c in counts]
        if isinstance(getattr(empty, field.name), dict):
            merged: dict[str, int] = {}
            for value in values:
                for reason, n in value.items():
                    merged[reason] = merged.get(reason, 0) + n
            total[field.name] = merged
        else:
            total[field.name] = sum(values)
    return LinkCounts(**total)


def links_from(report: dict[str, Any]) -> LinkCounts:
    return LinkCounts(**report["links"]) if "links" in report else LinkCounts()


class ShardFleet:
    """The workers of one run, seen as one fleet (:class:`~simulator.devices.progress.Progress`)."""

    def __init__(self, scenario: Scenario, run: ShardRun) -> None:
        self.scenario = scenario
        self.options = run
        self._inbox: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()
        self.workers: list[Worker] = []

    def spawn(self, shards: list[dict[str, Any]]) -> None:
        """Start a worker a shard (each is in :attr:`workers` from its start on)."""
        for index, shard in enumerate(shards):
            worker = Worker(index, len(shards), shard, self._inbox)
            self.workers.append(worker)
            worker.tell(encode_spec(self.options.spec(shard, index)))

    def _pump(self, timeout_s: float | None) -> None:
        """Take the workers' reports: wait up to ``timeout_s`` for one, then take what is there."""
        try:
            index, message = self._inbox.get(timeout=timeout_s)
        except queue.Empty:
            return
        self.workers[index].take(message)
        while True:
            try:
                index, message = self._inbox.get_nowait()
            except queue.Empty:
                return
            self.workers[index].take(message)

    def await_connected(self) -> tuple[dict[str, str], bool]:
        """Every worker's connections, added up: robot id → why it is not connected, and
        whether some robot got no answer at all. Raises :class:`WorkerFailed` if one worker
        could not start."""
        deadline = time.monotonic() + START_WAIT_S + CONNECT_WAIT_S
        while not all(w.connected is not None for w in self.workers):
            for worker in self.workers:
                if worker.failed is not None:
                    raise WorkerFailed(str(worker.failed["message"]), int(worker.failed["code"]))
                if worker.ended and worker.connected is None:
                    raise WorkerFailed(f"{worker.name} ended before it connected its robots", 1)
            if time.monotonic() > deadline:
                late = ", ".join(w.name for w in self.workers if w.connected is None)
                raise WorkerFailed(f"no report of connections from {late}", 1)
            self._pump(0.2)
        problems: dict[str, str] = {}
        waited = False
        for worker in self.workers:
            assert worker.connected is not None
            problems.update(worker.connected["problems"])
            waited = waited or bool(worker.connected["waited"])
        return problems, waited

    def start_run(self) -> None:
        for worker in self.workers:
            worker.tell(b"run\n")

    def wait(self, timeout_s: float | None = None) -> bool:
        """Take reports for up to ``timeout_s``; True once every worker has ended, or as soon
        as one has ended early (failed, or stopped from outside)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            if all(w.ended for w in self.workers):
                return True
            if any(w.ended and w.problem(interrupted=False) for w in self.workers):
                return True
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._pump(left)

    def stop(self) -> None:
        """Tell every worker to stop, wait for them (bounded), kill what is left."""
        for worker in self.workers:
            worker.tell(b"stop\n")
        deadline = time.monotonic() + STOP_WAIT_S
        while not all(w.ended for w in self.workers) and time.monotonic() < deadline:
            self._pump(min(0.5, max(0.0, deadline - time.monotonic())))
        for worker in self.workers:
            try:
                worker.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.killed = True
                worker.process.kill()
                worker.process.wait()
            if worker.process.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    worker.process.stdin.close()
        self._pump(0)

    def published(self) -> int:
        return sum(int(w.status.get("published", 0)) for w in self.workers)

    def links(self) -> LinkCounts:
        return add_links([links_from(w.status) for w in self.workers])

    def status_table(self, rate_per_s: float) -> Table:
        robots = sum(w.robots for w in self.workers)
        table = Table(
            title=f"{self.scenario.name}: {robots} robots in {len(self.workers)} processes"
        )
        columns = ("process", "lines", "robots", "online", "sent", "buffered", "dropped", "flow")
        for column in columns:
            table.add_column(column)
        for worker in self.workers:
            status = worker.status
            table.add_row(
                f"{worker.index + 1} (pid {worker.process.pid})",
                span(worker.lines),
                str(worker.robots),
                str(links_from(status).online),
                str(status.get("published", 0)),
                str(status.get("buffered", 0)),
                str(status.get("dropped", 0)),
                str(status.get("flow", "")),
            )
        clocks = [w.status["now_ts"] for w in self.workers if "now_ts" in w.status]
        sim_time = time.strftime("%a %Y-%m-%d %H:%M", time.gmtime(min(clocks))) if clocks else "—"
        paused = any(w.status.get("paused") for w in self.workers)
        factor = next((w.status["factor"] for w in self.workers if "factor" in w.status), 0.0)
        pace = "paused" if paused else f"{factor:g}×"
        table.caption = (
            f"simulated {sim_time} UTC (the slowest shard) · {pace} · "
            f"{rate_per_s:,.0f} messages/s · {self.links().line()}"
        )
        return table

    def notices(self) -> list[str]:
        return []  # each worker's own flow control is in its row of the table

    def flow_line(self) -> str:
        """Each worker's flow control (its window is its own)."""
        return "; ".join(
            f"{w.index + 1}: {w.status['flow']}" for w in self.workers if "flow" in w.status
        )

    def why_nothing(self) -> str:
        reasons = [w.done["nothing"] for w in self.workers if w.done and w.done["nothing"]]
        return "; ".join(reasons) or "nothing was made to send (is --duration too short?)"


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_shards(scenario: Scenario, processes: int, run: ShardRun) -> None:
    """``factory simulate`` with ``processes`` workers; see the module docstring."""
    shards = shard_data(scenario, processes)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    console = Console(soft_wrap=True)
    sizes = "+".join(str(sum(len(line["robots"]) for line in s["lines"])) for s in shards)
    console.print(
        f"simulating {len(scenario.robots)} robots of {scenario.name!r} (seed {run.seed}, factor "
        f"{run.factor:g}) against {run.broker} in {processes} processes ({sizes} robots); "
        "Ctrl-C stops and publishes OFFLINE"
    )
    interrupted = False
    fleet = ShardFleet(scenario, run)
    try:
        fleet.spawn(shards)
        problems, waited = fleet.await_connected()
        judge_connects(len(scenario.robots), problems, waited, run.host, run.port, console)
        fleet.start_run()
        show_progress(fleet, console)
    except WorkerFailed as exc:
        _stop(fleet)
        _fail(str(exc), exc.code)
    except BrokerUnreachable as exc:
        _stop(fleet)
        _fail(str(exc), code=1)
    except KeyboardInterrupt:
        interrupted = True
        console.print("stopping: robots publish OFFLINE …")
    _stop(fleet)
    failed = [f"{w.name} {why}" for w in fleet.workers if (why := w.problem(interrupted))]
    if failed:
        _fail("; ".join(failed), code=1)
    sent = fleet.published()
    if sent == 0 and not interrupted:
        _fail(
            f"no message was sent to the broker at {run.host}:{run.port}: {fleet.why_nothing()}",
            code=1,
        )
    console.print(f"done: {sent} messages sent")


def _stop(fleet: ShardFleet) -> None:
    """Stop the workers; a second Ctrl-C while they publish OFFLINE does not cut that short."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    fleet.stop()
