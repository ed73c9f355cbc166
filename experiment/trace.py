"""A trajectory of one robot during one run, for the health-index figure.

At every planning tick the trace notes, per component, what the engine said (health index, RUL
with its interval, in operating hours) next to what was true (the latest truth record: wear as a
fraction of the failure threshold, true remaining operating time). Work orders and failures are
added at the end of the run. Plain dataclasses, so a worker process can send a trace back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from engine import MaintenanceEngine
from simulator.model.records import TruthRecord

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class TracePoint:
    ts: float
    health_index: float
    rul_op_h: float | None
    rul_low_op_h: float | None
    rul_high_op_h: float | None
    true_wear_fraction: float | None
    true_rul_op_h: float | None


@dataclass(frozen=True, slots=True)
class TraceOrder:
    """A work order of the traced robot: ``state`` is its final state."""

    id: str
    component: str
    origin: str
    state: str
    start_ts: float
    end_ts: float


@dataclass(frozen=True, slots=True)
class TracedLife:
    """One life of a traced component: ``[begin, end]`` and the engine's RUL RMSE over the
    predictions made in it that have a true RUL (operating hours)."""

    component: str
    begin: float
    end: float
    first_prediction_ts: float
    rmse_h: float
    predictions: int

    def window(self, before_s: float, after_s: float) -> tuple[float, float]:
        """From ``before_s`` before its first scored prediction to ``after_s`` after its end."""
        return max(self.begin, self.first_prediction_ts - before_s), self.end + after_s


#: The rule :meth:`Trace.representative_life` follows, as the figure states it.
REPRESENTATIVE_RULE = "the life with the median engine RUL RMSE of this robot's lives"


@dataclass(slots=True)
class Trace:
    robot: str
    points: dict[str, list[TracePoint]] = field(default_factory=dict)
    orders: list[TraceOrder] = field(default_factory=list)
    failures: list[tuple[str, float]] = field(default_factory=list)
    _truth: dict[str, tuple[float, float | None]] = field(default_factory=dict)

    def on_truth(self, record: TruthRecord) -> None:
        for c in record.components:
            rul_h = None if c.rul_op_s is None else c.rul_op_s / HOUR_S
            self._truth[c.name] = (c.wear / c.threshold, rul_h)

    def on_tick(self, ts: float, engine: MaintenanceEngine) -> None:
        for c in engine.health(self.robot).components:
            wear, true_rul = self._truth.get(c.component, (None, None))
            self.points.setdefault(c.component, []).append(
                TracePoint(
                    ts,
                    c.health_index,
                    c.rul_op_h,
                    c.rul_low_op_h,
                    c.rul_high_op_h,
                    wear,
                    true_rul,
                )
            )

    def finish(self, engine: MaintenanceEngine, failures: list[tuple[str, float]]) -> None:
        self.orders = [
            TraceOrder(wo.id, wo.component, wo.origin, wo.state.value, wo.start_ts, wo.end_ts)
            for wo in engine.work_orders(robot=self.robot)
        ]
        self.failures = list(failures)
        self._truth.clear()

    def ends_of_life(self, component: str) -> list[float]:
        """When each life of ``component`` ended: planned jobs done (their end) and failures."""
        ends = [o.end_ts for o in self.orders if o.component == component and o.state == "done"]
        ends += [ts for name, ts in self.failures if name == component]
        return sorted(ends)

    def focus(self, component: str, before_s: float, after_s: float) -> tuple[float, float]:
        """A time window on the life of ``component`` with the most RUL predictions: from
        ``before_s`` before its first prediction to ``after_s`` after its end (whole run if the
        engine never predicted anything)."""
        points = self.points[component]
        first_ts, last_ts = points[0].ts, points[-1].ts
        best: tuple[int, float, float] | None = None
        begin = first_ts
        for end in [*self.ends_of_life(component), last_ts]:
            predicted = [p.ts for p in points if begin <= p.ts <= end and p.rul_op_h is not None]
            if predicted and (best is None or len(predicted) > best[0]):
                best = (len(predicted), predicted[0], end)
            begin = end
        if best is None:
            return first_ts, last_ts
        return max(first_ts, best[1] - before_s), min(last_ts, best[2] + after_s)

    def lives(self, component: str) -> list[TracedLife]:
        """Each life of ``component`` in which the engine made scored predictions."""
        points = self.points.get(component, [])
        if not points:
            return []
        found = []
        begin = points[0].ts
        for end in [*self.ends_of_life(component), points[-1].ts]:
            scored = [
                (p.ts, p.rul_op_h - p.true_rul_op_h)
                for p in points
                if begin <= p.ts <= end and p.rul_op_h is not None and p.true_rul_op_h is not None
            ]
            if scored:
                rmse = math.sqrt(sum(e * e for _, e in scored) / len(scored))
                found.append(TracedLife(component, begin, end, scored[0][0], rmse, len(scored)))
            begin = end
        return found

    def representative_life(self) -> TracedLife | None:
        """:data:`REPRESENTATIVE_RULE`: over every component's lives with scored predictions, the
        one whose RMSE is the median (the lower middle one for an even count; ties by time)."""
        lives = [life for name in sorted(self.points) for life in self.lives(name)]
        if not lives:
            return None
        ranked = sorted(lives, key=lambda life: (life.rmse_h, life.begin, life.component))
        return ranked[(len(ranked) - 1) // 2]
