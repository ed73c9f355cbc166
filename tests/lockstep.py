"""Lockstep: a paced live factory that never runs more than a step of simulated time ahead of the
service it talks to, however busy the machine.

Why: a test that runs :class:`~simulator.devices.run.LiveFactory` at thousands of simulated
seconds per wall second against the real service turns every wall millisecond the service takes
(ingest, the engine's step, a command's hop back over the broker, the robot's command poll) into
simulated minutes. On a quiet machine the chain fits; on a machine with a load of 17 it costs
simulated days, so an outcome that depends on simulated time (a job done before a part fails, a
command received before it expires) becomes a race against the machine's load.

How: a SimPy process pauses the factory's clock at every multiple of ``step_s`` — from inside
the simulation thread, so it stops exactly there, with the same pause the retained
``factory/{site}/pace`` drives (:class:`~simulator.devices.pace.PacedEnvironment`). A thread
resumes it once the service has caught up:

* the maintenance loop has carried out a step in full (fed, planned, its commands handed to the
  MQTT client, its changes stored: ``stepped_ts``) through the newest message any robot made,
  and has ingested each robot's newest message;
* every command the service has sent has reached its robot (counted by the robot's inbox).

A test that keeps a robot away (nothing it makes can be heard meanwhile) moves the clock on
with :meth:`Lockstep.run_until`, to the first pause past a simulated time of its choosing.

Between pauses the factory runs at its factor, as usual; while it is paused no robot samples and
no command is handled. So the service never acts on data more than ``step_s`` old, and a command
it sends reaches its robot at most ``step_s`` plus one command poll (``factor`` × 0.05 s) of
simulated time after it was decided — bounds in simulated time, whatever the load. A loaded
machine only makes the run take longer in wall time. One exception, for liveness: a wait that
sees nothing for :data:`NUDGE_S` lets one step go (never two in a row), which at most doubles
the step in those bounds.

The service is the test's in-process app (``TestClient``): its lifespan state is read directly,
the same objects ``/metrics`` reports on (``factory_maintenance_stepped_sim_seconds``,
``factory_commands_sent_total``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import simpy

from simulator.devices.pace import PacedEnvironment
from simulator.devices.run import LiveFactory

#: While waiting, the thread re-checks this often (wall seconds).
PROBE_S = 0.002
#: A wait that sees no catching up for this long (wall seconds) lets the factory run one more
#: step, never two in a row: a last QoS 1 message held back in the 3-node NATS cluster until
#: more traffic follows (seen under load: published, not delivered to the service within 60 s)
#: then goes through, and the service still never lags more than two steps.
NUDGE_S = 5.0


class Lockstep:
    """See the module docstring. ``service`` is the app's lifespan state (``client.app_state``);
    ``stalled_s`` bounds, in wall seconds, one wait for the service (only a stuck one reaches
    it: :attr:`error` says so and the factory is left paused)."""

    def __init__(
        self, live: LiveFactory, service: Mapping[str, Any], step_s: float, stalled_s: float
    ) -> None:
        assert isinstance(live.env, PacedEnvironment), "lockstep needs a paced factory"
        self.live = live
        self.env: PacedEnvironment = live.env
        self.service = service
        self.step_s = step_s
        self.stalled_s = stalled_s
        self.error: str | None = None
        #: While the factory's clock is at or before this, it runs on without waiting.
        self.free_until: float | None = None
        #: Pauses so far; wall seconds spent waiting for the service in all and at most once.
        self.steps = 0
        self.held_s = 0.0
        self.max_held_s = 0.0
        #: Steps let run on by :data:`NUDGE_S`; True while the last one was.
        self.nudges = 0
        self._nudged = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._resume_loop, name="lockstep", daemon=True)

    def start(self) -> None:
        """Before the factory runs (SimPy is not thread-safe: the pausing process is added while
        the simulation thread does not run yet)."""
        self.env.process(self._pauses())
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)

    def line(self) -> str:
        """What the lockstep did, for a failure message."""
        return (
            f"{self.steps} steps of {self.step_s:g} simulated s, {self.held_s:.1f} wall s "
            f"waiting for the service (at most {self.max_held_s:.2f} s at once), "
            f"{self.nudges} let run on"
        )

    # --- the simulation thread -------------------------------------------------------------

    def _pauses(self) -> simpy.events.ProcessGenerator:
        env = self.env
        while True:
            yield env.timeout(self.step_s)
            env.set_pace(paused=True, sim_per_wall=env.sim_per_wall)

    # --- the lockstep thread ----------------------------------------------------------------

    def _resume_loop(self) -> None:
        env = self.env
        while not self._stop.is_set():
            if not env.paused:
                self._stop.wait(PROBE_S)
                continue
            start = time.monotonic()
            while not self._may_run():
                waited_s = time.monotonic() - start
                if not self._nudged and waited_s > NUDGE_S:
                    self._nudged = True
                    self.nudges += 1
                    break
                if waited_s > self.stalled_s:
                    self.error = (
                        f"the service did not catch up within {self.stalled_s:g} s: "
                        f"{self.behind()}; {self.line()}"
                    )
                    return
                if self._stop.wait(PROBE_S):
                    return
            else:
                self._nudged = False
            held_s = time.monotonic() - start
            self.steps += 1
            self.held_s += held_s
            self.max_held_s = max(self.max_held_s, held_s)
            env.set_pace(paused=False, sim_per_wall=env.sim_per_wall)

    def run_until(self, ts: float) -> None:
        """Let the factory run on, without waiting for the service, up to the first pause after
        simulated time ``ts`` (e.g. while a robot is away and what it makes cannot be heard)."""
        self.free_until = ts

    def _may_run(self) -> bool:
        if self.free_until is not None and self.live.now_ts <= self.free_until:
            return True
        return self.behind() is None

    def behind(self) -> str | None:
        """What the service has not caught up with yet; ``None`` once it has."""
        agents = self.live.agents
        made = max(agent.made_ts for agent in agents.values())
        stepped = self.service["maintenance"].stepped_ts
        if made and (stepped is None or stepped < made):
            sent = {a.robot: (a.stats.published, a.connected) for a in agents.values()}
            return (
                f"the engine stepped through {stepped}, the robots made up to {made} "
                f"(published, connected: {sent})"
            )
        robots = self.service["live"].robots
        for robot_id, agent in agents.items():
            heard = robots.get(robot_id)
            last_seen = None if heard is None else heard.last_seen
            if agent.made_ts and (last_seen is None or last_seen < agent.made_ts):
                return f"{robot_id} made up to {agent.made_ts}, the service has {last_seen}"
        received = sum(agent.stats.commands for agent in agents.values())
        sent = self._commands_sent()
        if received < sent:
            return f"the robots received {received} of the {sent:g} commands sent"
        return None

    def _commands_sent(self) -> float:
        counter = self.service["metrics"].commands_sent
        return sum(
            sample.value
            for metric in counter.collect()
            for sample in metric.samples
            if sample.name.endswith("_total")
        )
