"""The clock guard: which message times the service trusts (docs/contract.md, "Clock guard").

The service reasons in simulated time, so one message with a wrong ``ts`` could move its clock a
year ahead (every chart empty, work orders placed in December) or expire genuine orders. The
guard runs in the ingest pipeline before anything is stored and refuses, with reason ``clock``:

- **ahead**: a message whose newest time (``ts``, a reading's ``ts``, a state's ``since``) is
  more than the *lead* past the *reference* of its robot. The reference is the newest time any
  *other* robot has reached — accepted, or claimed by a message refused as ahead in the last
  ``claim_ttl_s`` wall seconds — so one login alone can never move the fleet's clock, not even by
  small steps, while a fleet-wide jump (every robot ahead at once: a simulator started later) is
  followed as soon as a second robot confirms it. A robot alone in the fleet is its own
  reference; the very first message of an empty fleet is trusted (and repaired on the next
  resume by :func:`trusted_clock` if it was wrong).
- **behind**: a telemetry, event or truth message older than the robot's own newest time by more
  than the replay window. Store-and-forward (``historical``) data within the window lands.

The lead is ``max(lead_min_s, lead_intervals × the robot's sample interval, pace × lead_wall_s)``
(or ``lead_s`` when set), where the pace is the simulated seconds per wall second the fleet's
clock has been moving lately, so the bound stays "a few samples" at factor 1 and at factor 600.
A message ahead is not necessarily wrong: the pipeline holds it and asks again
(:mod:`api.ingest.held`), so :meth:`ClockGuard.check` says which of the two a refusal is.
The guard runs in the writer thread only (one batch at a time); it is not thread-safe.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from api.settings import Settings
from contract.codec import Payload
from contract.payloads import Birth, State, Telemetry
from contract.topics import Channel

#: The reject reason of every message the guard refuses.
CLOCK = "clock"
#: Channels stored as rows, which the replay window applies to.
_ROWS = frozenset({Channel.TELEMETRY, Channel.EVENT, Channel.TRUTH})
_TS = operator.attrgetter("ts")
#: Wall seconds between two samples of the pace.
PACE_SAMPLE_WALL_S = 2.0
#: Wall seconds before the pace so far counts, until the first full sample.
PACE_FIRST_WALL_S = 0.1


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the guard does not trust a time (the dead letter's detail), and whether it is ahead
    of the fleet's clock (which the fleet may yet confirm) rather than behind the robot's own."""

    detail: str
    ahead: bool


