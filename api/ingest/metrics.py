"""Prometheus metrics of one app, in the app's own registry (never the global one).

Counters and histograms are updated by the ingest path; per-robot values, robot state and the
simulated clock are read from live state at scrape time, so a robot's series always show its
current value and nothing has to be kept in step.

Robot state is exported the usual Prometheus way for an enum: ``factory_robot_state`` has one
series per robot and possible state, labelled ``state``, valued 1 for the current state and 0
for the others (``factory_robot_state{state="BROKEN"} == 1`` finds broken robots).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from api.ingest.clock_guard import CLOCK
from api.ingest.inbox import Inbox
from api.kpis import KpiGauges
from api.live import LiveState
from contract.codec import RejectReason
from contract.payloads import RobotStateName
from contract.topics import Channel

ROBOT_STATES: tuple[str, ...] = get_args(RobotStateName)
COMMAND_TYPES = ("schedule_maintenance", "cancel_maintenance", "inject_fault")
_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class _LiveCollector:
    """Series read from live state at scrape time."""

    def __init__(self, live: LiveState, inbox: Inbox) -> None:
        self._live = live
        self._inbox = inbox

    def collect(self) -> Iterator[Metric]:
        live = self._live
        reading = GaugeMetricFamily(
            "factory_robot_reading",
            "A robot's newest reading per metric (units in the metric name).",
            labels=["robot", "line", "metric"],
        )
        state = GaugeMetricFamily(
            "factory_robot_state",
            "1 for a robot's current state, 0 for the other states.",
            labels=["robot", "line", "state"],
        )
        seen = GaugeMetricFamily(
            "factory_robot_last_seen_sim_seconds",
            "Simulated time of a robot's newest message, Unix seconds.",
            labels=["robot", "line"],
        )
        for robot_id, robot in sorted(live.robots.items()):
            for metric, value in sorted(robot.values.items()):
                reading.add_metric([robot_id, robot.line, metric], value)
            if robot.state is not None:
                for name in ROBOT_STATES:
                    state.add_metric([robot_id, robot.line, name], float(name == robot.state))
            if robot.last_seen is not None:
                seen.add_metric([robot_id, robot.line], robot.last_seen)
        yield from (reading, state, seen)
        yield GaugeMetricFamily(
            "factory_ingest_queue_depth",
            "Messages received and waiting to be committed.",
            value=self._inbox.depth,
        )
        yield CounterMetricFamily(
            "factory_ingest_queue_overflow",
            "Messages that found the ingest queue full: left unacknowledged, redelivered by the "
            "broker after the service reconnects (Mosquitto; amqtt 0.12 drops them).",
            value=self._inbox.overflow_total,
        )
        yield GaugeMetricFamily(
            "factory_ingest_lag_seconds",
            "Wall seconds the oldest message received and not yet committed has waited (0 when "
            "caught up); past FACTORY_INGEST_LAG_MAX_S it is a /readyz problem.",
            value=live.lag.seconds(),
        )
        if live.lag.max_s is not None:
            yield GaugeMetricFamily(
                "factory_ingest_lag_max_seconds",
                "The configured bound on factory_ingest_lag_seconds (FACTORY_INGEST_LAG_MAX_S).",
                value=live.lag.max_s,
            )
        if live.clock is not None:
            yield GaugeMetricFamily(
                "factory_sim_clock_seconds",
                "Newest simulated time in any ingested message, Unix seconds.",
                value=live.clock,
            )
            yield GaugeMetricFamily(
                "factory_sim_clock_behind_wall_seconds",
                "Wall-clock now minus the simulated clock; a lag only when the factory runs at "
                "real-time factor 1, meaningless otherwise.",
                value=time.time() - live.clock,
            )
        yield GaugeMetricFamily(
            "factory_broker_connected",
            "1 when subscribed to the broker.",
            value=float(live.broker_problem is None),
        )


class Metrics:
    """The app's metrics; ``registry`` is what ``/metrics`` renders."""

    def __init__(self, live: LiveState, inbox: Inbox) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        #: Plant KPIs, set by the ``/metrics`` route before it renders.
        self.kpis = KpiGauges(r)
        self.messages = Counter(
            "factory_ingest_messages", "New messages stored, per channel.", ["channel"], registry=r
        )
        self.rejected = Counter(
            "factory_ingest_rejected",
            "Messages refused by the contract, per reason.",
            ["reason"],
            registry=r,
        )
        self.duplicates = Counter(
            "factory_ingest_duplicates",
            "Messages already stored (redeliveries, replays, retained re-sends), per channel.",
            ["channel"],
            registry=r,
        )
        self.stale = Counter(
            "factory_ingest_stale",
            "Retained birth/state messages older than the one held, per channel.",
            ["channel"],
            registry=r,
        )
        self.ignored = Counter(
            "factory_ingest_ignored",
            "Messages on channels the service does not ingest (commands), per channel.",
            ["channel"],
            registry=r,
        )
        self.store_errors = Counter(
            "factory_store_errors", "Batches the store failed to commit (retried).", registry=r
        )
        self.commit_latency = Histogram(
            "factory_ingest_commit_latency_seconds",
            "Wall-clock time from receiving a message to committing it.",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.batch_size = Histogram(
            "factory_ingest_batch_messages",
            "Messages per committed batch.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.held = Gauge(
            "factory_ingest_held",
            "Messages ahead of the fleet's clock, held (unacknowledged) until another robot "
            "confirms their time or FACTORY_CLOCK_HOLD_S passes (then refused, reason clock).",
            registry=r,
        )
        self.stream_clients = Gauge(
            "factory_stream_clients", "Connected /api/stream clients.", registry=r
        )
        self.stream_dropped = Counter(
            "factory_stream_dropped",
            "Stream clients dropped for reading too slowly.",
            registry=r,
        )
        self.commands_sent = Counter(
            "factory_commands_sent",
            "Commands published to robots (QoS 1), per type.",
            ["type"],
            registry=r,
        )
        self.maintenance_errors = Counter(
            "factory_maintenance_errors",
            "Maintenance steps that failed (logged; ingest goes on).",
            registry=r,
        )
        self.rate_limited = Counter(
            "factory_api_rate_limited",
            "Write requests refused with 429 (over the per-key rate).",
            registry=r,
        )
        self.session_takeovers = Counter(
            "factory_mqtt_session_takeovers",
            "Times another connection with the service's client id took its session over.",
            registry=r,
        )
        self.deaf_reconnects = Counter(
            "factory_mqtt_deaf_reconnects",
            "Times the ingest client heard nothing, not even its own probe, and resubscribed.",
            registry=r,
        )
        r.register(_LiveCollector(live, inbox))
        # Every label value known up front, so a rate() of zero is a series, not a gap.
        for reason in (*RejectReason, CLOCK):
            self.rejected.labels(reason)
        for channel in Channel:
            self.messages.labels(channel.value)
            self.duplicates.labels(channel.value)
        for command in COMMAND_TYPES:
            self.commands_sent.labels(command)
