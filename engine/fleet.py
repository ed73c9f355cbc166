"""The robots as the engine follows them: operating clock, signals, components and their alarms.

Telemetry is only sampled while a robot runs, so wear is trended against *operating time*: the
clock advances by the gap between consecutive readings, capped at ``gap_cap_samples`` sample
intervals (a longer gap means the robot stopped in between), and pauses when the robot reports a
state other than RUNNING. A reading older than the last one is dropped and counted (the engine
needs time order; late store-and-forward replays still reach the store, just not the trend).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from engine.alarms import AlarmBook
from engine.config import SIGNALS, EngineConfig, KindConfig
from engine.prognostics import z_for
from engine.signals import SignalTrack
from engine.wear_model import DesignWear
from engine.zones import ALARM_SEVERITY, LEVEL_MEANING
from plant import ComponentSpec, Plant, Robot

#: Human names and units of the signals, for messages.
SIGNAL_LABELS: Mapping[str, tuple[str, str]] = {
    "vibration_rms_mm_s": ("vibration", "mm/s RMS"),
    "temperature_c": ("temperature", "°C"),
    "motor_current_a": ("motor current", "A"),
    "cycle_time_s": ("cycle time", "s"),
}
RUNNING = "RUNNING"


class UnknownRobot(KeyError):
    def __str__(self) -> str:
        return (
            f"unknown robot {self.args[0]!r}: it is not in the scenario the engine was built with"
        )


@dataclass(slots=True)
class ComponentTrack:
    spec: ComponentSpec
    primary: SignalTrack
    secondary: tuple[SignalTrack, ...]
    installed_op_s: float = 0.0
    installed_ts: float | None = None
    failed_ts: float | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def health_index(self) -> float:
        return 0.0 if self.failed_ts is not None else self.primary.health_index()


@dataclass(slots=True)
class RobotTrack:
    """Everything the engine knows about one robot."""

    robot: Robot
    cfg: KindConfig
    alarm_book: AlarmBook
    signals: dict[str, SignalTrack] = field(default_factory=dict)
    components: dict[str, ComponentTrack] = field(default_factory=dict)
    op_s: float = 0.0
    last_ts: float | None = None
    gap_cap_s: float = 600.0
    state: str | None = None
    state_ts: float | None = None
    late_readings: int = 0
    #: RUL fits run for this robot's signals so far (see :meth:`MaintenanceEngine.fits`).
    fits: int = 0

    def on_reading(self, ts: float, values: Mapping[str, float]) -> None:
        last = self.last_ts
        if last is not None:
            gap = ts - last
            if gap < 0.0:
                self.late_readings += 1
                return
            self.op_s += gap if gap < self.gap_cap_s else self.gap_cap_s
        self.last_ts = ts
        op_s = self.op_s
        signals = self.signals
        for name, x in values.items():
            signal = signals.get(name)
            if signal is not None:
                signal.update(ts, op_s, x)

    def on_state(self, ts: float, state: str) -> None:
        if state == self.state:
            return
        if state == RUNNING:
            self.last_ts = ts
        else:
            if self.state == RUNNING and self.last_ts is not None and ts >= self.last_ts:
                self.op_s += min(ts - self.last_ts, self.gap_cap_s)
            self.last_ts = None
        self.state, self.state_ts = state, ts

    def restore(self, component: str, ts: float) -> None:
        """A component was replaced or repaired: relearn its signals, clear their alarms."""
        track = self.components[component]
        track.installed_op_s, track.installed_ts, track.failed_ts = self.op_s, ts, None
        for signal in (track.primary, *track.secondary):
            signal.restart(self.op_s)
            self.alarm_book.clear_signal(self.robot.id, signal.name, ts, f"{component} restored")

    # --- alarms (called back by the signals) -----------------------------------------------

    def component_for(self, signal: SignalTrack) -> str:
        """The component an alarm on ``signal`` is about: the one it is primary for, else the
        least healthy of those that share it."""
        sharing = []
        for track in self.components.values():
            if track.primary is signal:
                return track.name
            if signal in track.secondary:
                sharing.append(track)
        return min(sharing, key=ComponentTrack.health_index).name if sharing else signal.name

    def on_severity(self, signal: SignalTrack, old: int, new: int, ts: float) -> None:
        key = (self.robot.id, signal.name, "level")
        if new < 2:
            self.alarm_book.clear(key, ts, f"back to {signal.zone()}")
            return
        label, unit = SIGNAL_LABELS.get(signal.name, (signal.name, ""))
        limits = signal.limits
        boundary = limits.boundaries[new - 1]
        where = (
            f"zone {limits.name(new)} of {limits.description} (≥ {boundary:g} {unit})"
            if signal.rule.mode == "iso10816"
            else f"{limits.name(new)} level (≥ {boundary:.3g} {unit}; {limits.description})"
        )
        self.alarm_book.raise_alarm(
            key,
            component=self.component_for(signal),
            severity=ALARM_SEVERITY[new],
            limit=limits.name(new),
            value=signal.level,
            message=f"{label} {signal.level:.3g} {unit} in {where}: {LEVEL_MEANING[new]}",
            ts=ts,
        )

    def on_stuck(self, signal: SignalTrack, stuck: bool, ts: float) -> None:
        key = (self.robot.id, signal.name, "stuck")
        if not stuck:
            self.alarm_book.clear(key, ts, "sensor values change again")
            return
        label, unit = SIGNAL_LABELS.get(signal.name, (signal.name, ""))
        self.alarm_book.raise_alarm(
            key,
            component=self.component_for(signal),
            severity="warning",
            limit="stuck",
            value=signal.last,
            message=(
                f"{label} sensor stuck at {signal.last:g} {unit} for {signal.stuck_after} "
                "readings: its values are ignored until it changes; check the sensor"
            ),
            ts=ts,
        )


def build_robot(robot: Robot, config: EngineConfig, alarm_book: AlarmBook) -> RobotTrack:
    """Set up the tracking of one scenario robot (raises ValueError on an unmapped component)."""
    cfg = config.for_kind(robot.kind_name)
    kind = robot.kind
    track = RobotTrack(
        robot, cfg, alarm_book, gap_cap_s=cfg.gap_cap_samples * kind.sample_interval_s
    )
    fit_z = z_for(cfg.interval_coverage)
    # The scenario's danger limits, where it declares them (older scenario models do not).
    danger: Mapping[str, float] = (
        getattr(kind, "danger_limits", None) or {} if cfg.scenario_limits else {}
    )
    designs: dict[str, set[DesignWear | None]] = {}
    for spec in kind.components:
        mapping = cfg.component_signals.get(spec.kind)
        if mapping is None:
            raise ValueError(
                f"robot kind {robot.kind_name!r}: component kind {spec.kind!r} has no signal "
                "mapping; add it to KindConfig.component_signals"
            )
        design = (
            DesignWear(spec.pf_mean_h, spec.pf_cv)
            if spec.pf_mean_h is not None and spec.pf_cv is not None
            else None
        )
        designs.setdefault(mapping.primary, set()).add(design)
    for name in SIGNALS:
        rule = cfg.rules.get(name)
        if rule is None:
            continue
        sensor = getattr(kind.sensors, name)
        track.signals[name] = SignalTrack(
            name,
            SIGNAL_LABELS[name][1],
            rule,
            cfg,
            nominal=sensor.base,
            nominal_noise=sensor.noise,
            danger=danger.get(name),
            kind_class=kind.vibration_class,
            sample_interval_s=kind.sample_interval_s,
            primary=name in designs,
            fit_z=fit_z,
            owner=track,
            # A signal shared by components of different design data follows its trend.
            design=next(iter(designs[name])) if len(designs.get(name, ())) == 1 else None,
        )
    for spec in kind.components:
        mapping = cfg.component_signals[spec.kind]
        if mapping.primary not in track.signals:
            raise ValueError(
                f"robot kind {robot.kind_name!r}: {spec.name} needs signal {mapping.primary!r}, "
                "which has no rule; add one to KindConfig.rules"
            )
        track.components[spec.name] = ComponentTrack(
            spec,
            track.signals[mapping.primary],
            tuple(track.signals[s] for s in mapping.secondary if s in track.signals),
        )
    return track


class Fleet:
    """All robots of a scenario as the engine tracks them, with the shared alarm book."""

    def __init__(self, scenario: Plant, config: EngineConfig) -> None:
        self.scenario = scenario
        self.config = config
        self.calendar = scenario.shift_calendar
        self.alarm_book = AlarmBook()
        self.robots = {r.id: build_robot(r, config, self.alarm_book) for r in scenario.robots}

    def robot(self, robot_id: str) -> RobotTrack:
        try:
            return self.robots[robot_id]
        except KeyError:
            raise UnknownRobot(robot_id) from None

    def component(self, robot_id: str, component: str) -> ComponentTrack:
        track = self.robot(robot_id)
        try:
            return track.components[component]
        except KeyError:
            raise ValueError(
                f"robot {robot_id} has no component {component!r}; "
                f"its components are {', '.join(track.components)}"
            ) from None

    def advance(self, ts: float, op_s: float) -> float:
        """Calendar time at which a robot working every production second from ``ts`` has
        worked ``op_s`` more seconds."""
        return self.calendar.advance_production(ts, op_s)
