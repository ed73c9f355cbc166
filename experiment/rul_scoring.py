"""Scoring the engine's RUL predictions against the simulator's ground truth and the oracle.

Every time the engine makes a *new* prediction for a component (a fresh fit, at most once per
operating hour, only once the signal has left its healthy zone), it is paired with the true
remaining operating time of that component at that same moment, taken from the ``truth`` record
the robot emits right after the reading that triggered the fit, and with the oracle's prediction
at that moment (:mod:`experiment.oracle`: the conditional-mean RUL given the true wear, the
best any predictor can do). Every prediction is scored against the truth *at its own time*;
nothing is carried forward. Stale predictions are not scored again, and nothing is scored before
the engine's first prediction in a component life.

A *life* runs from a component's installation (or the start of the run) to its replacement or
repair. Times within a life are on the component's own operating clock, counted back from its
true end of life (t = −true RUL), so predictions made in different shifts line up exactly. The
life is *observed* from its first prediction (t_start) to its last truth sample (t_end): the
failure (t_end ≈ 0), or, for a life **cut short** by planned work or by the end of the run, the
moment the component left service (t_end = −true RUL then). t_λ = t_start + λ·(t_end − t_start)
always lies inside the observed life, and the prediction scored at t_λ is the latest one made at
or before t_λ, against the truth at its own time.

The metrics (:func:`rul_metrics`), for the engine and (``_oracle``) for the oracle on exactly the
same moments:

* ``rul_rmse_h`` — RMSE over all scored predictions (operating hours); ``rul_oracle_rmse_h`` and
  ``rul_rmse_ratio`` = engine / oracle;
* ``rul_median_error_h`` — median of d = predicted − true RUL (signed: > 0 is late), and
  ``rul_median_abs_error_h`` — median of |d|;
* ``rul_phm08_score`` — Saxena's PHM08 score as published: S = Σ over lives of
  exp(−d/13) − 1 (d < 0) or exp(d/10) − 1 (d ≥ 0) for the one prediction per life scored at t_λ
  (the PHM08 challenge scored one prediction per unit and summed); ``rul_phm08_median`` is the
  median of the per-life terms;
* ``rul_alpha_lambda`` — fraction of lives whose prediction at t_λ is within true RUL ± α·true
  RUL (α = 0.2, λ = 0.5); ``rul_alpha_lambda_ratio`` = engine / oracle;
* ``rul_interval_coverage`` — fraction of scored predictions whose interval [low, high] holds
  the true RUL, against ``rul_interval_nominal``, the coverage the engine's intervals claim
  (``interval_coverage`` of the engine's configuration, 0.8 by default);
* ``rul_lives`` — lives behind α-λ and PHM08, ``rul_lives_cut_short`` of them ended by planned
  work or by the run's end rather than by failure; ``rul_predictions`` — predictions scored.

The same, per component kind, under ``<metric>.<kind>`` (e.g. ``rul_rmse_ratio.reducer``).

And, for any policy that plans work, ``life_left_at_planned_h``: the true remaining operating time
of each component when planned work on it started — the useful life a job threw away.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from engine.prognostics import Prognosis
from engine.scoring import phm08_term, rul_rmse
from simulator.model.records import ComponentTruthRecord, TruthRecord

ALPHA = 0.2
LAMBDA = 0.5
HOUR_S = 3600.0
#: Events after which a component is new: its life ends there.
RESTORING_EVENTS = frozenset({"repair_finished", "maintenance_finished"})
#: The kinds of component the scorer reports separately (those of simulator.kinds).
KINDS = ("reducer", "servo", "gripper")

#: The oracle: (robot, true state of a component) → (kind, conditional-mean RUL, hours).
Oracle = Callable[[str, ComponentTruthRecord], tuple[str, float]]


@dataclass(frozen=True, slots=True)
class Scored:
    """One prediction: the true RUL, the engine's and the oracle's, all at the same moment, and
    the engine's interval with its nominal coverage (NaN when not known)."""

    true_h: float
    predicted_h: float
    oracle_h: float
    low_h: float = math.nan
    high_h: float = math.nan
    nominal: float = math.nan

    @property
    def has_interval(self) -> bool:
        return not (math.isnan(self.low_h) or math.isnan(self.high_h) or math.isnan(self.nominal))

    @property
    def covered(self) -> bool:
        """Whether the interval holds the true RUL."""
        return self.low_h <= self.true_h <= self.high_h


