"""The experiment's files: ``results.json``, ``results.csv`` and ``results.md``.

All three are deterministic: the same runs give the same bytes (keys sorted, numbers rounded to
``DECIMALS`` places, no timestamps or wall times — those go to ``run-info.json``). JSON never holds
NaN or infinity: a metric with no value is ``null``.

* ``results.json`` — ``{"scenario", "seeds", "days", "policies": {policy: {metric: {"mean": x,
  "ci95": [lo, hi]}}}}``;
* ``results.csv`` — one row per run (policy, seed), one column per metric: the raw numbers
  behind the means, for anyone who wants another statistic;
* ``results.md`` — a Markdown table, policies as columns, metrics as rows, mean ± half-width of
  the 95 % interval.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from experiment.aggregate import MeanCI

DECIMALS = 4
#: Placeholder for the scenario's currency in a metric's label.
COST_UNIT = "{currency}"


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    label: str
    fmt: str


#: Every metric, in the order of the tables (definitions: docs/maintenance.md "Experiment").
METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("breakdowns", "breakdowns (failures)", "{:.1f}"),
    MetricInfo("unplanned_downtime_h", "unplanned downtime, h (BROKEN)", "{:.1f}"),
    MetricInfo("planned_downtime_h", "planned downtime, h (MAINTENANCE)", "{:.1f}"),
    MetricInfo("production_lost_to_failures_h", "production time lost to failures, h", "{:.1f}"),
    MetricInfo("production_lost_to_planned_h", "production time lost to planned work, h", "{:.1f}"),
    MetricInfo(
        "planned_in_window_share", "planned stops outside production (in windows)", "{:.3f}"
    ),
    MetricInfo("availability", "availability", "{:.4f}"),
    MetricInfo("performance", "performance", "{:.4f}"),
    MetricInfo("quality", "quality", "{:.4f}"),
    MetricInfo("oee", "OEE", "{:.4f}"),
    MetricInfo("parts", "good parts", "{:,.0f}"),
    MetricInfo("maintenance_jobs", "planned jobs done", "{:.1f}"),
    MetricInfo("maintenance_cost", "maintenance cost, {currency} (planned + unplanned)", "{:,.0f}"),
    MetricInfo("life_left_at_planned_h", "true life left at planned jobs, operating h", "{:.0f}"),
    MetricInfo("mtbf_h", "MTBF, operating h", "{:,.0f}"),
    MetricInfo("mttr_h", "MTTR, h (failure → back in service)", "{:.2f}"),
    MetricInfo("rul_rmse_h", "RUL RMSE, operating h", "{:.1f}"),
    MetricInfo("rul_oracle_rmse_h", "RUL RMSE of the oracle (the bound), operating h", "{:.1f}"),
    MetricInfo("rul_rmse_ratio", "RUL RMSE ÷ oracle's (1 = as good as possible)", "{:.2f}"),
    MetricInfo("rul_median_error_h", "RUL median error, h (+ = late)", "{:.1f}"),
    MetricInfo("rul_median_abs_error_h", "RUL median absolute error, h", "{:.1f}"),
    MetricInfo("rul_phm08_score", "PHM08 score, summed over lives (at t_λ)", "{:.3g}"),
    MetricInfo("rul_phm08_median", "PHM08 score per life, median", "{:.3g}"),
    MetricInfo("rul_oracle_phm08_score", "PHM08 score of the oracle, summed", "{:.3g}"),
    MetricInfo("rul_alpha_lambda", "α-λ accuracy (α = 0.2, λ = 0.5)", "{:.3f}"),
    MetricInfo("rul_alpha_lambda_oracle", "α-λ accuracy of the oracle", "{:.3f}"),
    MetricInfo("rul_alpha_lambda_ratio", "α-λ accuracy ÷ oracle's", "{:.2f}"),
    MetricInfo("rul_interval_coverage", "RUL interval coverage (true RUL inside)", "{:.3f}"),
    MetricInfo("rul_interval_nominal", "… nominal coverage the intervals claim", "{:.2f}"),
    MetricInfo("rul_lives", "component lives scored (α-λ, PHM08)", "{:.1f}"),
    MetricInfo("rul_lives_cut_short", "… of them cut short (planned work, run end)", "{:.1f}"),
    MetricInfo("rul_predictions", "RUL predictions scored", "{:,.0f}"),
)
METRIC_NAMES = tuple(m.name for m in METRICS)
#: The headline table: what a plant manager asks first.
HEADLINE = (
    "breakdowns",
    "unplanned_downtime_h",
    "production_lost_to_failures_h",
    "production_lost_to_planned_h",
    "planned_in_window_share",
    "oee",
    "maintenance_cost",
)
#: One plain line on how to read each prognostics score.
HOW_TO_READ = {
    "rul_rmse_h": "typical size of a RUL error, big errors weigh more; lower is better",
    "rul_oracle_rmse_h": "the same for a predictor that knows the true wear: the floor",
    "rul_rmse_ratio": "how far above the floor the engine is; 1 is the best possible",
    "rul_median_error_h": "below 0: the engine calls failures early (safe, wastes life)",
    "rul_median_abs_error_h": "the typical error, untouched by the worst predictions",
    "rul_phm08_score": "Saxena's sum over lives; late costs more than early; one bad life rules it",
    "rul_phm08_median": "the typical life's PHM08 penalty; 0 is perfect",
    "rul_oracle_phm08_score": "the oracle's PHM08 sum on the same lives",
    "rul_alpha_lambda": "share of lives predicted within ±20 % half-way through what was seen",
    "rul_alpha_lambda_oracle": "the same for the oracle: how often ±20 % is possible at all",
    "rul_alpha_lambda_ratio": "engine ÷ oracle; 1 is the best possible",
    "rul_interval_coverage": "share of predictions whose interval holds the truth; near nominal",
    "rul_interval_nominal": "what the intervals claim; coverage below it: overconfident",
    "rul_lives": "lives behind α-λ and PHM08",
    "rul_lives_cut_short": "lives ended by planned work or the run's end, not by failure",
    "rul_predictions": "predictions behind RMSE and the medians",
}


def rounded(x: float | None) -> float | None:
    """``x`` to ``DECIMALS`` places (never -0.0); ``None`` for no value, NaN or infinity."""
    if x is None or not math.isfinite(x):
        return None
    return round(x, DECIMALS) + 0.0


def results_document(
    scenario: str, seeds: Sequence[int], days: float, summary: Mapping[str, Mapping[str, MeanCI]]
) -> dict[str, Any]:
    return {
        "scenario": scenario,
        "seeds": list(seeds),
        "days": days,
        "policies": {
            policy: {
                metric: {"mean": rounded(ci.mean), "ci95": [rounded(ci.low), rounded(ci.high)]}
                for metric, ci in metrics.items()
            }
            for policy, metrics in summary.items()
        },
    }


def results_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, indent=2, allow_nan=False) + "\n"


def results_csv(
    per_run: Mapping[tuple[str, int], Mapping[str, float | None]],
    policies: Sequence[str],
    seeds: Sequence[int],
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["policy", "seed", *METRIC_NAMES])
    for policy in policies:
        for seed in seeds:
            values = per_run[(policy, seed)]
            cells = [rounded(values.get(name)) for name in METRIC_NAMES]
            writer.writerow([policy, seed, *("" if c is None else repr(c) for c in cells)])
    return buffer.getvalue()


def _cell(info: MetricInfo, ci: MeanCI | None, seeds: int) -> str:
    if ci is None or ci.mean is None:
        return "—"
    text = info.fmt.format(ci.mean)
    half = ci.half_width
    if ci.n > 1 and half is not None:
        text += " ± " + info.fmt.format(half)
    if ci.n < seeds:
        text += f" (n = {ci.n})"  # defined in only some seeds (e.g. MTTR needs a repair)
    return text


def _prognostic(info: MetricInfo) -> bool:
    return info.name.startswith("rul_")


def results_markdown(
    scenario: str,
    seeds: Sequence[int],
    days: float,
    summary: Mapping[str, Mapping[str, MeanCI]],
    command: str | None = None,
    currency: str = "EUR",
) -> str:
    """The tables; costs are labelled with the scenario's ``currency``."""
    policies = list(summary)
    lines = [
        f"# Maintenance policies — scenario `{scenario}`",
        "",
        f"{len(seeds)} seed(s) ({seeds[0]}–{seeds[-1]}), {days:g} simulated days per run. "
        "Mean over seeds ± half-width of the 95 % Student-t interval on the mean "
        "(one seed: the value alone); (n = k): defined in only k of the seeds. "
        "Totals are over all robots of the factory; — : no value.",
        "",
    ]
    if command:
        lines += [f"Command: `{command}`", ""]
    by_name = {info.name: info for info in METRICS}
    groups = (
        ("Headline", [by_name[name] for name in HEADLINE], False),
        (
            "More plant metrics",
            [i for i in METRICS if not _prognostic(i) and i.name not in HEADLINE],
            False,
        ),
        (
            "Prognostics (RUL predictions against the truth)",
            [i for i in METRICS if _prognostic(i)],
            True,
        ),
    )
    for title, infos, how in groups:
        lines += [f"## {title}", ""]
        lines.append("| metric | " + " | ".join(policies) + (" | how to read |" if how else " |"))
        lines.append("|---|" + "---:|" * len(policies) + ("---|" if how else ""))
        for info in infos:
            if not any(info.name in summary[p] for p in policies):
                continue
            cells = [_cell(info, summary[p].get(info.name), len(seeds)) for p in policies]
            if how:
                cells.append(HOW_TO_READ.get(info.name, ""))
            label = info.label.replace(COST_UNIT, currency)
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += per_kind_markdown(summary, len(seeds))
    return "\n".join(lines) + "\n"


