"""Prognostics: RUL from linear and exponential trends, its interval, and resets.

Tolerances (stated in docs/maintenance.md): once past 50 % of the degradation life, a linear
trend's RUL is within ±10 % of the true RUL, an exponential trend's within ±15 % (±10 % past
70 %) — or within ±1.5 h where that is larger (the noise of the smoothed present value).
"""

import math
import random
from collections.abc import Callable

import pytest
from test_engine_factory import CONFIG, HEALTHY, HOUR, START_TS, make_scenario

from engine import MaintenanceEngine
from engine.prognostics import DegradationTrend, TrendFit, z_for

ONSET_H = 30.0
LIFE_H = 160.0  # operating hours from onset to the failure level
BASE = 0.45
FAILURE = 4.5  # ISO 10816-1 class I, C/D


def linear(x_h: float) -> float:
    return BASE + (FAILURE - BASE) * x_h / LIFE_H


def exponential(x_h: float) -> float:
    """Gebraeel-style: baseline + θ·exp(β·t), reaching the failure level at the end of life."""
    theta = 0.05
    return BASE + theta * math.exp(math.log((FAILURE - BASE) / theta) * x_h / LIFE_H)


def run(
    curve: Callable[[float], float], seed: int
) -> list[tuple[float, float, float, float, float, str]]:
    """Run a robot 24/7 through one reducer life: (life fraction, true RUL, RUL, low, high,
    model) every operating hour past half-life."""
    rng = random.Random(seed)
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    out = []
    steps = int((ONSET_H + LIFE_H) * 12)
    for i in range(steps):
        op_h = i / 12
        x_h = op_h - ONSET_H
        vibration = (curve(x_h) if x_h > 0 else BASE) + rng.gauss(0.0, 0.04)
        engine.on_reading(
            "r11",
            START_TS + 300.0 * i,
            {**HEALTHY, "vibration_rms_mm_s": vibration, "temperature_c": 41.0 + rng.gauss(0, 0.3)},
        )
        if i % 12 == 0 and x_h / LIFE_H >= 0.5:
            prognosis = engine.prognosis("r11", "reducer-j2")
            assert prognosis is not None, f"no prognosis at {x_h / LIFE_H:.0%} of life"
            true = ONSET_H + LIFE_H - op_h
            out.append(
                (
                    x_h / LIFE_H,
                    true,
                    prognosis.rul_op_h,
                    prognosis.rul_low_op_h,
                    prognosis.rul_high_op_h,
                    prognosis.model,
                )
            )
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rul_of_a_linear_trend_is_within_10_percent_past_half_life(seed: int) -> None:
    for fraction, true, rul, low, high, model in run(linear, seed):
        if fraction > 0.95:
            break  # the last hours: relative error of a tiny RUL says little
        assert model == "linear"
        tolerance = max(0.10 * true, 1.5)
        assert abs(rul - true) <= tolerance, f"at {fraction:.0%}: RUL {rul:.1f} h, true {true:.1f}"
        assert low <= rul <= high


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rul_of_an_exponential_trend_is_within_tolerance_past_half_life(seed: int) -> None:
    for fraction, true, rul, _, _, model in run(exponential, seed):
        if fraction > 0.95:
            break
        assert model == "exponential"
        tolerance = max((0.15 if fraction < 0.7 else 0.10) * true, 1.5)
        assert abs(rul - true) <= tolerance, f"at {fraction:.0%}: {rul:.1f} vs {true:.1f}"


def test_no_prognosis_while_healthy() -> None:
    rng = random.Random(3)
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    for i in range(12 * 48):
        engine.on_reading(
            "r11", START_TS + 300.0 * i, {"vibration_rms_mm_s": BASE + rng.gauss(0, 0.04)}
        )
    reducer = engine.health("r11").components[0]
    assert reducer.zone == "A"
    assert reducer.rul_op_h is None
    assert reducer.health_index > 0.97


def test_interval_is_at_least_the_documented_floor_and_maps_onto_the_calendar() -> None:
    rng = random.Random(4)
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    calendar = engine.scenario.shift_calendar
    for i in range(12 * 120):
        x_h = i / 12 - ONSET_H
        vibration = linear(max(x_h, 0)) + rng.gauss(0, 0.04)
        engine.on_reading("r11", START_TS + 300.0 * i, {"vibration_rms_mm_s": vibration})
    reducer = engine.health("r11").components[0]
    assert reducer.rul_op_h is not None
    assert reducer.rul_low_op_h is not None
    assert reducer.rul_high_op_h is not None
    assert reducer.interval_coverage == 0.8
    floor = CONFIG.defaults.min_relative_half_width * reducer.rul_op_h
    assert reducer.rul_low_op_h <= reducer.rul_op_h - floor + 1e-9
    assert reducer.rul_high_op_h >= reducer.rul_op_h + floor - 1e-9
    assert reducer.prognosis_ts is not None
    assert reducer.predicted_failure_ts == calendar.advance_production(
        reducer.prognosis_ts, reducer.rul_op_h * HOUR
    )
    low, high = reducer.predicted_failure_low_ts, reducer.predicted_failure_high_ts
    assert low is not None
    assert high is not None
    assert low < reducer.predicted_failure_ts < high