@dataclass(frozen=True, slots=True)
class ClockRule:
    """The guard's settings (see :class:`api.settings.Settings`)."""

    lead_s: float | None = None
    lead_intervals: float = 4.0
    lead_min_s: float = 300.0
    lead_wall_s: float = 5.0
    replay_window_s: float = 7 * 86400.0
    default_interval_s: float = 60.0
    claim_ttl_s: float = 60.0
    hold_s: float = 30.0
    hold_max: int = 500

    @classmethod
    def of(cls, settings: Settings) -> ClockRule:
        return cls(
            lead_s=settings.clock_max_lead_s,
            lead_intervals=settings.clock_lead_intervals,
            lead_min_s=settings.clock_lead_min_s,
            lead_wall_s=settings.clock_lead_wall_s,
            replay_window_s=settings.clock_replay_window_s,
            claim_ttl_s=settings.clock_claim_ttl_s,
            hold_s=settings.clock_hold_s,
            # Held messages are unacknowledged: leave the broker room to deliver the rest.
            hold_max=min(settings.clock_hold_max, max(1, _in_flight_window(settings) // 2)),
        )


@dataclass(slots=True)
class _Pace:
    """Simulated seconds per wall second of the fleet's clock, smoothed.

    Until the first full sample, the pace so far (from :data:`PACE_FIRST_WALL_S` on) counts if
    it is higher: a fleet started as fast as possible moves thousands of simulated seconds in its
    first wall second, and robots' messages reach the service a few samples apart (each client
    has its own in-flight window), which a lead of a few sample intervals alone would refuse.
    """

    per_wall_s: float = 0.0
    _wall: float | None = None
    _clock: float | None = None
    _sampled: bool = False
    _resumed: float = 0.0  # the pace known before the first observation (a resumed run's)

    def observe(self, clock: float, wall: float) -> None:
        if self._wall is None or self._clock is None:
            self._wall, self._clock, self._resumed = wall, clock, self.per_wall_s
            return
        elapsed = wall - self._wall
        if elapsed >= PACE_SAMPLE_WALL_S:
            sample = max(0.0, clock - self._clock) / elapsed
            self.per_wall_s = 0.5 * self.per_wall_s + 0.5 * sample
            self._wall, self._clock = wall, clock
            self._sampled = True
        elif not self._sampled and elapsed >= PACE_FIRST_WALL_S:
            self.per_wall_s = max(self._resumed, max(0.0, clock - self._clock) / elapsed)


@dataclass(slots=True)
class ClockGuard:
    """Decides, message by message, whether a time is trusted; remembers what it accepted."""

    rule: ClockRule = field(default_factory=ClockRule)
    wall: Callable[[], float] = time.monotonic
    newest: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    claims: dict[str, tuple[float, float]] = field(default_factory=dict)  # robot → (ts, wall)
    pace: _Pace = field(default_factory=_Pace)
    _top: list[tuple[float, str]] = field(default_factory=list)  # the two newest robots

    @classmethod
    def resumed(
        cls,
        rule: ClockRule,
        robots: Iterable[tuple[str, float | None, float | None]],
        pace: float | None = None,
    ) -> ClockGuard:
        """A guard that knows the stored robots: ``(robot, last_seen, sample_interval_s)``, and
        the pace the previous run went at (until the fleet's own pace is measured)."""
        guard = cls(rule)
        if pace is not None:
            guard.pace.per_wall_s = pace
        for robot, last_seen, interval in robots:
            if interval is not None:
                guard.intervals[robot] = interval
            if last_seen is not None:
                guard._advance(robot, last_seen)
        return guard

    def lead_s(self, robot: str) -> float:
        """How far past its reference a robot's message may be."""
        rule = self.rule
        if rule.lead_s is not None:
            return rule.lead_s
        interval = self.intervals.get(robot)
        if interval is None:
            interval = max(self.intervals.values(), default=rule.default_interval_s)
        return max(
            rule.lead_min_s,
            rule.lead_intervals * interval,
            self.pace.per_wall_s * rule.lead_wall_s,
        )

    def check(self, channel: Channel, payload: Payload) -> Refusal | None:
        """``None`` and the time remembered if trusted, else why not."""
        robot = payload.robot
        newest_ts, oldest_ts = _span(payload)
        own = self.newest.get(robot)
        if own is not None and oldest_ts < own - self.rule.replay_window_s and channel in _ROWS:
            return Refusal(
                f"ts {oldest_ts:.0f} is {own - oldest_ts:.0f} s behind this robot's newest "
                f"({own:.0f}); the replay window is {self.rule.replay_window_s:.0f} s",
                ahead=False,
            )
        now = self.wall()
        reference = self._reference(robot, now)
        if reference is not None and newest_ts > reference:  # only then is the lead needed
            lead = self.lead_s(robot)
            if newest_ts > reference + lead:
                self.claims[robot] = (newest_ts, now)
                return Refusal(
                    f"ts {newest_ts:.0f} is {newest_ts - reference:.0f} s ahead of the fleet's "
                    f"clock ({reference:.0f}); at most {lead:.0f} s is accepted",
                    ahead=True,
                )
        if isinstance(payload, Birth):
            self.intervals[robot] = payload.sample_interval_s
        self._advance(robot, newest_ts)
        self.pace.observe(self._top[0][0], now)
        return None

    def _reference(self, robot: str, now: float) -> float | None:
        top = self._top
        if top and top[0][1] != robot:
            reference: float | None = top[0][0]
        elif len(top) > 1:
            reference = top[1][0]
        else:
            reference = self.newest.get(robot)
        if not self.claims:
            return reference
        ttl = self.rule.claim_ttl_s
        for other, (claimed, at) in list(self.claims.items()):
            if now - at > ttl:
                del self.claims[other]
            elif other != robot and (reference is None or claimed > reference):
                reference = claimed
        return reference

    def _advance(self, robot: str, ts: float) -> None:
        if ts <= self.newest.get(robot, float("-inf")):
            return
        self.newest[robot] = ts
        # Times only grow, so the two newest robots are kept incrementally.
        top = self._top
        if top and top[0][1] == robot:  # the leader moved on: the common case
            top[0] = (ts, robot)
            return
        top = [entry for entry in top if entry[1] != robot]
        top.append((ts, robot))
        top.sort(reverse=True)
        self._top = top[:2]


def _in_flight_window(settings: Settings) -> int:
    """Unacknowledged messages the broker sends the service: its Receive Maximum on MQTT 5;
    on 3.1.1 the broker decides, and Mosquitto's default (``max_inflight_messages``) is 20."""
    return settings.mqtt_receive_maximum if settings.mqtt_protocol == "mqtt5" else 20


def _span(payload: Payload) -> tuple[float, float]:
    """The newest and oldest simulated time a message claims."""
    newest = oldest = payload.ts
    if isinstance(payload, Telemetry):
        times = list(map(_TS, payload.readings))
        times.append(newest)
        newest, oldest = max(times), min(times)
    elif isinstance(payload, State):
        newest = max(newest, payload.since)
    return newest, oldest


def trusted_clock(
    robots: Iterable[tuple[str, float]], lead_s: Callable[[str], float]
) -> tuple[float | None, list[str]]:
    """The stored clock a resume trusts, and the robots whose newest time is past it.

    ``robots`` are ``(robot, newest ts)``. The newest robot is trusted only if it is within its
    lead of the next one (the rule :class:`ClockGuard` applies live); a robot alone is trusted.
    So a clock poisoned before the guard existed (one robot a year ahead) is repaired.
    """
    ranked = sorted(((ts, robot) for robot, ts in robots), reverse=True)
    poisoned: list[str] = []
    while len(ranked) >= 2 and ranked[0][0] - ranked[1][0] > lead_s(ranked[0][1]):
        poisoned.append(ranked.pop(0)[1])
    return (ranked[0][0] if ranked else None), poisoned
