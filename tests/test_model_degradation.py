"""Component lives: Weibull onset + gamma-process wear, checked against the theory.

The implied mean time to failure is computed here independently of the sampler: the Weibull
mean η·Γ(1 + 1/k) plus the mean first passage of the gamma process, E[T] = ∫ P(X(t) < w) dt =
(1/a)·∫ P(s, w/b) ds, with P the regularized lower incomplete gamma function (coded below from
its series and continued fraction, as in Numerical Recipes §6.2).
"""

import itertools
import math
import random
import statistics

import pytest

from simulator.model import degradation
from simulator.model.degradation import (
    HOUR_S,
    ComponentState,
    GammaWear,
    LifeError,
    draw_life,
    draw_life_at_age,
)
from simulator.model.scenario import ComponentSpec, load_scenario

DRAWS = 2000


def lower_gamma_regularized(s: float, x: float) -> float:
    """P(s, x) = γ(s, x) / Γ(s)."""
    if x <= 0.0:
        return 0.0
    log_prefactor = -x + s * math.log(x) - math.lgamma(s)
    if x < s + 1.0:  # series
        term = total = 1.0 / s
        n = 1
        while abs(term) > 1e-15 * abs(total):
            term *= x / (s + n)
            total += term
            n += 1
        return total * math.exp(log_prefactor)
    # Continued fraction for Q(s, x) (modified Lentz).
    tiny = 1e-300
    b = x + 1.0 - s
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - s)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return 1.0 - math.exp(log_prefactor) * h


def implied_pf_mean_h(spec: ComponentSpec) -> float:
    """Mean first passage (hours) of the gamma process through the threshold."""
    shape_per_h = 1.0 / (spec.pf_cv**2 * spec.pf_mean_h)  # the documented parametrisation
    scale = spec.threshold / (shape_per_h * spec.pf_mean_h)
    x = spec.threshold / scale
    upper = x + 40.0 * math.sqrt(x) + 50.0
    steps = 20_000
    ds = upper / steps
    integral = sum(lower_gamma_regularized((i + 0.5) * ds, x) for i in range(steps)) * ds
    return integral / shape_per_h


def implied_mean_h(spec: ComponentSpec) -> float:
    return spec.onset_scale_h * math.gamma(1.0 + 1.0 / spec.onset_shape) + implied_pf_mean_h(spec)


def specs() -> list[ComponentSpec]:
    kinds = load_scenario().kinds
    return [kinds["welder"].components[0], kinds["handler"].components[1]]  # reducer, gripper


def test_incomplete_gamma_is_right() -> None:
    # Known values: P(1, x) = 1 − e^{−x}; P(s, x) for integer s is a Poisson tail.
    assert lower_gamma_regularized(1.0, 2.0) == pytest.approx(1 - math.exp(-2.0), rel=1e-12)
    poisson = 1 - sum(math.exp(-7.0) * 7.0**k / math.factorial(k) for k in range(5))
    assert lower_gamma_regularized(5.0, 7.0) == pytest.approx(poisson, rel=1e-10)
    assert lower_gamma_regularized(5.0, 2.0) == pytest.approx(
        1 - sum(math.exp(-2.0) * 2.0**k / math.factorial(k) for k in range(5)), rel=1e-10
    )


def test_gamma_parametrisation_gives_the_asked_mean_and_spread() -> None:
    for spec in specs():
        wear = GammaWear.from_spec(spec)
        mean = wear.shape_per_h * wear.scale * spec.pf_mean_h
        sd = math.sqrt(wear.shape_per_h * spec.pf_mean_h) * wear.scale
        assert mean == pytest.approx(spec.threshold)
        assert sd / mean == pytest.approx(spec.pf_cv)


@pytest.mark.parametrize("spec", specs(), ids=lambda s: s.name)
def test_mean_time_to_failure_matches_the_parameters(spec: ComponentSpec) -> None:
    rng = random.Random(11)
    lives = [draw_life(rng, spec) for _ in range(DRAWS)]
    mean_h = statistics.fmean(life.fail_s for life in lives) / HOUR_S
    assert mean_h == pytest.approx(implied_mean_h(spec), rel=0.10)
    # The gamma part alone is much less spread out: hold it to a tighter bound.
    pf_h = statistics.fmean(life.fail_s - life.onset_s for life in lives) / HOUR_S
    assert pf_h == pytest.approx(implied_pf_mean_h(spec), rel=0.03)
    onset_h = statistics.fmean(life.onset_s for life in lives) / HOUR_S
    weibull_mean_h = spec.onset_scale_h * math.gamma(1.0 + 1.0 / spec.onset_shape)
    assert onset_h == pytest.approx(weibull_mean_h, rel=0.06)


def test_wear_path_is_monotone_and_crosses_at_the_failure_time() -> None:
    spec = specs()[0]
    rng = random.Random(5)
    for _ in range(50):
        life = draw_life(rng, spec)
        assert life.wear_at(0.0) == 0.0
        assert life.wear_at(life.onset_s) == 0.0
        grid = [life.onset_s + (life.fail_s - life.onset_s) * i / 500 for i in range(501)]
        wear = [life.wear_at(t) for t in grid]
        assert all(b >= a for a, b in itertools.pairwise(wear))
        assert wear[-1] == life.threshold
        assert life.wear_at(life.fail_s * (1 - 1e-9)) == pytest.approx(life.threshold, rel=1e-6)
        assert life.wear_at(life.fail_s * 0.999) < life.threshold
        assert life.wear_at(life.fail_s * 2) == life.threshold


def test_used_components_are_conditioned_on_having_survived() -> None:
    spec = specs()[0]
    age_s = 600 * HOUR_S
    conditioned = [draw_life_at_age(random.Random(f"c{i}"), spec, age_s) for i in range(1000)]
    assert all(life.fail_s > age_s for life in conditioned)
    # Same law as new lives that happen to survive the age (drawn from other seeds).
    survivors = [
        life
        for i in range(3000)
        if (life := draw_life(random.Random(f"u{i}"), spec)).fail_s > age_s
    ]
    for key in ("fail_s", "onset_s"):
        mean_conditioned = statistics.fmean(getattr(life, key) for life in conditioned)
        mean_survivors = statistics.fmean(getattr(life, key) for life in survivors)
        assert mean_conditioned == pytest.approx(mean_survivors, rel=0.05)


def test_impossible_age_is_refused_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(degradation, "MAX_CONDITIONING_DRAWS", 100)
    spec = specs()[0].model_copy(update={"onset_scale_h": 1.0, "pf_mean_h": 1.0})
    with pytest.raises(LifeError, match="lower the kind's initial_age_h_max"):
        draw_life_at_age(random.Random(1), spec, 1e6 * HOUR_S)


def test_component_state_rates_and_restore() -> None:
    spec = specs()[0]
    component = ComponentState(spec, random.Random(2), 0, age_s=0.0)
    left_s = component.life.fail_s
    assert component.op_to_failure_now() == left_s
    component.rate = 4.0
    assert component.op_to_failure_now() == pytest.approx(left_s / 4)
    # Fast for 10 % of the remaining wear age, then normal.
    fast_s = 0.1 * left_s / 4
    assert component.rul_op_s(fast_s) == pytest.approx(fast_s + 0.9 * left_s)
    assert component.rul_op_s(math.inf) == pytest.approx(left_s / 4)
    component.age_s = left_s / 2
    component.restore()
    assert (component.age_s, component.rate, component.wear) == (0.0, 1.0, 0.0)
    assert component.life.fail_s != left_s  # a fresh life
