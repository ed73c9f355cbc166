"""Live plant KPIs: availability, performance, quality, OEE, MTBF and MTTR per robot, per line
and for the plant, over a window of simulated time, for ``GET /api/kpis`` and ``/metrics``.

The numbers come from :mod:`engine.kpis`, the code the offline experiment uses; this module only
reads the stored events (:meth:`api.store.Store.kpi_events`) and shapes the answer. A robot of
the plant that sent nothing in the window still gets a row (all its planned time counts as run
time: nothing says it stopped).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from pydantic import BaseModel, Field

from api.store import Store
from engine.kpis import Activity, Kpis, activity_from_events, pooled_kpis, robot_kpis
from plant import Plant


class KpiValues(BaseModel):
    availability: float = Field(description="Run time / planned production time.")
    performance: float = Field(description="Ideal cycle time × parts / run time.")
    quality: float = Field(description="Good parts / all parts.")
    oee: float = Field(description="Availability × performance × quality.")
    mtbf_h: float | None = Field(description="Run hours / failures; null with no failure.")
    mttr_h: float | None = Field(
        description="Mean hours from a failure to the robot back in service; null with no "
        "completed repair."
    )
    failures: int
    planned_h: float = Field(description="Planned production hours in the window.")
    run_h: float
    good: int
    scrap: int

    @classmethod
    def of(cls, kpis: Kpis) -> KpiValues:
        return cls.model_validate({name: getattr(kpis, name) for name in KpiValues.model_fields})


class RobotKpis(KpiValues):
    robot: str
    line: str


class LineKpis(KpiValues):
    line: str
    robots: int


class KpiReport(BaseModel):
    """KPIs over ``[since, until)``, simulated Unix seconds."""

    since: float
    until: float
    plant: KpiValues
    lines: list[LineKpis]
    robots: list[RobotKpis]


def kpi_report(store: Store, plant: Plant, since: float, until: float) -> KpiReport:
    """Measure every robot of ``plant`` from ``store`` over ``[since, until)``."""
    events = store.kpi_events(since, until)
    calendar = plant.shift_calendar
    activities: dict[str, tuple[str, Activity]] = {}
    for robot in plant.robots:
        activity = activity_from_events(
            events.get(robot.id, ()), calendar, since, until, robot.kind.cycle_time_s
        )
        activities[robot.id] = (robot.line, activity)
    robots = [
        RobotKpis(robot=rid, line=line, **KpiValues.of(robot_kpis(a)).model_dump())
        for rid, (line, a) in activities.items()
    ]
    lines = []
    for line in plant.lines:
        members = [a for line_id, a in activities.values() if line_id == line.id]
        lines.append(
            LineKpis(
                line=line.id, robots=len(members), **KpiValues.of(pooled_kpis(members)).model_dump()
            )
        )
    everything = [a for _, a in activities.values()]
    return KpiReport(
        since=since,
        until=until,
        plant=KpiValues.of(pooled_kpis(everything)),
        lines=lines,
        robots=robots,
    )


#: (series suffix, field, help) of the gauges exported per robot and per line.
_GAUGES = (
    ("availability", "availability", "Run time / planned production time"),
    ("oee", "oee", "Overall equipment effectiveness"),
    ("mtbf_hours", "mtbf_h", "Mean time between failures, run hours"),
    ("mttr_hours", "mttr_h", "Mean time to repair, hours"),
)


class KpiGauges:
    """The last computed :class:`KpiReport` as Prometheus gauges (set by the ``/metrics``
    route before each scrape renders); ``factory_robot_*`` and ``factory_line_*``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._lock = threading.Lock()
        self._report: KpiReport | None = None
        registry.register(self)

    def set(self, report: KpiReport | None) -> None:
        with self._lock:
            self._report = report

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            report = self._report
        if report is None:
            return
        for suffix, name, text in _GAUGES:
            robot = GaugeMetricFamily(
                f"factory_robot_{suffix}",
                f"{text}, since the service's first message.",
                labels=["robot", "line"],
            )
            for r in report.robots:
                value = getattr(r, name)
                if value is not None:
                    robot.add_metric([r.robot, r.line], value)
            line = GaugeMetricFamily(
                f"factory_line_{suffix}", f"{text}, robots pooled per line.", labels=["line"]
            )
            for ln in report.lines:
                value = getattr(ln, name)
                if value is not None:
                    line.add_metric([ln.line], value)
            yield robot
            yield line
