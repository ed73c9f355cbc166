"""The design-data wear model: first-passage mean and quantiles of a gamma process, the Bayesian
update of the wear rate, and the engine's RUL on a life drawn by the simulator's own process.

Tolerances: the mean within 2·10⁻³ scale units of the exact integral, quantiles within 0.02
(0.04 below x = 0.5; Wilson–Hilferty), and on 4000 drawn lives the 80 % interval at the true
wear holds the true RUL 80 ± 3 % of the time (3 standard errors of a proportion over 4000
draws: ±1.9 %; the rest is the approximation).
"""

from __future__ import annotations

import math
import random
import re

import numpy as np
import pytest
from test_engine_factory import HEALTHY, START_TS, make_scenario

from engine import EngineConfig, KindConfig, MaintenanceEngine
from engine.prognostics import z_for
from engine.wear_model import (
    ANOMALY_PRIOR,
    PRIOR_SD,
    DesignWear,
    design_rul,
    mean_passage,
    passage_quantile,
    rate_posterior,
)
from experiment.oracle import mean_passage_direct, oracle_rul_h, regularized_lower_gamma
from plant import ComponentSpec as PlantComponentSpec
from plant import load_plant
from simulator.model.degradation import draw_life
from simulator.model.kinds import ComponentSpec

Z80 = z_for(0.8)
#: The default welder's reducer: T = 200 operating hours, c = 0.3.
REDUCER = ComponentSpec(
    name="reducer-j2",
    kind="reducer",
    onset_shape=1.5,
    onset_scale_h=600.0,
    pf_mean_h=200.0,
    pf_cv=0.3,
    planned_repair_h=2.0,
    unplanned_repair_h=8.0,
    planned_cost=900.0,
    unplanned_cost=2600.0,
)
DESIGN = DesignWear(200.0, 0.3)


@pytest.mark.parametrize("x", [0.01, 0.03, 0.07, 0.12, 0.25, 0.6, 1.1, 1.8, 2.7, 4.5, 6.0, 12.0])
def test_mean_passage_matches_the_exact_integral(x: float) -> None:
    assert mean_passage(x) == pytest.approx(mean_passage_direct(x), abs=2e-3)


def test_mean_passage_is_zero_at_the_failure_level() -> None:
    assert mean_passage(0.0) == 0.0


@pytest.mark.parametrize("x", [0.05, 0.2, 0.5, 1.0, 3.0, 8.0, 11.0])
def test_passage_quantiles_match_the_exact_distribution(x: float) -> None:
    s = np.arange(0.0005, x + 12.0 * math.sqrt(x) + 12.0, 0.0005)
    cdf = 1.0 - regularized_lower_gamma(s, x)  # P(S ≤ s) = P(Gamma(s) ≥ x)
    for p, z in ((0.1, -Z80), (0.5, 0.0), (0.9, Z80)):
        exact = float(s[np.searchsorted(cdf, p)])
        tolerance = 0.02 if x >= 0.5 else 0.04
        assert passage_quantile(x, z) == pytest.approx(exact, abs=tolerance), (x, p)


def test_the_interval_at_the_true_wear_covers_drawn_lives_at_its_nominal_rate() -> None:
    rng = random.Random(16)
    covered = below = 0
    n = 4000
    scored = 0
    while scored < n:
        life = draw_life(rng, REDUCER)
        # A moment after the onset chosen without looking ahead (a fraction of the life would
        # choose by the future), scored if the part is still alive then.
        age_s = life.onset_s + rng.uniform(0.0, 1.5) * REDUCER.pf_mean_h * 3600.0
        if age_s >= life.fail_s:
            continue
        scored += 1
        wear = life.wear_at(age_s)
        true_h = (life.fail_s - age_s) / 3600.0
        _, low, high = DESIGN.rul(wear, 0.0, 1.0, 0.0, Z80)
        covered += low <= true_h <= high
        below += true_h < low
    assert covered / n == pytest.approx(0.8, abs=0.03)
    assert below / n == pytest.approx(0.1, abs=0.025)


def test_the_mean_at_the_true_wear_is_the_oracles_conditional_mean() -> None:
    for wear in (0.0, 0.2, 0.5, 0.8, 0.95, 0.99):
        mean, low, high = DESIGN.rul(wear, 0.0, 1.0, 0.0, Z80)
        assert mean == pytest.approx(oracle_rul_h(REDUCER, wear), rel=2e-3, abs=0.05)
        assert 0.0 <= low < mean < high


def test_uncertain_wear_and_rate_widen_the_interval_on_both_sides() -> None:
    mean, low, high = DESIGN.rul(0.5, 0.0, 1.0, 0.0, Z80)
    wide_mean, wide_low, wide_high = DESIGN.rul(0.5, 0.03**2, 1.0, 0.2**2, Z80)
    assert wide_mean == mean
    assert wide_low < low
    assert wide_high > high
    # Twice the rate: half the time.
    fast, _, _ = DESIGN.rul(0.5, 0.0, 2.0, 0.0, Z80)
    assert fast == pytest.approx(mean / 2.0)


