"""Sensor physics: wear and product load drive the readings; load is piecewise constant per product.

Pure: formulas, the load schedule and short offline runs, no I/O.
"""

import itertools
import math

import pytest
from simulator_support import one_robot, run, samples

from simulator.model.physics import (
    CURRENT,
    CYCLE_TIME,
    TEMPERATURE,
    VIBRATION,
    LoadSchedule,
    SensorPhysics,
)
from simulator.model.scenario import load_scenario

NAMES = (VIBRATION, TEMPERATURE, CURRENT, CYCLE_TIME)
RATIOS = [0.0, 0.3, 0.75, 1.0]
Z = [(0.0, 0.0, 0.0, 0.0), (1.3, -0.7, 2.1, -1.9)]


def physics(kind: str = "welder") -> SensorPhysics:
    return SensorPhysics.from_kind(load_scenario().kinds[kind])


def wear_only(
    ph: SensorPhysics, red: float, servo: float, grip: float, z: tuple
) -> dict[str, float]:
    """The readings as they were before load existed (copied from the old implementation)."""
    p = ph.exponent
    n_vib, n_temp, n_cur, n_cyc = ph.noise
    cur = ph.cur_base * (1.0 + ph.cur_reducer * red**p + ph.cur_servo * servo**p) + n_cur * z[2]
    return {
        VIBRATION: max(ph.vib_base + ph.vib_span * red**p + n_vib * z[0], 0.0),
        TEMPERATURE: ph.temp_base + ph.temp_rise * servo**p + n_temp * z[1],
        CURRENT: max(cur, 0.0),
        CYCLE_TIME: max(ph.cyc_base * (1.0 + ph.cyc_rise * grip**p) + n_cyc * z[3], 0.0),
    }


@pytest.mark.parametrize("kind", ["welder", "handler", "painter"])
def test_full_load_reads_exactly_the_wear_only_formulas(kind: str) -> None:
    ph = physics(kind)
    for red, servo, grip in itertools.product(RATIOS, repeat=3):
        for z in Z:
            expected = wear_only(ph, red, servo, grip, z)
            assert ph.readings(red, servo, grip, z, 1.0) == expected  # the same floats
            assert ph.readings(red, servo, grip, z) == expected  # full load is the default


def test_a_lighter_product_lowers_current_temperature_and_vibration_by_the_stated_amounts() -> None:
    spec = load_scenario().kinds["welder"]
    p, s = spec.physics, spec.sensors
    ph = SensorPhysics.from_kind(spec)
    for red, servo, grip in itertools.product(RATIOS, repeat=3):
        full = dict(zip(NAMES, ph.clean(red, servo, grip, 1.0), strict=True))
        for load in (0.8, 0.5, 0.1):
            light = dict(zip(NAMES, ph.clean(red, servo, grip, load), strict=True))
            slack = 1.0 - load
            cooler = p.temperature_load_c * slack
            assert light[TEMPERATURE] == pytest.approx(full[TEMPERATURE] - cooler)
            weaker = 1.0 - p.current_load_share * slack
            assert light[CURRENT] == pytest.approx(full[CURRENT] * weaker)
            calmer = s.vibration_rms_mm_s.base * p.vibration_load_share * slack
            assert light[VIBRATION] == pytest.approx(full[VIBRATION] - calmer)
            assert light[CYCLE_TIME] == full[CYCLE_TIME]  # cycle time ignores load
            assert light[TEMPERATURE] < full[TEMPERATURE]
            assert light[CURRENT] < full[CURRENT]


def test_the_load_level_changes_only_at_product_boundaries() -> None:
    start, period_s = 1_000_000.0, 8 * 3600.0
    schedule = LoadSchedule([0.4, 0.7, 1.0], 8.0, start, "7:handle-01:load")
    levels = {}
    for minute in range(0, 40 * 24 * 60, 7):  # 40 days, every 7 minutes
        ts = start + minute * 60.0
        level = schedule.level_at(ts)
        assert level in (0.4, 0.7, 1.0)
        levels.setdefault(int((ts - start) // period_s), set()).add(level)
    assert all(len(seen) == 1 for seen in levels.values())  # one level per product
    per_product = [seen.pop() for _, seen in sorted(levels.items())]
    assert set(per_product) == {0.4, 0.7, 1.0}
    assert any(a != b for a, b in itertools.pairwise(per_product))


def product_levels(seed_text: str, products: range) -> list[float]:
    """The level of each product in ``products``, asked one hour into it."""
    schedule = LoadSchedule([0.4, 0.7, 1.0], 8.0, 0.0, seed_text)
    return [schedule.level_at((k * 8 + 1) * 3600.0) for k in products]


def test_product_levels_are_deterministic_and_do_not_depend_on_when_they_are_asked() -> None:
    every = product_levels("1:r:load", range(100))
    assert product_levels("1:r:load", range(100)) == every  # same seed, same products
    assert product_levels("2:r:load", range(100)) != every  # another seed, other products
    # a robot that sampled only every fifth product (long stops) still makes the same ones
    assert product_levels("1:r:load", range(0, 100, 5)) == every[::5]


def test_time_going_backwards_is_refused() -> None:
    schedule = LoadSchedule([0.5, 1.0], 1.0, 0.0, "x")
    schedule.level_at(7200.0)
    with pytest.raises(ValueError, match="after product 2"):
        schedule.level_at(0.0)


def test_load_moves_readings_without_moving_the_noise_or_the_work() -> None:
    """Same seed, full load against a constant half load: the same samples at the same times,
    cycle time identical, temperature exactly temperature_load_c·0.5 lower (same noise draw)."""
    welder = load_scenario().kinds["welder"]
    physics_fields = welder.physics.model_dump()
    full = one_robot(physics={**physics_fields, "load_levels": [1.0]})
    half = one_robot(physics={**physics_fields, "load_levels": [0.5]})
    full_samples = samples(run(full, seed=5, days=3)[0])
    half_samples = samples(run(half, seed=5, days=3)[0])
    assert [s.ts for s in full_samples] == [s.ts for s in half_samples]
    assert len(full_samples) > 100
    drop = welder.physics.temperature_load_c * 0.5
    for a, b in zip(full_samples, half_samples, strict=True):
        assert a.values[CYCLE_TIME] == b.values[CYCLE_TIME]
        assert math.isclose(a.values[TEMPERATURE] - b.values[TEMPERATURE], drop, abs_tol=1e-9)
        assert b.values[CURRENT] < a.values[CURRENT]


def test_the_default_scenario_gives_each_kind_its_own_loads() -> None:
    kinds = load_scenario().kinds
    assert kinds["handler"].physics.load_levels == [0.4, 0.7, 1.0]
    assert kinds["welder"].physics.load_levels == [0.8, 1.0]
    assert kinds["painter"].physics.load_levels == [0.6, 1.0]