def test_maintenance_resets_tracking_and_clears_alarms() -> None:
    rng = random.Random(5)
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    ts = START_TS
    for i in range(12 * 150):
        ts = START_TS + 300.0 * i
        x_h = i / 12 - ONSET_H
        engine.on_reading(
            "r11", ts, {"vibration_rms_mm_s": linear(max(x_h, 0)) + rng.gauss(0, 0.04)}
        )
    assert engine.health("r11").components[0].zone == "C"
    assert [a.severity for a in engine.alarms()] == ["warning"]
    engine.on_event(
        "r11", ts + 600, "maintenance_finished", component="reducer-j2", command_id="elsewhere-1"
    )
    reducer = engine.health("r11").components[0]
    assert reducer.rul_op_h is None
    assert reducer.health_index == 1.0
    assert engine.alarms() == []
    assert engine.alarms(active_only=False)[0].cleared_reason == "reducer-j2 restored"
    for i in range(30):
        engine.on_reading(
            "r11", ts + 3600 + 300.0 * i, {"vibration_rms_mm_s": 0.30 + 0.01 * (i % 3)}
        )
    signal = next(s for s in engine.health("r11").signals if s.signal == "vibration_rms_mm_s")
    assert signal.baseline_source == "learned"
    assert signal.baseline == pytest.approx(0.31, abs=0.011)
    assert engine.health("r11").components[0].operating_h_since_restore == pytest.approx(
        29 * 300 / HOUR + 600 / HOUR  # the first gap after the restore is capped at 2 samples
    )


def fit(trend: DegradationTrend, now_h: float, level: float, failure: float) -> TrendFit | None:
    return trend.fit(now_h, level, 0.0, failure, z_for(0.8), 4, 0.1, 1000.0)


def test_trend_crossing_of_a_noise_free_line_is_exact() -> None:
    trend = DegradationTrend(window_bins=100)
    trend.rebase(1.0)
    for k in range(10):
        trend.add(10.0 + k, 1.0 + 0.1 * k, onset_level=1.0)
    result = fit(trend, 19.0, 1.9, 3.0)
    assert result is not None
    assert result.model == "linear"
    assert result.rul_op_h == pytest.approx(11.0)  # 1.0 + 0.1·(x − 10) = 3.0 at x = 30
    assert result.low_op_h == pytest.approx(9.9)  # no wander, no noise: the ±10 % floor
    assert result.high_op_h == pytest.approx(12.1)
    assert result.residual_sd == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(
    ("model", "curve"),
    [
        ("quadratic", lambda x: 1.0 + 0.02 * (x - 5.0) ** 2),
        ("exponential", lambda x: 1.0 + 0.1 * math.exp(0.15 * x)),
    ],
)
def test_trend_picks_the_model_that_fits(model: str, curve: Callable[[float], float]) -> None:
    trend = DegradationTrend(window_bins=100)
    trend.rebase(1.0)
    for k in range(6, 30):
        trend.add(float(k), curve(float(k)), onset_level=1.0)
    result = fit(trend, 29.0, curve(29.0), curve(40.0))
    assert result is not None
    assert result.model == model
    assert result.rul_op_h == pytest.approx(11.0, rel=1e-6)


def test_the_interval_widens_with_an_erratic_history() -> None:
    smooth, erratic = DegradationTrend(100), DegradationTrend(100)
    for trend in (smooth, erratic):
        trend.rebase(1.0)
    rng, wander, level = random.Random(1), [], 0.0
    for _ in range(40):  # a random walk around the trend, as a gamma-process path wanders
        level += rng.gauss(0.0, 0.15)
        wander.append(level)
    for k in range(40):
        smooth.add(float(k), 1.0 + 0.1 * k, onset_level=1.0)
        erratic.add(float(k), 1.0 + 0.1 * k + wander[k], onset_level=1.0)
    calm, rough = fit(smooth, 39.0, 4.9, 8.0), fit(erratic, 39.0, 4.9, 8.0)
    assert calm is not None
    assert rough is not None

    def relative_width(f: TrendFit) -> float:
        return (f.high_op_h - f.low_op_h) / f.rul_op_h

    assert relative_width(rough) > 2 * relative_width(calm)
    assert rough.low_op_h < rough.rul_op_h < rough.high_op_h


def test_trend_segment_restarts_at_baseline_and_window_slides() -> None:
    trend = DegradationTrend(window_bins=5)
    trend.rebase(1.0)
    for k in range(4):
        trend.add(float(k), 2.0 + k, onset_level=1.1)
    trend.add(4.0, 1.05, onset_level=1.1)  # back at baseline: a new segment starts here
    assert list(trend.points) == [(4.0, 1.05)]
    for k in range(5, 12):
        trend.add(float(k), 1.0 + 0.5 * (k - 4), onset_level=1.1)
    assert [x for x, _ in trend.points] == [7.0, 8.0, 9.0, 10.0, 11.0]
    linear = trend.sums["linear"]
    assert linear.n == 5
    assert linear.wx == pytest.approx(45.0)
    assert linear.wxz == pytest.approx(sum(x * y for x, y in trend.points))


def test_falling_trend_and_far_extrapolation_predict_nothing() -> None:
    trend = DegradationTrend(window_bins=50)
    trend.rebase(1.0)
    for k in range(10):
        trend.add(float(k), 3.0 - 0.1 * k, onset_level=1.1)
    assert fit(trend, 10.0, 2.0, 4.5) is None
    shallow = DegradationTrend(window_bins=50)
    shallow.rebase(1.0)
    for k in range(10):
        shallow.add(float(k), 1.5 + 0.01 * k, onset_level=1.1)
    # Failure 300 h out after 9 h of history: more than 3 × the segment.
    assert shallow.fit(9.0, 1.59, 0.0, 4.59, 1.28, 4, 0.1, 5000.0, 3.0) is None
    assert shallow.fit(9.0, 1.59, 0.0, 4.59, 1.28, 4, 0.1, 5000.0) is not None


def test_scenario_danger_limits_set_the_failure_levels() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive")  # default config: scenario limits on
    kind = engine.scenario.robots[0].kind
    signals = engine.fleet.robot("r11").signals
    for name, danger in kind.danger_limits.items():
        assert signals[name].limits.failure == pytest.approx(danger)
