"""The experiment's figures (matplotlib, Agg: files only, no display, no pyplot global state).

* ``availability_downtime.png`` — availability, downtime split into unplanned and planned,
  breakdowns and maintenance cost, per policy, with the 95 % intervals over seeds as error bars;
* ``trajectory.png`` — one component of one robot in one run: the engine's health index with the
  truth beside it, and the engine's RUL predictions (point and interval) against the true RUL,
  with planned jobs and failures marked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from experiment.aggregate import MeanCI
from experiment.trace import Trace

DAY_S = 86400.0
DPI = 120
#: PNG metadata without the matplotlib version, so a figure does not change with an upgrade.
PNG_METADATA: dict[str, str | None] = {"Software": None}
#: The trajectory figure shows this much before the first prediction and after the life's end.
FOCUS_BEFORE_S = 4 * DAY_S
FOCUS_AFTER_S = 2 * DAY_S
RUL_AXIS_MAX_H = 400.0
POLICY_COLOURS = {"reactive": "#c0392b", "preventive": "#d68910", "predictive": "#1e8449"}


def _bar(ci: MeanCI | None) -> tuple[float, float]:
    """Height and error of one bar (0 for an undefined metric)."""
    if ci is None or ci.mean is None:
        return 0.0, 0.0
    return ci.mean, ci.half_width or 0.0


def _save(figure: Figure, path: Path) -> None:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI, metadata=PNG_METADATA)


def plot_availability_downtime(
    summary: Mapping[str, Mapping[str, MeanCI]], path: Path, title: str, currency: str = "EUR"
) -> None:
    policies = list(summary)
    colours = [POLICY_COLOURS.get(p, "#566573") for p in policies]
    figure = Figure(figsize=(10, 8), layout="constrained")
    (left, right), (lower_left, lower_right) = figure.subplots(2, 2)
    # Points with whiskers, not bars: the axis cannot start at 0 and still show the differences.
    for i, (policy, colour) in enumerate(zip(policies, colours, strict=True)):
        height, error = _bar(summary[policy].get("availability"))
        left.errorbar([i], [height], yerr=[error], fmt="o", color=colour, capsize=8, ms=9)
    left.set_xticks(range(len(policies)), policies)
    left.set_xlim(-0.5, len(policies) - 0.5)
    left.set_ylabel("run time / planned production time")
    left.set_title("Availability (the axis does not start at 0)")
    width = 0.38
    x = range(len(policies))
    for offset, metric, hatch in (
        (-width / 2, "unplanned_downtime_h", ""),
        (width / 2, "planned_downtime_h", "//"),
    ):
        bars = [_bar(summary[p].get(metric)) for p in policies]
        right.bar(
            [i + offset for i in x],
            [b[0] for b in bars],
            width,
            yerr=[b[1] for b in bars],
            color=colours,
            hatch=hatch,
            edgecolor="black",
            capsize=5,
        )
    right.set_xticks(list(x), policies)
    right.set_ylabel("hours, all robots")
    right.set_title("Downtime")
    right.legend(
        handles=[
            Patch(facecolor="#d5d8dc", edgecolor="black", label="unplanned (BROKEN)"),
            Patch(
                facecolor="#d5d8dc", edgecolor="black", hatch="//", label="planned (MAINTENANCE)"
            ),
        ]
    )
    for axes, metric, label, heading in (
        (lower_left, "breakdowns", "failures, all robots", "Breakdowns"),
        (
            lower_right,
            "maintenance_cost",
            f"planned + unplanned job costs, {currency}",
            "Maintenance cost",
        ),
    ):
        bars = [_bar(summary[p].get(metric)) for p in policies]
        axes.bar(
            list(x),
            [b[0] for b in bars],
            0.6,
            yerr=[b[1] for b in bars],
            color=colours,
            edgecolor="black",
            capsize=5,
        )
        axes.set_xticks(list(x), policies)
        axes.set_ylabel(label)
        axes.set_title(heading)
    figure.suptitle(title + "  (error bars: 95 % interval over seeds)")
    _save(figure, path)


def plot_trajectory(
    trace: Trace,
    component: str,
    start_ts: float,
    path: Path,
    title: str,
    window: tuple[float, float] | None = None,
) -> list[str]:
    """One component's health and RUL over ``window`` (default: its life with the most
    predictions, :meth:`Trace.focus`); the legends list only what is drawn, and are returned."""
    t0, t1 = window or trace.focus(component, FOCUS_BEFORE_S, FOCUS_AFTER_S)
    points = [p for p in trace.points[component] if t0 <= p.ts <= t1]
    days = [(p.ts - start_ts) / DAY_S for p in points]
    nan = math.nan
    figure = Figure(figsize=(11, 6.5), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True)
    top.plot(days, [p.health_index for p in points], color="#1f618d", label="engine health index")
    wear = [nan if p.true_wear_fraction is None else 1.0 - p.true_wear_fraction for p in points]
    if _any(wear):
        top.plot(days, wear, color="#7f8c8d", linestyle="--", label="truth: 1 − wear / threshold")
    top.set_ylim(-0.05, 1.05)
    top.set_ylabel("health")
    point = [nan if p.rul_op_h is None else p.rul_op_h for p in points]
    low = [nan if p.rul_low_op_h is None else p.rul_low_op_h for p in points]
    high = [nan if p.rul_high_op_h is None else p.rul_high_op_h for p in points]
    true = [nan if p.true_rul_op_h is None else p.true_rul_op_h for p in points]
    if _any(low) and _any(high):
        bottom.fill_between(days, low, high, color="#aed6f1", label="engine RUL, 80 % interval")
    if _any(point):
        bottom.plot(days, point, color="#1f618d", label="engine RUL (point)")
    if _any(true):
        bottom.plot(days, true, color="#7f8c8d", linestyle="--", label="true RUL")
    shown = [h for h, p in zip(high, point, strict=True) if not math.isnan(p)]
    shown += [t for t, p in zip(true, point, strict=True) if not math.isnan(p)]
    bottom.set_ylim(0.0, min(max([50.0, *shown]), RUL_AXIS_MAX_H) * 1.05)
    bottom.set_ylabel("RUL, operating hours")
    bottom.set_xlabel("days since the start of the run")
    drawn: set[str] = set()
    for axes in (top, bottom):
        drawn |= _mark_events(axes, trace, component, start_ts, t0, t1)
    if "done" in drawn:
        top.plot([], [], color="#27ae60", lw=4, alpha=0.5, label="planned job done")
    if "cancelled" in drawn:
        top.plot([], [], color="#27ae60", lw=0.8, linestyle=":", label="job planned, cancelled")
    if "failure" in drawn:
        top.plot([], [], color="#c0392b", lw=1.6, label="failure")
    top.legend(loc="lower left", fontsize="small", ncols=3)
    if bottom.get_legend_handles_labels()[1]:
        bottom.legend(loc="upper right", fontsize="small")
    figure.suptitle(title)
    _save(figure, path)
    return [*top.get_legend_handles_labels()[1], *bottom.get_legend_handles_labels()[1]]


def _any(values: list[float]) -> bool:
    return any(not math.isnan(v) for v in values)


def _mark_events(
    axes: Axes, trace: Trace, component: str, start_ts: float, t0: float, t1: float
) -> set[str]:
    """Planned jobs (done: shaded; cancelled: dotted) and failures (red) inside [t0, t1]; returns
    which of ``done``, ``cancelled``, ``failure`` it drew."""
    drawn: set[str] = set()
    for order in trace.orders:
        if order.component != component or not t0 <= order.start_ts <= t1:
            continue
        a, b = (order.start_ts - start_ts) / DAY_S, (order.end_ts - start_ts) / DAY_S
        if order.state == "done":
            axes.axvspan(a, b, color="#27ae60", alpha=0.35, lw=0)
            axes.axvline(a, color="#27ae60", lw=1.2)
            drawn.add("done")
        elif order.state == "cancelled":
            axes.axvline(a, color="#27ae60", lw=0.8, linestyle=":")
            drawn.add("cancelled")
    for name, ts in trace.failures:
        if name == component and t0 <= ts <= t1:
            axes.axvline((ts - start_ts) / DAY_S, color="#c0392b", lw=1.6)
            drawn.add("failure")
    return drawn
