"""The experiment's readable output: costs in the scenario's currency, and the trajectory
figure's representative life (by a stated rule) with a legend of only what is drawn."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiment.aggregate import MeanCI
from experiment.outputs import results_markdown
from experiment.plots import plot_trajectory
from experiment.trace import Trace, TraceOrder, TracePoint
from plant import PlantError, parse_plant
from plant.loader import plant_part, read_scenario_file

H = 3600.0


def test_the_headline_shows_cost_in_the_scenarios_currency() -> None:
    summary = {"reactive": {"maintenance_cost": MeanCI(12_345.0, 12_000.0, 12_690.0, 2)}}
    table = results_markdown("default", [1, 2], 90.0, summary, currency="JPY")
    assert "| maintenance cost, JPY (planned + unplanned) | 12,345 ± 345 |" in table
    assert "EUR" not in table
    assert "maintenance cost, EUR" in results_markdown("default", [1, 2], 90.0, summary)


def test_the_plant_currency_defaults_to_eur_and_must_be_an_iso_code() -> None:
    data, _ = read_scenario_file()
    assert parse_plant(plant_part(data)).maintenance.currency == "EUR"
    data["maintenance"]["currency"] = "USD"
    assert parse_plant(plant_part(data)).maintenance.currency == "USD"
    data["maintenance"]["currency"] = "euro"
    with pytest.raises(PlantError, match=r"maintenance\.currency"):
        parse_plant(plant_part(data))


def point(ts_h: float, rul: float | None, true: float | None) -> TracePoint:
    return TracePoint(ts_h * H, 0.5, rul, None if rul is None else rul - 5, rul, 0.5, true)


def three_lives() -> Trace:
    """One component, three lives ended by failures at 10 h and 20 h and the run end at 30 h;
    errors of 1, 9 and 4 h: RMSEs 1, 9 and 4 — the median is the third life."""
    trace = Trace("weld-01")
    trace.points["gripper"] = [
        point(2, 9.0, 8.0), point(5, 6.0, 5.0),         # life 1: error +1 h
        point(12, 17.0, 8.0), point(15, 14.0, 5.0),     # life 2: error +9 h
        point(22, 4.0, 8.0), point(25, 1.0, 5.0),       # life 3: error −4 h
        point(29, None, 1.0),
    ]  # fmt: skip
    trace.failures = [("gripper", 10 * H), ("gripper", 20 * H)]
    return trace


def test_the_representative_life_is_the_one_with_the_median_rmse() -> None:
    trace = three_lives()
    assert [round(life.rmse_h, 6) for life in trace.lives("gripper")] == [1.0, 9.0, 4.0]
    life = trace.representative_life()
    assert life is not None
    assert (life.begin, life.end, life.rmse_h, life.predictions) == (20 * H, 29 * H, 4.0, 2)
    assert life.window(4 * H, 1 * H) == (20 * H, 30 * H)
    assert Trace("empty").representative_life() is None


def test_the_trajectory_legend_lists_only_what_is_drawn(tmp_path: Path) -> None:
    trace = three_lives()
    life = trace.representative_life()
    assert life is not None
    # Life 3 holds no failure and no job: neither is in the legend.
    labels = plot_trajectory(trace, "gripper", 0.0, tmp_path / "a.png", "t", life.window(0.0, 0.0))
    assert "failure" not in labels
    assert "planned job done" not in labels
    assert {"engine health index", "engine RUL (point)", "true RUL"} <= set(labels)
    # Over the whole run, with a job done, both appear.
    trace.orders = [TraceOrder("wo-1", "gripper", "predictive", "done", 26 * H, 27 * H)]
    labels = plot_trajectory(trace, "gripper", 0.0, tmp_path / "b.png", "t", (0.0, 30 * H))
    assert {"failure", "planned job done"} <= set(labels)
    assert "job planned, cancelled" not in labels
    assert (tmp_path / "b.png").stat().st_size > 0
