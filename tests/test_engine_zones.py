"""State detection: ISO 10816-1 zones exactly at their boundaries, rise limits, baselines."""

import pytest

from engine.config import SignalRule
from engine.zones import (
    ISO_10816_ZONES_MM_S,
    level_of,
    resolve_limits,
    trusted_baseline,
    vibration_zone,
)


@pytest.mark.parametrize(
    ("iso_class", "ab", "bc", "cd"),
    [
        ("I", 0.71, 1.8, 4.5),
        ("II", 1.12, 2.8, 7.1),
        ("III", 1.8, 4.5, 11.2),
        ("IV", 2.8, 7.1, 18.0),
    ],
)
def test_vibration_zone_boundaries_belong_to_the_upper_zone(
    iso_class: str, ab: float, bc: float, cd: float
) -> None:
    assert ISO_10816_ZONES_MM_S[iso_class] == (ab, bc, cd)
    assert vibration_zone(0.0, iso_class) == "A"
    assert vibration_zone(ab - 1e-9, iso_class) == "A"
    assert vibration_zone(ab, iso_class) == "B"
    assert vibration_zone(bc - 1e-9, iso_class) == "B"
    assert vibration_zone(bc, iso_class) == "C"
    assert vibration_zone(cd - 1e-9, iso_class) == "C"
    assert vibration_zone(cd, iso_class) == "D"
    assert vibration_zone(100.0, iso_class) == "D"


def test_unknown_class_says_which_are_known() -> None:
    with pytest.raises(ValueError, match="use I, II, III or IV"):
        vibration_zone(1.0, "V")


def test_level_of_counts_reached_boundaries() -> None:
    assert [level_of(v, (1.0, 2.0, 3.0)) for v in (0.5, 1.0, 2.5, 3.0)] == [0, 1, 2, 3]


def test_iso_limits_are_absolute_and_fail_at_zone_d() -> None:
    limits = resolve_limits(SignalRule("iso10816"), 0.45, "I", "mm/s")
    assert limits.boundaries == (0.71, 1.8, 4.5)
    assert limits.failure == 4.5
    assert [limits.name(i) for i in range(4)] == ["A", "B", "C", "D"]
    # An explicit class in the rule wins over the kind's.
    assert resolve_limits(SignalRule("iso10816", iso_class="II"), 0.45, "I", "mm/s").failure == 7.1


def test_rise_limits_follow_the_baseline() -> None:
    absolute = resolve_limits(SignalRule("rise_abs", 6.0, 15.0, 30.0), 41.0, "I", "°C")
    assert absolute.boundaries == (47.0, 56.0, 71.0)
    assert absolute.name(2) == "alert"
    relative = resolve_limits(SignalRule("rise_rel", 0.05, 0.125, 0.25), 8.0, "I", "A")
    assert relative.boundaries == pytest.approx((8.4, 9.0, 10.0))


def test_a_danger_limit_sets_the_failure_level_and_scales_the_others() -> None:
    rule = SignalRule("rise_rel", 0.06, 0.15, 0.30)
    limits = resolve_limits(rule, 45.0, "I", "s", danger=63.0)  # +40 %
    assert limits.failure == 63.0
    assert limits.boundaries == pytest.approx((45 * 1.08, 45 * 1.2, 63.0))
    iso = resolve_limits(SignalRule("iso10816"), 0.45, "I", "mm/s", danger=6.0)
    assert iso.boundaries == (0.71, 1.8, 4.5)
    assert iso.failure == 6.0


def test_a_learned_baseline_far_from_nominal_is_distrusted() -> None:
    rule = SignalRule("rise_abs", 6.0, 15.0, 30.0, baseline_max_shift=5.0)
    assert trusted_baseline(rule, 43.0, 41.0) == (43.0, "learned")
    assert trusted_baseline(rule, 38.0, 41.0) == (38.0, "learned")
    assert trusted_baseline(rule, 52.0, 41.0) == (41.0, "nominal")  # already worn
    assert trusted_baseline(rule, 35.0, 41.0) == (41.0, "nominal")  # learned on a light product
    relative = SignalRule("rise_rel", 0.05, 0.1, 0.2, baseline_max_shift=0.1)
    assert trusted_baseline(relative, 10.9, 10.0)[1] == "learned"
    assert trusted_baseline(relative, 9.1, 10.0)[1] == "learned"
    assert trusted_baseline(relative, 11.1, 10.0)[1] == "nominal"
    assert trusted_baseline(relative, 8.9, 10.0)[1] == "nominal"