def test_the_rate_prior_is_the_design_until_data_say_otherwise() -> None:
    assert rate_posterior(None, math.inf) == (1.0, PRIOR_SD**2)
    # A rate as designed, observed over a long segment: the design stands, a little firmer.
    mean, var = rate_posterior(1.05, 0.05)
    assert mean == pytest.approx(1.0, abs=0.02)
    assert var < PRIOR_SD**2
    # Eight times the design rate, clearly observed: the broad part of the prior takes over.
    mean, var = rate_posterior(8.0, 0.1)
    assert 7.0 < mean < 8.0
    # Sixteen times the design rate over three hours of a reducer's segment: already many of the
    # design's standard deviations out, so the broad part carries the posterior, and its spread.
    mean, var = rate_posterior(*DESIGN.observed_rate(16.0 / 200.0, 3.0))
    assert mean > 1.8
    assert var > 4.0
    # Observed too briefly to tell: the design still dominates, with a wider spread.
    mean, var = rate_posterior(3.0, 4.0)
    assert 1.0 < mean < 1.2
    assert var > PRIOR_SD**2
    assert 0.0 < ANOMALY_PRIOR < 0.1


def test_design_rul_reads_the_wear_through_the_square_law() -> None:
    # Excess 1 of a span 4: wear √¼ = ½.
    at_half = design_rul(
        DESIGN, excess=1.0, span=4.0, excess_var=1e-6, slope=None, lag_h=0.0, z=Z80
    )
    assert at_half is not None
    assert at_half[0] == pytest.approx(oracle_rul_h(REDUCER, 0.5), rel=2e-3)
    no_span = design_rul(
        DESIGN, excess=1.0, span=0.0, excess_var=1e-6, slope=None, lag_h=0.0, z=1.0
    )
    assert no_span is None
    failed = design_rul(DESIGN, excess=5.0, span=4.0, excess_var=1e-6, slope=None, lag_h=0.0, z=1.0)
    assert failed is not None
    assert failed[0] == 0.0


def test_the_engine_predicts_from_design_data_on_a_drawn_life() -> None:
    """A welder's reducer wears along a life the simulator draws; the vibration reads the wear
    through the square law with the sensor's noise. Past the watch level the engine's RUL is the
    design model's, close to the oracle's conditional mean at the true wear."""
    scenario = make_scenario(robots=1)
    config = EngineConfig(defaults=KindConfig(scenario_limits=False))
    engine = MaintenanceEngine(scenario, "predictive", config)
    rng = random.Random(7)
    life = draw_life(rng, REDUCER)
    base, span = 0.45, 4.5 - 0.45
    errors = []
    reasons = []
    for i in range(int(life.fail_s / 300.0)):
        age_s = 300.0 * i
        r = life.wear_at(age_s)
        vibration = base + span * r * r + rng.gauss(0.0, 0.04)
        engine.on_reading("r11", START_TS + age_s, {**HEALTHY, "vibration_rms_mm_s": vibration})
        if i % 12 == 0 and not reasons:
            reasons += [d.reason for d in engine.plan(START_TS + age_s) if d.kind == "new"]
        prognosis = engine.prognosis("r11", "reducer-j2")
        if prognosis is not None and prognosis.as_of_ts == START_TS + age_s:
            assert prognosis.model == "gamma"
            errors.append(prognosis.rul_op_h - oracle_rul_h(REDUCER, r))
    assert len(errors) > 50
    rms = math.sqrt(sum(e * e for e in errors) / len(errors))
    assert rms < 5.0, f"RMS difference from the oracle {rms:.1f} h"
    # The advisory says what the prediction stands on.
    assert reasons
    assert re.search(
        r"\(RUL \d+ operating h, 80 % interval \d+–\d+ h, gamma wear model of "
        r"vibration_rms_mm_s\)",
        reasons[0],
    ), reasons[0]


def test_the_plant_carries_design_data_in_pairs() -> None:
    """The plant reader (the service's) keeps the design data the engine reads."""
    reducer = load_plant().robots[0].kind.components[0]
    assert (reducer.pf_mean_h, reducer.pf_cv) == (200.0, 0.3)
    base = {k: getattr(REDUCER, k) for k in PlantComponentSpec.model_fields}
    assert PlantComponentSpec(**{**base, "pf_mean_h": None, "pf_cv": None}).pf_cv is None
    with pytest.raises(ValueError, match="give pf_mean_h and pf_cv together"):
        PlantComponentSpec(**{**base, "pf_cv": None})
