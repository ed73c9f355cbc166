"""The flow gate's accounting: what was made against what the service reports stored (pure, with
a clock the test moves), and a held simulation released by a report from another thread."""

from __future__ import annotations

import inspect
import threading
import time

import pytest
from brokers import CLUSTER_IMPLS, BrokerHandle

from contract.codec import encode
from contract.ingest import IngestProgress, decode_progress, ingest_topic, is_ingest_topic
from factory import cli
from simulator.devices.flow import DEFAULT_WINDOW, STALE_S, FlowGate
from simulator.devices.ingest_watch import IngestWatch
from simulator.devices.net_loop import NetworkLoop

SITE = "plant-1"


class Fleet:
    """What the gate reads of the simulation: messages made and the newest time made."""

    def __init__(self) -> None:
        self.made = 0
        self.newest = 0.0
        self.now = 1000.0  # the test's monotonic clock
        self.wall = 5000.0

    def make(self, count: int, ts: float) -> None:
        self.made += count
        self.newest = ts

    def gate(self, window: int = 100) -> FlowGate:
        return FlowGate(
            window,
            {SITE},
            lambda: self.made,
            lambda: self.newest,
            clock=lambda: self.now,
            wall=lambda: self.wall,
        )


def report(through: float | None, worker: str = "factory-service", **more: float) -> IngestProgress:
    fields = {"committed": 0, "waiting": 0, "lag_s": 0.0} | more
    return IngestProgress.model_validate(
        {"v": 1, "ts": 5000.0, "worker": worker, "through": through, **fields}
    )


def test_the_report_round_trips_and_its_topic_is_no_robots() -> None:
    sent = report(12.5, committed=3, waiting=2)
    assert decode_progress(encode(sent)) == sent
    assert decode_progress(encode(report(None))).through is None
    assert is_ingest_topic(ingest_topic(SITE))
    assert not is_ingest_topic(f"factory/{SITE}/a/l/r/telemetry")
    assert not is_ingest_topic("factory/Bad Site/ingest")


def test_without_a_service_it_runs_free_and_says_so_once() -> None:
    fleet = Fleet()
    gate = fleet.gate()
    fleet.make(10_000, 50.0)
    gate.checkpoint(50.0)
    assert gate.outstanding() is None
    assert not gate.wait_while_ahead()
    assert not gate.wait_while_ahead()
    (news,) = gate.news()
    assert "running free" in news
    assert "factory/plant-1/ingest" in news
    assert gate.line() == "flow: free (no ingest progress heard)"


def test_what_was_made_after_the_stored_time_is_outstanding() -> None:
    fleet = Fleet()
    gate = fleet.gate(window=100)
    gate.observe(SITE, report(None), retained=False)
    gate.checkpoint(0.0)  # the first checkpoint is where the accounting starts
    for ts in (10.0, 20.0, 30.0, 40.0):
        fleet.make(40, ts)
        gate.checkpoint(ts)
    assert gate.outstanding() == 160  # nothing of ours stored yet
    gate.observe(SITE, report(25.0), retained=False)  # made by 20.0: 80 stored
    assert gate.outstanding() == 80
    gate.observe(SITE, report(40.0), retained=False)  # the newest made is stored
    assert gate.outstanding() == 0
    assert not gate.wait_while_ahead()
    assert "following" in gate.news()[0]


def test_the_slowest_fresh_worker_counts_and_a_gone_one_does_not() -> None:
    fleet = Fleet()
    gate = fleet.gate()
    for ts in (10.0, 20.0, 30.0):
        fleet.make(50, ts)
        gate.checkpoint(ts)
    gate.observe(SITE, report(30.0, worker="factory-service-a"), retained=False)
    gate.observe(SITE, report(10.0, worker="factory-service-b"), retained=False)
    assert gate.outstanding() == 100
    fleet.now += STALE_S / 2
    gate.observe(SITE, report(30.0, worker="factory-service-a"), retained=False)
    fleet.now += STALE_S / 2 + 1  # b has said nothing for longer than STALE_S
    assert gate.outstanding() == 0
    gate.observe("another-site", report(0.0), retained=False)  # not one of ours: ignored
    assert gate.outstanding() == 0


def test_an_old_retained_report_is_a_service_that_is_gone() -> None:
    fleet = Fleet()
    gate = fleet.gate()
    old = IngestProgress(
        v=1, ts=fleet.wall - 3600, worker="w", through=1.0, committed=1, waiting=0, lag_s=0.0
    )
    gate.observe(SITE, old, retained=True)
    assert gate.outstanding() is None
    gate.observe(SITE, report(1.0), retained=True)  # a recent retained copy counts
    assert gate.outstanding() == 0


