"""``factory simulate``: the factory model run live, every robot an MQTT device.

:class:`LiveFactory` is the entry point that picks the environment — a realtime
:class:`~simulator.devices.pace.PacedEnvironment` at ``factor`` simulated seconds per wall second,
which the retained ``factory/{site}/pace`` message pauses, resumes and re-paces live, or a plain
``simpy.Environment`` for ``factor = 0`` (as fast as possible; it ignores the pace) — and wires
the model's sink to one :class:`~simulator.devices.agent.DeviceAgent` per robot, all driven by
one :class:`~simulator.devices.net_loop.NetworkLoop` (one network thread for the whole fleet; the
descriptor limit is checked for the fleet before any robot connects). The simulation runs in
its own thread; commands from the broker are queued and handed to the model inside that
thread by a small SimPy process, so the model is only ever touched by one thread.

Flow control (:mod:`.flow`): another SimPy process notes checkpoints of what the robots made and,
while the service reports that more than ``flow_window`` of them are not yet stored, holds the
simulation thread until it catches up. One :class:`~.ingest_watch.IngestWatch` per site hears
those reports.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import NoReturn

import simpy
from rich.console import Console
from rich.table import Table

from broker_config.credentials import CredentialsError, load_credentials
from contract.mqtt import broker_tls, parse_broker_url, resolve_cafile
from contract.pace import Pace
from contract.topics import Channel, Topic
from simulator.devices.agent import DEFAULT_BUFFER_MESSAGES, DeviceAgent
from simulator.devices.broker_link import (
    BrokerUnreachable,
    check_reachable,
    connect_or_fail,
    why_nothing,
)
from simulator.devices.descriptors import DescriptorLimit
from simulator.devices.fleet_links import LinkCounts, link_counts, stop_all
from simulator.devices.flow import DEFAULT_WINDOW, FlowGate, checkpoints
from simulator.devices.inbox import Command
from simulator.devices.ingest_watch import IngestWatch
from simulator.devices.net_loop import NetworkLoop
from simulator.devices.pace import PacedEnvironment
from simulator.devices.progress import show_progress
from simulator.devices.shard_plan import choose_processes
from simulator.devices.shard_procs import ShardRun
from simulator.devices.shards import run_shards
from simulator.model.factory import Factory
from simulator.model.records import Record, Sample
from simulator.model.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

#: How often (wall seconds) queued commands are handed to the model when running paced.
COMMAND_POLL_WALL_S = 0.05
#: How often (simulated seconds) they are handed over when running as fast as possible.
COMMAND_POLL_SIM_S = 60.0
#: How long the start waits for a first ingest-progress report (the retained one comes at once).
FLOW_HEARD_WAIT_S = 1.0
#: Simulated seconds between the newest data of a previous run and a resumed clock.
RESUME_GAP_S = 60.0
#: How long ``--resume-from`` waits for the service to answer.
RESUME_WAIT_S = 60.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """``"90s"``, ``"30m"``, ``"12h"``, ``"7d"``, ``"2w"`` or plain seconds → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"duration {text!r} is not like 90s, 30m, 12h, 7d or 2w")
    return float(match[1]) * _UNIT_S[match[2]]