@dataclass(slots=True)
class Life:
    """The scored predictions of one component life, in the order they were made.

    ``end_true_h``: the true RUL when the life was last observed (0 if it failed); ``failed``:
    whether it ended in a failure (not cut short by planned work or the run's end).
    """

    robot: str
    component: str
    kind: str
    scored: list[Scored] = field(default_factory=list)
    end_true_h: float = 0.0
    failed: bool = False

    def at_lambda(self) -> Scored:
        """The prediction in force at t_λ = t_start + λ·(t_end − t_start) on the life's clock
        t = −true RUL: the latest made at or before t_λ (the first one is at t_start)."""
        start = -self.scored[0].true_h
        t_lambda = start + LAMBDA * (-self.end_true_h - start)
        chosen = self.scored[0]
        for s in self.scored:
            if -s.true_h <= t_lambda:
                chosen = s
        return chosen


def in_alpha_band(predicted_h: float, true_h: float, alpha: float = ALPHA) -> bool:
    """Whether a prediction lies within true RUL ± α·true RUL."""
    return (1.0 - alpha) * true_h <= predicted_h <= (1.0 + alpha) * true_h


class RulScorer:
    """Collects prediction/truth/oracle triples per component life while a run goes on."""

    def __init__(
        self,
        prognosis: Callable[[str, str], Prognosis | None],
        oracle: Oracle,
        fits: Callable[[str], int] | None = None,
    ) -> None:
        """``prognosis(robot, component)``: the engine's current prediction. ``fits(robot)``
        (optional): a count that changes whenever the engine may have made a new prediction for
        the robot (:meth:`engine.MaintenanceEngine.fits`); with it, the prognoses are only looked
        up at the truth records where a fresh one is possible (one in hundreds)."""
        self._prognosis = prognosis
        self._oracle = oracle
        self._fits = fits
        self._seen: dict[tuple[str, str], Prognosis] = {}
        self._open: dict[tuple[str, str], Life] = {}
        #: How many of each robot's components have an open life (0: no life to extend).
        self._open_of: dict[str, int] = {}
        #: Per robot: ``fits`` and the time at its last truth record whose prognoses were looked at.
        self._checked: dict[str, tuple[int, float]] = {}
        self._last_truth: dict[str, TruthRecord] = {}
        self.lives: list[Life] = []
        #: True remaining operating hours of each component when planned work on it started.
        self.left_at_planned_h: list[float] = []

    def on_truth(self, record: TruthRecord) -> None:
        robot, ts = record.robot, record.ts
        self._last_truth[robot] = record
        if self._open_of.get(robot):
            self._extend_lives(record)
        fits = self._fits
        if fits is not None:
            # A prediction scored here is one made at ``ts``. If no fit ran for the robot since
            # its last truth record, every prediction it has was there already, made at or before
            # that record's time: unless that time is ``ts`` too, none can be made at ``ts``.
            # (The engine makes a new prediction only in a fit, at most once an operating hour.)
            checked = (fits(robot), ts)
            last = self._checked.get(robot)
            if last is not None and last[0] == checked[0] and last[1] != ts:
                return
            self._checked[robot] = checked
        self._score_fresh(record)

    def _extend_lives(self, record: TruthRecord) -> None:
        """The latest observation of each open life of the robot: its true RUL now."""
        opened, robot = self._open, record.robot
        for name, _, _, _, rul_op_s in record.components:
            life = opened.get((robot, name))
            if life is None or life.failed or rul_op_s is None:
                continue
            # A larger RUL is the *new* part's (the robot reports it before the repair or job
            # finishes): not this life's.
            life.end_true_h = min(rul_op_s / HOUR_S, life.end_true_h)

    def _score_fresh(self, record: TruthRecord) -> None:
        """Pair each prediction made at this record's time (and not scored yet) with its truth."""
        robot, ts = record.robot, record.ts
        opened, prognosis_of = self._open, self._prognosis
        for truth in record.components:
            name, _, _, _, rul_op_s = truth
            if rul_op_s is None:
                continue
            prognosis = prognosis_of(robot, name)
            if prognosis is None or prognosis.as_of_ts != ts:
                continue  # no prediction, or not one made at this reading
            key = (robot, name)
            if self._seen.get(key) is prognosis:
                continue
            self._seen[key] = prognosis
            true_h = rul_op_s / HOUR_S
            kind, oracle_h = self._oracle(robot, truth)
            life = opened.get(key)
            if life is None:
                life = opened[key] = Life(robot, name, kind, end_true_h=true_h)
                self._open_of[robot] = self._open_of.get(robot, 0) + 1
            life.scored.append(
                Scored(
                    true_h,
                    prognosis.rul_op_h,
                    oracle_h,
                    prognosis.rul_low_op_h,
                    prognosis.rul_high_op_h,
                    prognosis.coverage,
                )
            )

    def on_event(self, robot: str, body: dict[str, Any]) -> None:
        kind = body["kind"]
        if kind == "maintenance_started":
            # The robot stopped for the job; its last truth record is from its last sample.
            last = self._last_truth.get(robot)
            for truth in last.components if last is not None else ():
                if truth.name == body.get("component") and truth.rul_op_s is not None:
                    self.left_at_planned_h.append(truth.rul_op_s / HOUR_S)
        elif kind == "failure":
            life = self._open.get((robot, str(body.get("component"))))
            if life is not None:
                life.failed = True
                life.end_true_h = 0.0
        elif kind in RESTORING_EVENTS:
            life = self._open.pop((robot, str(body.get("component"))), None)
            if life is not None:
                self._open_of[robot] -= 1
                self.lives.append(life)

    def finish(self) -> list[Life]:
        """All lives with at least one scored prediction (open ones closed at the run's end)."""
        self.lives.extend(self._open.values())
        self._open.clear()
        self._open_of.clear()
        return self.lives


