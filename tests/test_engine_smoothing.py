"""Data manipulation: despiking, smoothing, stuck sensors and dropouts."""

import pytest
from test_engine_factory import CONFIG, HEALTHY, START_TS, make_scenario

from engine import MaintenanceEngine
from engine.smoothing import Smoother, median3


@pytest.mark.parametrize(
    ("values", "middle"),
    [
        ((1, 2, 3), 2),
        ((3, 2, 1), 2),
        ((2, 3, 1), 2),
        ((1, 3, 2), 2),
        ((5, 5, 1), 5),
        ((0, 9, 9), 9),
    ],
)
def test_median3(values: tuple[float, float, float], middle: float) -> None:
    assert median3(*values) == middle


def steady(n: int, base: float = 1.0, step: float = 0.01) -> list[float]:
    """A noisy-looking but deterministic series around ``base`` (never repeating exactly)."""
    return [base + step * ((i * 7) % 5 - 2) for i in range(n)]


def test_a_single_spike_does_not_move_the_level() -> None:
    smoother = Smoother(alpha=0.15, stuck_after=6)
    series = steady(40)
    for x in series:
        smoother.push(x)
    before = smoother.level
    series_with_spike = [50.0, *steady(3)]
    outputs = [smoother.push(x) for x in series_with_spike]
    assert 50.0 not in outputs
    assert smoother.level == pytest.approx(before, abs=0.02)


def test_a_spike_among_the_first_values_never_enters_the_average() -> None:
    smoother = Smoother(alpha=0.15, stuck_after=6)
    for x in [1.0, 80.0, 1.02, 0.99, 1.01]:
        smoother.push(x)
    assert smoother.level == pytest.approx(1.0, abs=0.03)


def test_the_average_follows_a_real_step() -> None:
    smoother = Smoother(alpha=0.15, stuck_after=6)
    for x in steady(30, base=1.0):
        smoother.push(x)
    for x in steady(40, base=2.0):
        smoother.push(x)
    assert smoother.level == pytest.approx(2.0, abs=0.02)


def test_a_stuck_value_is_detected_and_ignored() -> None:
    smoother = Smoother(alpha=0.15, stuck_after=4)
    for x in steady(20):
        smoother.push(x)
    level = smoother.level
    outputs = [smoother.push(3.0) for _ in range(6)]
    assert outputs[:3] == [pytest.approx(1.0, abs=0.03), 3.0, 3.0]  # median, then ≤ 3 repeats
    assert outputs[3:] == [None, None, None]
    assert smoother.stuck
    assert smoother.level > level  # the repeats before detection did count…
    stuck_level = smoother.level
    smoother.push(3.0)
    assert smoother.level == stuck_level  # …but nothing after it
    assert smoother.push(1.01) is not None
    assert not smoother.stuck


def test_alpha_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="alpha"):
        Smoother(alpha=0.0, stuck_after=6)


def test_engine_ignores_a_single_vibration_spike() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    values = [{**HEALTHY, "vibration_rms_mm_s": v} for v in steady(60, 0.45, 0.01)]
    values[40]["vibration_rms_mm_s"] = 50.0  # zone D for one reading
    for i, reading in enumerate(values):
        reading["temperature_c"] += 0.01 * (i % 3)
        reading["motor_current_a"] += 0.01 * (i % 4)
        reading["cycle_time_s"] += 0.01 * (i % 5)
        engine.on_reading("r11", START_TS + 300.0 * i, reading)
    reducer = engine.health("r11").components[0]
    assert reducer.zone == "A"
    assert reducer.indicator == pytest.approx(0.45, abs=0.02)
    assert engine.alarms(active_only=False) == []


def test_engine_raises_and_clears_a_stuck_sensor_alarm() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    temperatures = [*steady(30, 41.0, 0.1), *[47.5] * 10, *steady(10, 41.0, 0.1)]
    for i, temperature in enumerate(temperatures):
        engine.on_reading("r11", START_TS + 300.0 * i, {"temperature_c": temperature})
    alarms = engine.alarms(active_only=False)
    assert [(a.signal, a.limit, a.component) for a in alarms] == [
        ("temperature_c", "stuck", "servo-j1")
    ]
    stuck = alarms[0]
    assert stuck.raised_ts == START_TS + 300.0 * (30 + 5)  # the 6th identical value
    assert stuck.cleared_ts == START_TS + 300.0 * 40
    assert "stuck at 47.5" in stuck.message
    # The stuck readings never reached the servo's alert level.
    assert engine.health("r11").components[1].zone in ("normal", "watch")


def test_engine_takes_readings_with_missing_sensors() -> None:
    engine = MaintenanceEngine(make_scenario(), "predictive", CONFIG)
    for i, v in enumerate(steady(30, 0.45, 0.01)):
        values = {"vibration_rms_mm_s": v}
        if i % 2:
            values["cycle_time_s"] = 45.0 + 0.01 * (i % 7)
        engine.on_reading("r11", START_TS + 300.0 * i, values)
    health = engine.health("r11")
    by_signal = {s.signal: s for s in health.signals}
    assert by_signal["temperature_c"].value is None
    assert by_signal["cycle_time_s"].value == pytest.approx(45.03, abs=0.03)
    assert health.operating_h == pytest.approx(29 * 300 / 3600)