def test_a_held_simulation_goes_on_when_the_service_catches_up() -> None:
    fleet = Fleet()
    gate = fleet.gate(window=100)
    gate.observe(SITE, report(None), retained=False)
    gate.checkpoint(0.0)
    fleet.make(500, 10.0)
    gate.checkpoint(10.0)
    pumped = threading.Event()
    done: list[bool] = []
    worker = threading.Thread(target=lambda: done.append(gate.wait_while_ahead(pumped.set)))
    worker.start()
    assert pumped.wait(10.0), "the gate did not wait"
    assert gate.held
    assert "held back, 500 messages not yet stored" in gate.line()
    gate.observe(SITE, report(10.0, committed=500), retained=False)
    worker.join(10.0)
    assert done == [True]
    assert not gate.held
    assert gate.max_outstanding == 500
    assert "at most 500 messages" in gate.summary()


def test_a_service_that_stores_nothing_while_nothing_waits_releases_the_hold() -> None:
    fleet = Fleet()
    gate = fleet.gate(window=10)
    gate.observe(SITE, report(5.0, committed=7), retained=False)
    for ts in (10.0, 20.0):
        fleet.make(50, ts)
        gate.checkpoint(ts)
    fleet.now += STALE_S + 1  # the same committed count for longer than STALE_S …
    gate.observe(SITE, report(5.0, committed=7), retained=False)  # … and nothing waiting
    assert gate.wait_while_ahead() is False
    assert any("lost on the way" in line for line in gate.news())
    assert gate.outstanding() == 0


def test_close_ends_a_hold() -> None:
    fleet = Fleet()
    gate = fleet.gate(window=1)
    gate.observe(SITE, report(None, waiting=5), retained=False)
    gate.checkpoint(0.0)
    fleet.make(10, 1.0)
    gate.checkpoint(1.0)
    waiting = threading.Event()
    worker = threading.Thread(target=lambda: gate.wait_while_ahead(waiting.set))
    worker.start()
    assert waiting.wait(10.0)
    gate.close()
    worker.join(10.0)
    assert not worker.is_alive()


def test_the_window_must_hold_a_message() -> None:
    with pytest.raises(ValueError, match="at least 1 message"):
        Fleet().gate(window=0)


def test_the_command_line_default_is_the_gate_default() -> None:
    default = inspect.signature(cli.simulate).parameters["flow_window"].default
    assert default == DEFAULT_WINDOW


@pytest.mark.integration
@pytest.mark.parametrize("broker", CLUSTER_IMPLS, indirect=True)
def test_the_watch_hears_the_service_under_a_robots_login(
    broker: BrokerHandle, topic_site: str
) -> None:
    """Mosquitto's ACL file, amqtt's plugins (which also reserve client ids per login) and the
    NATS permissions all let a robot's login, under its ``…-flow`` client id, read its site's
    progress, which only the service may publish."""
    fleet = Fleet()
    gate = FlowGate(10, {topic_site}, lambda: fleet.made, lambda: fleet.newest)
    robot = broker.robot_ids[0]
    username, password = broker.credentials(robot)
    network = NetworkLoop()
    watch = IngestWatch(
        gate,
        topic_site,
        robot=robot,
        host=broker.host,
        port=broker.port,
        username=username,
        password=password,
        network=network,
    )
    watch.start()
    try:
        service = broker.client("service")
        progress = IngestProgress(
            v=1,
            ts=time.time(),
            worker="factory-service",
            through=1.0,
            committed=1,
            waiting=0,
            lag_s=0.0,
        )
        deadline = time.monotonic() + 30.0
        while not gate.wait_heard(0.5):  # published again until the watch is subscribed
            assert time.monotonic() < deadline, f"{broker.impl}: the watch heard nothing"
            broker.publish(service, ingest_topic(topic_site), encode(progress), qos=0)
        assert gate.outstanding() == 0
        assert watch.refused == 0
        # A robot may not publish progress: the broker acknowledges and drops its forgery (the
        # service's next report, published after it, comes; the forgery never does).
        forger = broker.client(robot)
        forged = progress.model_copy(update={"worker": "forger", "through": 0.5})
        broker.publish(forger, ingest_topic(topic_site), encode(forged))
        marker = progress.model_copy(update={"worker": "marker"})
        broker.publish(service, ingest_topic(topic_site), encode(marker))
        deadline = time.monotonic() + 30.0
        while "marker" not in gate.workers():
            assert time.monotonic() < deadline, f"{broker.impl}: the marker never came"
            time.sleep(0.02)
        assert "forger" not in gate.workers()
    finally:
        watch.stop()
        network.stop()