class LiveFactory:
    """The scenario's robots, simulated and connected to a broker; see the module docstring."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int,
        factor: float,
        host: str,
        port: int,
        state_dir: Path,
        tls: bool = False,
        cafile: str | None = None,
        flow_window: int = DEFAULT_WINDOW,
        buffer_messages: int = DEFAULT_BUFFER_MESSAGES,
        spool_dir: Path | None = None,
    ) -> None:
        """``buffer_messages`` per robot wait in memory, more on disk under ``spool_dir/ROBOT``
        (default: a private temporary directory per robot), removed when it stops."""
        credentials = load_credentials(state_dir)
        if credentials is None:
            raise CredentialsError(
                f"no credentials in {state_dir}; start the broker first "
                f"(`factory broker --state-dir {state_dir}`) — it generates them"
            )
        self.scenario = scenario
        self.factor = factor
        if factor > 0:
            self.env: simpy.Environment = PacedEnvironment(factor)
        else:
            self.env = simpy.Environment()
        self.factory = Factory(self.env, scenario, seed, self._emit)
        self._commands: queue.SimpleQueue[Command] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.agents: dict[str, DeviceAgent] = {}
        self._newest_ts = float("-inf")
        #: Sensor readings the model made (each is sent, or buffered and sent later).
        self.readings_made = 0
        sites = {robot.site for robot in scenario.robots}
        self.flow = (
            FlowGate(flow_window, sites, self.made, lambda: self._newest_ts)
            if flow_window > 0
            else None
        )
        self.watches: list[IngestWatch] = []
        unheard = set(sites)  # each site's first robot's login hears its progress
        for robot in scenario.robots:
            if robot.id not in credentials.passwords:
                raise CredentialsError(
                    f"no credentials for robot {robot.id!r} in {state_dir}; restart the broker "
                    "with this scenario (`factory broker --scenario …`) to generate them"
                )
        # The robots, and a flow-control watch per site (simulator.devices.ingest_watch).
        self.network = NetworkLoop(clients=len(scenario.robots) + len(sites))
        for robot in scenario.robots:
            username, password = credentials.get(robot.id)
            model = self.factory.robots[robot.id]
            self.agents[robot.id] = DeviceAgent(
                Topic.for_robot(robot, Channel.STATE),
                host=host,
                port=port,
                username=username,
                password=password,
                boot=os.urandom(4).hex(),
                birth=lambda model=model: model.birth,  # type: ignore[misc]
                on_command=self._commands.put,
                wall_s_per_sim_s=1.0 / factor if factor > 0 else 0.0,
                telemetry_batch=scenario.telemetry_batch,
                on_pace=self.set_pace if factor > 0 else None,
                tls=tls,
                cafile=cafile,
                buffer_messages=buffer_messages,
                spool_dir=None if spool_dir is None else spool_dir / robot.id,
                network=self.network,
            )
            if self.flow is not None and robot.site in unheard:
                unheard.discard(robot.site)
                self.watches.append(
                    IngestWatch(
                        self.flow,
                        robot.site,
                        robot=robot.id,
                        host=host,
                        port=port,
                        username=username,
                        password=password,
                        network=self.network,
                        tls=tls,
                        cafile=cafile,
                    )
                )

    @property
    def now_ts(self) -> float:
        return self.factory.now_ts

    @property
    def paused(self) -> bool:
        return isinstance(self.env, PacedEnvironment) and self.env.paused

    def set_pace(self, pace: Pace) -> None:
        """Follow a pace from the broker (any thread; every robot hands in the same one)."""
        env = self.env
        if not isinstance(env, PacedEnvironment):
            return
        if env.set_pace(paused=pace.paused, sim_per_wall=pace.factor):
            self.factor = pace.factor
            for agent in self.agents.values():
                agent.wall_s_per_sim_s = 1.0 / pace.factor

    def _emit(self, record: Record) -> None:
        if self._stop.is_set():
            return  # stopping: the robots publish OFFLINE last, so nothing is made after it
        self._newest_ts = max(self._newest_ts, record.ts)
        if isinstance(record, Sample):
            self.readings_made += 1
        self.agents[record.robot].send(record)

    def made(self) -> int:
        """Messages the robots have made so far (published or buffered)."""
        return sum(agent.last_seq for agent in self.agents.values())

    def _pump(self) -> None:
        for agent in self.agents.values():
            agent.pump()

    def _command_pump(self) -> simpy.events.ProcessGenerator:
        while True:
            # Read each round: the pace may have changed the factor.
            period_s = self.factor * COMMAND_POLL_WALL_S if self.factor > 0 else COMMAND_POLL_SIM_S
            while True:
                try:
                    command = self._commands.get_nowait()
                except queue.Empty:
                    break
                if command.robot in self.factory.robots:
                    self.factory.handle(command)
            if self._stop.is_set():
                return
            yield self.env.timeout(max(period_s, 1e-3))

    def _heartbeat(self) -> simpy.events.ProcessGenerator:
        quiet_s = self.scenario.heartbeat_s
        while True:
            yield self.env.timeout(quiet_s / 2)
            now_ts = self.factory.now_ts
            for agent in self.agents.values():
                agent.heartbeat(now_ts, quiet_s)

    def start(self, duration_s: float | None = None, connect_timeout_s: float = 5.0) -> None:
        """Connect every robot, wait (bounded) for the connections, start the simulation thread.

        Robots that are not connected by then start anyway: what they make is buffered and
        sent, flagged historical, once they connect.
        """
        self.connect(connect_timeout_s)
        self.run(duration_s)

    def connect(self, timeout_s: float) -> None:
        """Start every robot's connection; wait until each is connected or refused, or for
        ``timeout_s`` at most."""
        for watch in self.watches:
            watch.start()
        for agent in self.agents.values():
            agent.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and not all(
            a.connected or a.refused for a in self.agents.values()
        ):
            time.sleep(0.01)
        if self.flow is not None:  # a service's retained report comes right after subscribing
            self.flow.wait_heard(max(0.0, min(FLOW_HEARD_WAIT_S, deadline - time.monotonic())))

    def connection_problems(self) -> dict[str, str]:
        """Why each robot that is not connected is not: robot id → reason."""
        return {
            robot_id: (
                f"the broker refused its login ({agent.refused})"
                if agent.refused
                else f"cannot connect ({agent.link_error})"
                if agent.link_error
                else "no answer from the broker yet"
            )
            for robot_id, agent in self.agents.items()
            if not agent.connected
        }

    def run(self, duration_s: float | None = None) -> None:
        """Start the simulation thread (robots not connected yet buffer what they make)."""
        self.factory.start()
        pump = self.env.process(self._command_pump())
        self.env.process(self._heartbeat())
        if self.flow is not None:
            after_hold = self.env.reanchor if isinstance(self.env, PacedEnvironment) else None
            self.env.process(
                checkpoints(
                    self.env, self.flow, lambda: self.factory.now_ts, self._pump, after_hold
                )
            )
        until: simpy.Event = pump
        if duration_s is not None:
            until = self.env.any_of([pump, self.env.timeout(duration_s)])
        self._thread = threading.Thread(
            target=self._run, args=(until,), name="simulation", daemon=True
        )
        self._thread.start()

    def _run(self, until: simpy.Event) -> None:
        try:
            self.env.run(until=until)
        except BaseException as exc:  # reported by the caller; the thread must not die silently
            self.error = exc
        finally:
            self._stop.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the run ends (duration reached or stopped); True if it ended."""
        return self._stop.wait(timeout_s)

    def stop(self) -> None:
        """Stop the simulation, then publish OFFLINE and disconnect every robot."""
        self._stop.set()
        if isinstance(self.env, PacedEnvironment):
            self.env.close()  # ends the run at once, even while paused
        if self.flow is not None:
            self.flow.close()  # ends a hold at once
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        for watch in self.watches:  # before the loop they ride on stops
            watch.stop()
        stop_all(list(self.agents.values()), self.network)

    def published(self) -> int:
        return sum(agent.stats.published for agent in self.agents.values())

    def links(self) -> LinkCounts:
        return link_counts(self.agents.values())

    def status_table(self, rate_per_s: float) -> Table:
        table = Table(title=f"{self.scenario.name}: {len(self.agents)} robots")
        for column in ("robot", "state", "link", "sent", "buffered", "dropped"):
            table.add_column(column)
        for robot_id, agent in self.agents.items():
            model = self.factory.robots[robot_id]
            table.add_row(
                robot_id,
                model.state,
                "up" if agent.connected else "[red]down[/]",
                str(agent.stats.published),
                str(agent.buffered),
                str(agent.stats.dropped),
            )
        sim_time = time.strftime("%a %Y-%m-%d %H:%M", time.gmtime(self.now_ts))
        pace = "paused" if self.paused else f"{self.factor:g}×"
        table.caption = (
            f"simulated {sim_time} UTC · {pace} · {rate_per_s:,.0f} messages/s · "
            f"{self.links().line()} · {self.flow_line(markup=True)}"
        )
        return table

    def notices(self) -> list[str]:
        return [] if self.flow is None else self.flow.news()

    def flow_line(self, markup: bool = False) -> str:
        """Whether the robots follow the service's ingest, and whether they wait for it now."""
        if self.flow is None:
            return "flow control off"
        line = self.flow.line()
        return f"[yellow]{line}[/]" if markup and self.flow.held else line


