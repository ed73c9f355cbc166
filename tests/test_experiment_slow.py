"""The acceptance check on the default factory, shortened: 3 seeds × 30 days (≈ 10 CPU-seconds).

The full 10-seed × 90-day experiment is the bench (bench/bench_experiment.py) and the table in
docs/maintenance.md, not a test.
"""

from __future__ import annotations

import pytest

from experiment import Experiment, run_experiment

SEEDS = [1, 2, 3]


@pytest.mark.slow
def test_predictive_has_fewer_breakdowns_than_reactive_on_the_default_factory() -> None:
    experiment = run_experiment(Experiment(None, ["reactive", "predictive"], SEEDS, 30.0), jobs=2)
    for seed in SEEDS:
        reactive = experiment.results[("reactive", seed)].metrics
        predictive = experiment.results[("predictive", seed)].metrics
        assert reactive["breakdowns"] is not None
        assert predictive["breakdowns"] is not None
        assert reactive["breakdowns"] >= 5, "too few failures for the comparison to mean much"
        assert predictive["breakdowns"] < reactive["breakdowns"], seed
        assert predictive["maintenance_jobs"], "predictive planned no work at all"
    # The bar: at least 60 % fewer breakdowns, over the seeds together.
    total = {
        policy: sum(experiment.results[(policy, seed)].metrics["breakdowns"] for seed in SEEDS)  # type: ignore[misc]
        for policy in ("reactive", "predictive")
    }
    assert total["predictive"] <= 0.4 * total["reactive"], total
    summary = experiment.summary()
    assert summary["predictive"]["availability"].mean > summary["reactive"]["availability"].mean  # type: ignore[operator]
    assert summary["predictive"]["rul_rmse_h"].n == len(SEEDS)