#: The per-kind RUL metrics (``<metric>.<kind>``) in the second table.
PER_KIND: tuple[MetricInfo, ...] = (
    MetricInfo("rul_rmse_h", "RMSE, h", "{:.1f}"),
    MetricInfo("rul_oracle_rmse_h", "oracle RMSE, h", "{:.1f}"),
    MetricInfo("rul_rmse_ratio", "RMSE ÷ oracle", "{:.2f}"),
    MetricInfo("rul_alpha_lambda", "α-λ", "{:.3f}"),
    MetricInfo("rul_alpha_lambda_oracle", "oracle α-λ", "{:.3f}"),
    MetricInfo("rul_interval_coverage", "interval coverage", "{:.3f}"),
    MetricInfo("rul_interval_nominal", "nominal", "{:.2f}"),
    MetricInfo("rul_lives", "lives", "{:.1f}"),
)


def per_kind_markdown(summary: Mapping[str, Mapping[str, MeanCI]], seeds: int) -> list[str]:
    """The RUL metrics per component kind: one row per (kind, policy)."""
    kinds = sorted(
        {name.split(".", 1)[1] for metrics in summary.values() for name in metrics if "." in name}
    )
    if not kinds:
        return []
    lines = [
        "## Prognostics per component kind",
        "",
        "The oracle knows the true wear: its error is the irreducible part.",
        "",
        "| kind | policy | " + " | ".join(info.label for info in PER_KIND) + " |",
        "|---|---|" + "---:|" * len(PER_KIND),
    ]
    for kind in kinds:
        for policy, metrics in summary.items():
            cells = [_cell(info, metrics.get(f"{info.name}.{kind}"), seeds) for info in PER_KIND]
            lines.append(f"| {kind} | {policy} | " + " | ".join(cells) + " |")
    return lines


def write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8", newline="\n")
