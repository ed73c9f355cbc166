"""Engine configuration: smoothing, alarm rules, prognostics and planning, with documented defaults.

Everything an engineer would tune lives here, in frozen dataclasses. :class:`KindConfig` holds the
per-robot-kind settings (signal rules, smoothing, prognostics); :class:`EngineConfig` holds the
defaults, per-kind overrides and the plant-wide planning settings. Numbers marked *choice* are ours,
not from a standard; see docs/maintenance.md for the reasoning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

#: How often the planner runs, in simulated seconds (*choice*): the live service and the policy
#: experiment both call ``engine.plan`` at this cadence, so the experiment measures the service.
#: 30 minutes matches the freeze before a job starts (a job can be moved until the last tick
#: before it) and is half the one-hour command expiry (an unstarted job expires by the second
#: tick after).
PLAN_INTERVAL_S = 1800.0

VIBRATION = "vibration_rms_mm_s"
TEMPERATURE = "temperature_c"
CURRENT = "motor_current_a"
CYCLE_TIME = "cycle_time_s"
SIGNALS = (VIBRATION, TEMPERATURE, CURRENT, CYCLE_TIME)

SignalMode = Literal["iso10816", "rise_abs", "rise_rel"]


@dataclass(frozen=True, slots=True)
class SignalRule:
    """How one sensor signal is judged against its limits.

    ``iso10816``: absolute ISO 10816-1 zone limits of ``iso_class`` (None: the kind's class);
    ``watch``/``alert``/``failure`` are then ignored. ``rise_abs``: limits are rises over the
    learned healthy baseline in the signal's unit (°C). ``rise_rel``: rises as a fraction of the
    baseline (0.25 = +25 %). A learned baseline more than ``baseline_max_shift`` (same unit as
    the rises) above or below the scenario's nominal value is distrusted and the nominal value
    used instead: a component that was already worn when tracking began must not set its own,
    raised, "healthy" level, nor a robot learning on a light product a lowered one from which
    full load would look like wear.
    """

    mode: SignalMode
    watch: float = 0.0
    alert: float = 0.0
    failure: float = 0.0
    baseline_max_shift: float = 0.0
    iso_class: str | None = None


#: Default rules (*choice*, except the ISO zones): the signal leaves "healthy" at ``watch``,
#: raises a warning at ``alert`` and a critical alarm at ``failure``, which is also the level
#: prognostics extrapolates to.
DEFAULT_RULES: Mapping[str, SignalRule] = {
    VIBRATION: SignalRule("iso10816", baseline_max_shift=0.25),
    TEMPERATURE: SignalRule(
        "rise_abs", watch=6.0, alert=15.0, failure=30.0, baseline_max_shift=5.0
    ),
    CURRENT: SignalRule("rise_rel", watch=0.05, alert=0.125, failure=0.25, baseline_max_shift=0.1),
    CYCLE_TIME: SignalRule(
        "rise_rel", watch=0.06, alert=0.15, failure=0.30, baseline_max_shift=0.1
    ),
}


@dataclass(frozen=True, slots=True)
class ComponentSignals:
    """Which signals show a component's wear: the primary one drives health and prognostics, the
    secondary ones only raise alarms (they are shared between components)."""

    primary: str
    secondary: tuple[str, ...] = ()


#: Domain knowledge: reducer wear shows as gearbox vibration and friction (more current); servo
#: wear as winding temperature and current; gripper wear as slower cycles.
DEFAULT_COMPONENT_SIGNALS: Mapping[str, ComponentSignals] = {
    "reducer": ComponentSignals(VIBRATION, (CURRENT,)),
    "servo": ComponentSignals(TEMPERATURE, (CURRENT,)),
    "gripper": ComponentSignals(CYCLE_TIME),
}


@dataclass(frozen=True, slots=True)
class KindConfig:
    """Per robot kind: smoothing, state detection and prognostics settings."""

    #: Take the failure level of each signal from the scenario's per-kind danger limits
    #: (``KindSpec.danger_limits``, an engineer's setting) when the scenario declares them;
    #: the watch and alert levels of rise rules then scale with it.
    scenario_limits: bool = True
    #: EWMA weight of each new (despiked) sample; 0.15 at 300 s samples ≈ a 30-minute memory.
    ewma_alpha: float = 0.15
    #: This many identical raw values in a row mean a stuck sensor (real noise never repeats).
    stuck_readings: int = 6
    #: Readings after install/restore from which the healthy baseline is learned.
    baseline_readings: int = 24
    #: An alarm clears only this fraction of (failure − baseline) below its raise level.
    hysteresis_fraction: float = 0.03
    #: Operating time between two readings is capped at this many sample intervals.
    gap_cap_samples: float = 2.0
    rules: Mapping[str, SignalRule] = field(default_factory=lambda: dict(DEFAULT_RULES))
    component_signals: Mapping[str, ComponentSignals] = field(
        default_factory=lambda: dict(DEFAULT_COMPONENT_SIGNALS)
    )
    #: Despiked samples are averaged into bins of this much operating time for the trend.
    bin_op_s: float = 1800.0
    #: Prognostics refits at most this often (operating time), and only outside the healthy zone.
    fit_interval_op_s: float = 3600.0
    #: The trend fit uses at most this many recent bins (240 × 30 min = 120 operating hours).
    fit_window_bins: int = 240
    min_fit_bins: int = 4
    #: A bin within this many (bin) noise standard deviations of baseline restarts the segment.
    onset_sigma: float = 3.0
    #: RUL from the component's design data where the scenario states it (``pf_mean_h`` and
    #: ``pf_cv``): a gamma-process wear model read through the square law, with a Bayesian update
    #: of the wear rate (engine/wear_model.py). Without design data, or False: the trend models.
    design_wear: bool = True
    #: Coverage of the reported RUL interval.
    interval_coverage: float = 0.8
    #: The interval is never narrower than ±this fraction of the RUL (a floor under the
    #: Wiener-process interval when the history looks deceptively smooth).
    min_relative_half_width: float = 0.1
    #: A crossing further out than this is reported as "no failure predicted".
    max_rul_op_h: float = 5000.0
    #: Nor is one further out than this many times the span of the segment it was fitted to:
    #: a short, shallow start of a trend says little about the far future.
    max_extrapolation: float = 3.0


@dataclass(frozen=True, slots=True)
class PlanningConfig:
    """Advisory, scheduling and work-order settings (plant-wide)."""

    #: Advise work when the scheduling deadline (predicted failure − safety margin) is this close.
    #: 72 h covers the longest gap between downtime windows in the default calendar (Sat 14:00 →
    #: Mon 22:00 = 56 h) with room to spare.
    advisory_lead_h: float = 72.0
    #: Advise at once, whatever the RUL, when a primary signal reaches this severity (3 = zone D).
    advise_severity: int = 3
    #: Plan against the lower end of the RUL interval (conservative) rather than the point value.
    plan_on_lower_bound: bool = True
    #: A predictive work order is cancelled when its component no longer warrants work even with
    #: this many times the advisory lead (hysteresis against flapping).
    cancel_lead_factor: float = 2.0
    #: Re-plan when the predicted failure moves by more than max(hours, fraction × time left).
    replan_threshold_h: float = 12.0
    replan_threshold_fraction: float = 0.25
    #: Work orders starting sooner than this are no longer moved or cancelled by the planner.
    freeze_before_start_s: float = 1800.0
    #: A schedule command expires this long after its start time if the job has not started.
    command_expiry_s: float = 3600.0
    #: How far ahead the scheduler searches for a slot when no failure time bounds it.
    search_horizon_h: float = 14 * 24.0
    #: Earliest start after "now" (time for the command to reach the robot).
    min_lead_s: float = 0.0
    #: After a robot rejects a job, wait this long before proposing another for that component.
    retry_after_reject_s: float = 3600.0
    #: Predictive work waits for a slot outside production when the expected breakdown loss of
    #: waiting is less than the production a slot now would take (scheduler rule 5).
    wait_if_cheaper: bool = True
    #: Preventive policy: book the next job when it falls due within this many calendar hours.
    preventive_lead_h: float = 96.0


@dataclass(frozen=True)
class EngineConfig:
    """Defaults, per-kind overrides (field name → value) and planning settings."""

    defaults: KindConfig = field(default_factory=KindConfig)
    kinds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    planning: PlanningConfig = field(default_factory=PlanningConfig)

    def __post_init__(self) -> None:
        known = {f.name for f in fields(KindConfig)}
        for kind, overrides in self.kinds.items():
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise ValueError(
                    f"engine config for kind {kind!r}: unknown setting(s) {', '.join(unknown)}; "
                    f"use fields of KindConfig ({', '.join(sorted(known))})"
                )

    def for_kind(self, kind: str) -> KindConfig:
        """The settings of one robot kind: the defaults with that kind's overrides applied."""
        overrides = self.kinds.get(kind)
        return replace(self.defaults, **overrides) if overrides else self.defaults
