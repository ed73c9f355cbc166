"""Prometheus series of the maintenance loop, read from the engine at scrape time.

Label sets are bounded by the scenario: ``robot``/``component`` pairs are the scenario's (a few
dozen), ``status`` and ``source`` are the lifecycle's fixed values, ``severity`` is warning or
critical. A component appears in the health series once its indicator has a reading, and in the
RUL series while the engine has an estimate (no series is better than a made-up number).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from api.maintenance.loop import MaintenanceLoop
from api.records.maintenance import Severity, WorkOrderSource, WorkOrderStatus


class MaintenanceCollector:
    def __init__(self, loop: MaintenanceLoop) -> None:
        self._loop = loop

    def collect(self) -> Iterator[Metric]:
        loop = self._loop
        engine = loop.engine
        health = GaugeMetricFamily(
            "factory_component_health_index",
            "Health index of a component: 1 as new, 0 at the failure level (the engine's view).",
            labels=["robot", "line", "component"],
        )
        rul = GaugeMetricFamily(
            "factory_component_rul_hours",
            "Remaining useful life of a component in operating hours (point estimate).",
            labels=["robot", "line", "component"],
        )
        rul_low = GaugeMetricFamily(
            "factory_component_rul_low_hours",
            "Low end of the RUL interval, operating hours (what predictive planning uses).",
            labels=["robot", "line", "component"],
        )
        for robot_id in sorted(engine.fleet.robots):
            report = engine.health(robot_id)
            for part in report.components:
                labels = [robot_id, report.line, part.component]
                if part.indicator is not None or part.failed:
                    health.add_metric(labels, part.health_index)
                if part.rul_op_h is not None:
                    rul.add_metric(labels, part.rul_op_h)
                if part.rul_low_op_h is not None:
                    rul_low.add_metric(labels, part.rul_low_op_h)
        yield from (health, rul, rul_low)

        orders = GaugeMetricFamily(
            "factory_work_orders",
            "Work orders per lifecycle status and source (every order the engine holds).",
            labels=["status", "source"],
        )
        counts = Counter((wo.state.value, wo.origin) for wo in engine.book.orders.values())
        for status in get_args(WorkOrderStatus):
            for source in get_args(WorkOrderSource):
                orders.add_metric([status, source], counts[(status, source)])
        yield orders

        alarms = GaugeMetricFamily(
            "factory_alarms_active", "Active alarms per severity.", labels=["severity"]
        )
        by_severity = Counter(a.severity for a in engine.alarms(active_only=True))
        for severity in get_args(Severity):
            alarms.add_metric([severity], by_severity[severity])
        yield alarms

        policy = GaugeMetricFamily(
            "factory_maintenance_policy",
            "1 for the maintenance policy the service runs.",
            labels=["policy"],
        )
        policy.add_metric([loop.policy], 1.0)
        yield policy
        yield CounterMetricFamily(
            "factory_maintenance_plans", "Planning runs of the engine.", value=loop.plans
        )
        yield CounterMetricFamily(
            "factory_maintenance_skipped_messages",
            "Messages from robots the scenario does not have (the engine cannot follow them).",
            value=loop.skipped,
        )
        if loop.last_plan_ts is not None:
            yield GaugeMetricFamily(
                "factory_maintenance_last_plan_sim_seconds",
                "Simulated time of the last planning run, Unix seconds.",
                value=loop.last_plan_ts,
            )
        if loop.stepped_ts is not None:
            yield GaugeMetricFamily(
                "factory_maintenance_stepped_sim_seconds",
                "Service clock (simulated, Unix seconds) of the newest maintenance step carried "
                "out in full: its commands are sent and its changes stored.",
                value=loop.stepped_ts,
            )