def resume_ts(
    service_url: str, timeout_s: float = 0.0, cafile: str | Path | None = None
) -> float | None:
    """Where a restarted simulation should continue: just after the newest simulated time the
    service at ``service_url`` holds (``None`` if it has no data yet). Waits up to ``timeout_s``
    for the service to answer. An ``https://`` service is verified with ``cafile`` (the local CA
    of the ``tls`` profile), else with the system's CAs."""
    context = None if cafile is None else ssl.create_default_context(cafile=str(cafile))
    deadline = time.monotonic() + timeout_s
    url = f"{service_url}/api/robots"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2.0, context=context) as response:
                robots = json.load(response)
            break
        except (urllib.error.URLError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise ValueError(f"cannot read {service_url}/api/robots to resume: {exc}") from None
            time.sleep(0.5)
    seen = [r["last_seen"] for r in robots if r.get("last_seen") is not None]
    return max(seen) + RESUME_GAP_S if seen else None


def with_start(scenario: Scenario, start: str) -> Scenario:
    """The scenario with another simulated start (ISO 8601, UTC)."""
    try:
        when = datetime.fromisoformat(start)
    except ValueError:
        raise ValueError(
            f"--start {start!r} is not an ISO 8601 time like 2026-01-05T06:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return parse_scenario({**scenario.model_dump(), "start": when}, "--start")


def _fail(message: str, code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_simulate(
    *,
    state_dir: Path,
    scenario: str | None,
    seed: int,
    factor: float | None,
    broker: str,
    duration: str | None,
    start: str | None = None,
    resume_from: str | None = None,
    cafile: str | None = None,
    flow_window: int = DEFAULT_WINDOW,
    processes: int | None = None,
) -> None:
    """The ``factory simulate`` command: run until ``duration`` or Ctrl-C / SIGTERM; with more
    than one process, as a shard per worker process (:mod:`simulator.devices.shards`)."""
    try:
        loaded = load_scenario(scenario)
        if resume_from is not None and start is None:
            https = resume_from.startswith("https://")
            https_ca = resolve_cafile(cafile, state_dir) if https else None
            resumed = resume_ts(resume_from, timeout_s=RESUME_WAIT_S, cafile=https_ca)
            start = None if resumed is None else datetime.fromtimestamp(resumed, UTC).isoformat()
        if start is not None:
            loaded = with_start(loaded, start)
        host, port = parse_broker_url(broker)
        duration_s = parse_duration(duration) if duration else None
        pace = loaded.factor if factor is None else factor
        if pace < 0:
            raise ValueError("--factor must be ≥ 0 (0 runs as fast as possible)")
        tls = broker_tls(broker)
        ca = resolve_cafile(cafile, state_dir) if tls else None
        workers = choose_processes(loaded, processes)
    except (ScenarioError, ValueError) as exc:
        _fail(str(exc))
    try:
        check_reachable(host, port)  # first: with no broker, nothing else matters yet
    except BrokerUnreachable as exc:
        _fail(str(exc), code=1)
    if workers > 1:
        options = ShardRun(
            seed, pace, broker, host, port, state_dir, duration_s, tls, ca, flow_window
        )
        run_shards(loaded, workers, options)
        return
    try:
        live = LiveFactory(
            loaded,
            seed=seed,
            factor=pace,
            host=host,
            port=port,
            state_dir=state_dir,
            tls=tls,
            cafile=ca,
            flow_window=flow_window,
        )
    except (CredentialsError, DescriptorLimit) as exc:
        _fail(str(exc))
    for signum in (signal.SIGINT, signal.SIGTERM):  # also if started with SIGINT ignored
        signal.signal(signum, _interrupt)
    console = Console(soft_wrap=True)  # a line in a log file stays one line
    # One try from the first robot's connect on: a Ctrl-C at any moment stops them in order.
    interrupted = False
    try:
        console.print(
            f"simulating {len(live.agents)} robots of {loaded.name!r} (seed {seed}, factor "
            f"{pace:g}) against {broker}; Ctrl-C stops and publishes OFFLINE"
        )
        connect_or_fail(live, host, port, console)
        live.run(duration_s)
        show_progress(live, console)
    except BrokerUnreachable as exc:
        _fail(str(exc), code=1)
    except KeyboardInterrupt:
        interrupted = True
        console.print("stopping: robots publish OFFLINE …")
    finally:
        live.stop()
    if live.error is not None:
        _fail(f"the simulation stopped: {live.error!r}", code=1)
    sent = live.published()
    if sent == 0 and not interrupted:
        _fail(f"no message was sent to the broker at {host}:{port}: {why_nothing(live)}", code=1)
    flow = "" if live.flow is None else f"; {live.flow.summary()}"
    console.print(f"done: {sent} messages sent, {live.readings_made} readings made{flow}")
