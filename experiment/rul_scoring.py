"""Scoring the engine's RUL predictions against the simulator's ground truth.

Every time the engine makes a *new* prediction for a component (a fresh fit, at most once per
operating hour, only once the signal has left its healthy zone), it is paired with the true
remaining operating time of that component at that same moment, taken from the ``truth`` record
the robot emits right after the reading that triggered the fit. Stale predictions are not scored
again, and nothing is scored before the engine's first prediction in a component life: the
engine does not claim anything then, and scoring silence as an error would measure the detector's
onset rule, not its prognosis.

A *life* runs from a component's installation (or the start of the run) to its replacement or
repair. The true end of life is known even for lives that maintenance cut short, because the
simulator draws the whole wear path at installation: ``rul_op_s`` in the truth record is the
operating time the component *would* have lasted. So every life with predictions is scored,
whatever the policy did to it. Times within a life are on the component's own operating clock,
counted back from its end of life (t = −true RUL), so predictions made in different shifts line
up exactly.

The metrics (:func:`rul_metrics`, from :mod:`engine.scoring`):

* ``rul_rmse_h`` — RMSE over all scored predictions (operating hours);
* ``rul_median_error_h`` — median of d = predicted − true RUL (signed: > 0 is late), and
  ``rul_median_abs_error_h`` — median of |d|: robust companions of the RMSE;
* ``rul_phm08_score`` — Saxena's asymmetric PHM08 score of *one prediction per life*, the one in
  force at t_λ (λ = 0.5 between the first prediction and the end of life), averaged over lives —
  see docs/maintenance.md "Experiment" for why not the sum over every prediction; and
  ``rul_phm08_median``, the median of those per-life terms (the mean is ruled by the worst life);
* ``rul_alpha_lambda`` — fraction of lives whose prediction at t_λ is within ±α (α = 0.2).

And, for any policy that plans work, ``life_left_at_planned_h``: the true remaining operating time
of each component when planned work on it started — the useful life a job threw away.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.prognostics import Prognosis
from engine.scoring import (
    RulTrajectory,
    alpha_lambda_accuracy,
    phm08_term,
    rul_rmse,
)
from simulator.model.records import TruthRecord

ALPHA = 0.2
LAMBDA = 0.5
HOUR_S = 3600.0
#: Events after which a component is new: its life ends there.
RESTORING_EVENTS = frozenset({"repair_finished", "maintenance_finished"})


@dataclass(slots=True)
class Life:
    """The scored predictions of one component life: ``(true RUL, predicted RUL)``, hours."""

    robot: str
    component: str
    pairs: list[tuple[float, float]] = field(default_factory=list)

    def trajectory(self) -> RulTrajectory:
        """On the life's own clock t = −true RUL: end of life at 0, first prediction at start."""
        predictions = [(-true_h, pred_h) for true_h, pred_h in self.pairs]
        return RulTrajectory(predictions[0][0], 0.0, predictions)

    def at_lambda(self) -> tuple[float, float]:
        """(true, predicted) RUL at t_λ, the prediction in force then carried forward."""
        trajectory = self.trajectory()
        t_lambda = trajectory.start + LAMBDA * (trajectory.end_of_life - trajectory.start)
        predicted = trajectory.prediction_at(t_lambda)
        assert predicted is not None  # the first prediction is at start ≤ t_λ
        return -t_lambda, predicted


class RulScorer:
    """Collects prediction/truth pairs per component life while a run goes on."""

    def __init__(self, prognosis: Callable[[str, str], Prognosis | None]) -> None:
        self._prognosis = prognosis
        self._seen: dict[tuple[str, str], Prognosis] = {}
        self._open: dict[tuple[str, str], Life] = {}
        self._last_truth: dict[str, TruthRecord] = {}
        self.lives: list[Life] = []
        #: True remaining operating hours of each component when planned work on it started.
        self.left_at_planned_h: list[float] = []

    def on_truth(self, record: TruthRecord) -> None:
        robot, ts = record.robot, record.ts
        self._last_truth[robot] = record
        for truth in record.components:
            prognosis = self._prognosis(robot, truth.name)
            if prognosis is None or prognosis.as_of_ts != ts or truth.rul_op_s is None:
                continue  # no prediction, or not one made at this reading
            key = (robot, truth.name)
            if self._seen.get(key) is prognosis:
                continue
            self._seen[key] = prognosis
            life = self._open.get(key)
            if life is None:
                life = self._open[key] = Life(robot, truth.name)
            life.pairs.append((truth.rul_op_s / HOUR_S, prognosis.rul_op_h))

    def on_event(self, robot: str, body: dict[str, Any]) -> None:
        kind = body["kind"]
        if kind == "maintenance_started":
            # The robot stopped for the job; its last truth record is from its last sample.
            last = self._last_truth.get(robot)
            for truth in last.components if last is not None else ():
                if truth.name == body.get("component") and truth.rul_op_s is not None:
                    self.left_at_planned_h.append(truth.rul_op_s / HOUR_S)
        elif kind in RESTORING_EVENTS:
            life = self._open.pop((robot, str(body.get("component"))), None)
            if life is not None:
                self.lives.append(life)

    def finish(self) -> list[Life]:
        """All lives with at least one scored prediction (open ones closed at the run's end)."""
        self.lives.extend(self._open.values())
        self._open.clear()
        return self.lives


def life_left_metrics(left_at_planned_h: list[float]) -> dict[str, float | None]:
    """How much life planned work threw away: the mean true remaining operating hours of the
    components it replaced (None without planned work)."""
    mean = statistics.fmean(left_at_planned_h) if left_at_planned_h else None
    return {"life_left_at_planned_h": mean}


def rul_metrics(lives: list[Life]) -> dict[str, float | None]:
    """The RUL metrics of one run (None where there is nothing to score)."""
    pairs = [pair for life in lives for pair in life.pairs]
    if not pairs:
        return {
            "rul_rmse_h": None,
            "rul_median_error_h": None,
            "rul_median_abs_error_h": None,
            "rul_phm08_score": None,
            "rul_phm08_median": None,
            "rul_alpha_lambda": None,
            "rul_predictions": 0.0,
            "rul_lives": 0.0,
        }
    true_h = [t for t, _ in pairs]
    predicted_h = [p for _, p in pairs]
    at_lambda = [life.at_lambda() for life in lives]
    terms = [phm08_term(p - t) for t, p in at_lambda]
    return {
        "rul_rmse_h": rul_rmse(predicted_h, true_h),
        "rul_median_error_h": statistics.median(p - t for t, p in pairs),
        "rul_median_abs_error_h": statistics.median(abs(p - t) for t, p in pairs),
        "rul_phm08_score": statistics.fmean(terms),
        "rul_phm08_median": statistics.median(terms),
        "rul_alpha_lambda": alpha_lambda_accuracy(
            [life.trajectory() for life in lives], ALPHA, LAMBDA
        ),
        "rul_predictions": float(len(pairs)),
        "rul_lives": float(len(lives)),
    }