def life_left_metrics(left_at_planned_h: list[float]) -> dict[str, float | None]:
    """How much life planned work threw away: the mean true remaining operating hours of the
    components it replaced (None without planned work)."""
    mean = statistics.fmean(left_at_planned_h) if left_at_planned_h else None
    return {"life_left_at_planned_h": mean}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0.0:
        return None
    return numerator / denominator


def _rmse(pairs: Iterable[tuple[float, float]]) -> float:
    listed = list(pairs)
    return rul_rmse([p for p, _ in listed], [t for _, t in listed])


def score_lives(lives: Sequence[Life]) -> dict[str, float | None]:
    """The RUL metrics of a set of lives (None where there is nothing to score)."""
    scored = [s for life in lives for s in life.scored]
    if not scored:
        return {name: (0.0 if name in COUNT_KEYS else None) for name in METRIC_KEYS}
    at_lambda = [life.at_lambda() for life in lives]
    terms = [phm08_term(s.predicted_h - s.true_h) for s in at_lambda]
    rmse = _rmse((s.predicted_h, s.true_h) for s in scored)
    oracle_rmse = _rmse((s.oracle_h, s.true_h) for s in scored)
    hits = sum(in_alpha_band(s.predicted_h, s.true_h) for s in at_lambda) / len(lives)
    with_interval = [s for s in scored if s.has_interval]
    oracle_hits = sum(in_alpha_band(s.oracle_h, s.true_h) for s in at_lambda) / len(lives)
    return {
        "rul_rmse_h": rmse,
        "rul_oracle_rmse_h": oracle_rmse,
        "rul_rmse_ratio": _ratio(rmse, oracle_rmse),
        "rul_median_error_h": statistics.median(s.predicted_h - s.true_h for s in scored),
        "rul_median_abs_error_h": statistics.median(abs(s.predicted_h - s.true_h) for s in scored),
        "rul_phm08_score": math.fsum(terms),
        "rul_phm08_median": statistics.median(terms),
        "rul_oracle_phm08_score": math.fsum(phm08_term(s.oracle_h - s.true_h) for s in at_lambda),
        "rul_alpha_lambda": hits,
        "rul_alpha_lambda_oracle": oracle_hits,
        "rul_alpha_lambda_ratio": _ratio(hits, oracle_hits),
        "rul_interval_coverage": (
            sum(s.covered for s in with_interval) / len(with_interval) if with_interval else None
        ),
        "rul_interval_nominal": (
            statistics.fmean(s.nominal for s in with_interval) if with_interval else None
        ),
        "rul_lives": float(len(lives)),
        "rul_lives_cut_short": float(sum(not life.failed for life in lives)),
        "rul_predictions": float(len(scored)),
    }


METRIC_KEYS = (
    "rul_rmse_h",
    "rul_oracle_rmse_h",
    "rul_rmse_ratio",
    "rul_median_error_h",
    "rul_median_abs_error_h",
    "rul_phm08_score",
    "rul_phm08_median",
    "rul_oracle_phm08_score",
    "rul_alpha_lambda",
    "rul_alpha_lambda_oracle",
    "rul_alpha_lambda_ratio",
    "rul_interval_coverage",
    "rul_interval_nominal",
    "rul_lives",
    "rul_lives_cut_short",
    "rul_predictions",
)
COUNT_KEYS = frozenset({"rul_lives", "rul_lives_cut_short", "rul_predictions"})
#: The metrics also reported per component kind, as ``<metric>.<kind>``.
PER_KIND_KEYS = (
    "rul_rmse_h",
    "rul_oracle_rmse_h",
    "rul_rmse_ratio",
    "rul_alpha_lambda",
    "rul_alpha_lambda_oracle",
    "rul_alpha_lambda_ratio",
    "rul_interval_coverage",
    "rul_interval_nominal",
    "rul_lives",
)


def rul_metrics(lives: Sequence[Life], kinds: Sequence[str] = KINDS) -> dict[str, float | None]:
    """The RUL metrics of one run, overall and per component kind."""
    metrics = score_lives(lives)
    for kind in kinds:
        of_kind = score_lives([life for life in lives if life.kind == kind])
        for key in PER_KIND_KEYS:
            metrics[f"{key}.{kind}"] = of_kind[key]
    return metrics
