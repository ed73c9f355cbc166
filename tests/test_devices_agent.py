"""Robots as MQTT devices against real brokers: retained birth/state, telemetry, commands,
the last will, and store-and-forward across a broker restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pytest
from brokers import BrokerHandle, Message

from broker_config.credentials import load_credentials
from broker_config.embedded import BrokerProcess, free_port, start_broker
from contract.codec import decode, encode
from contract.mqtt import new_client
from contract.payloads import ScheduleMaintenance, State, Telemetry
from contract.topics import Channel
from simulator.devices.run import LiveFactory, parse_duration
from simulator.model.scenario import Scenario, load_scenario, parse_scenario

pytestmark = pytest.mark.integration

ROBOT = "weld-01"
FACTOR = 3600.0  # one simulated hour per wall second
SAMPLE_S = 60.0


def scenario_for(site: str, robots: tuple[str, ...] = (ROBOT,)) -> Scenario:
    """The default scenario cut down to a few welders on one line of a unique site."""
    data = load_scenario().model_dump()
    data["site"] = site
    data["kinds"]["welder"]["sample_interval_s"] = SAMPLE_S
    data["kinds"]["welder"]["initial_age_h_max"] = 0.0
    data["lines"] = [
        {"id": "line-1", "area": "area-1", "robots": [{"id": r, "kind": "welder"} for r in robots]}
    ]
    return parse_scenario(data, "agent test scenario")


def payload(message: Message) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(message.payload)
    return result


def on(channel: str, robot: str = ROBOT) -> Any:
    return lambda m: m.topic.endswith(f"/{robot}/{channel}")


def live_factory(broker: BrokerHandle, scenario: Scenario) -> LiveFactory:
    """The scenario's robots against the test broker, at one simulated hour a second."""
    return LiveFactory(
        scenario,
        seed=3,
        factor=FACTOR,
        host=broker.host,
        port=broker.port,
        state_dir=broker.state_dir,
    )


@pytest.fixture
def live(broker: BrokerHandle, topic_site: str) -> Iterator[LiveFactory]:
    factory = live_factory(broker, scenario_for(topic_site))
    yield factory
    factory.stop()


def test_parse_duration() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("30m") == 1800
    assert parse_duration("2h") == 7200
    assert parse_duration("1.5d") == 1.5 * 86400
    assert parse_duration("45") == 45
    with pytest.raises(ValueError, match="like 90s"):
        parse_duration("soon")


def test_subscriber_sees_retained_birth_state_and_ordered_telemetry(
    broker: BrokerHandle, live: LiveFactory, topic_site: str
) -> None:
    live.start()
    watcher = broker.capture(f"factory/{topic_site}/#")
    readings = watcher.wait_for(on("telemetry"), timeout_s=10.0, count=5)
    seqs = [payload(m)["seq"] for m in readings]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    for message in readings:
        telemetry = decode(Channel.TELEMETRY, message.payload)
        assert isinstance(telemetry, Telemetry)
        assert not telemetry.historical
        assert message.qos == 1
    # A late subscriber gets birth and state at once, retained.
    late = broker.capture(f"factory/{topic_site}/+/+/{ROBOT}/+")
    birth = late.wait_for(on("birth"), timeout_s=15.0)[0]
    state = late.wait_for(on("state"), timeout_s=15.0)[0]
    assert birth.retain
    assert state.retain
    assert payload(birth)["components"]
    assert payload(state)["state"] in {"RUNNING", "IDLE"}


def test_command_is_executed_and_acknowledged(
    broker: BrokerHandle, live: LiveFactory, topic_site: str
) -> None:
    live.start()
    watcher = broker.capture(f"factory/{topic_site}/#")
    watcher.wait_for(on("telemetry"), timeout_s=10.0)
    service = broker.client("service")
    now = live.now_ts
    command = ScheduleMaintenance(
        v=1,
        robot=ROBOT,
        ts=now,
        boot="svc-test",
        seq=1,
        id="wo-1.1",
        type="schedule_maintenance",
        component="gripper",
        start_ts=now + 1800.0,
        duration_s=3600.0,
        expires_ts=now + 86400.0,
    )
    cmd_topic = f"factory/{topic_site}/area-1/line-1/{ROBOT}/cmd"
    broker.publish(service, cmd_topic, encode(command))
    broker.publish(service, cmd_topic, encode(command))  # a duplicate must not run twice

    def ack(status: str) -> Any:
        return lambda m: on("event")(m) and payload(m).get("status") == status

    watcher.wait_for(ack("accepted"), timeout_s=10.0)
    started = watcher.wait_for(
        lambda m: on("event")(m) and payload(m)["kind"] == "maintenance_started", timeout_s=15.0
    )
    assert payload(started[0])["command_id"] == "wo-1.1"
    watcher.wait_for(
        lambda m: on("state")(m) and payload(m)["state"] == "MAINTENANCE", timeout_s=5.0
    )
    watcher.wait_for(ack("done"), timeout_s=15.0)
    starts = [
        m
        for m in watcher.messages
        if on("event")(m) and payload(m)["kind"] == "maintenance_started"
    ]
    assert len(starts) == 1


def test_idle_robot_repeats_its_state_as_a_heartbeat(broker: BrokerHandle, topic_site: str) -> None:
    """Sunday night nobody works: the robot still re-publishes its retained IDLE state, same
    ``since``, a fresh ``ts`` about every ``heartbeat_s``, and its sequence stays gapless."""
    scenario = scenario_for(topic_site).model_copy(
        update={"start": datetime(2026, 1, 4, 0, 0, tzinfo=UTC), "heartbeat_s": 1800.0}
    )
    live = live_factory(broker, scenario)
    try:
        watcher = broker.capture(f"factory/{topic_site}/+/+/{ROBOT}/state")
        live.start()
        beats = watcher.wait_for(lambda m: payload(m)["state"] == "IDLE", count=4, timeout_s=15.0)
    finally:
        live.stop()
    states = [payload(m) for m in beats]
    assert len({s["since"] for s in states}) == 1
    stamps = [s["ts"] for s in states]
    assert stamps == sorted(stamps)
    gaps = [b - a for a, b in pairwise(stamps[1:])]  # after the first
    assert all(1800.0 <= gap <= 1.5 * 1800.0 + 1 for gap in gaps), gaps
    seqs = [s["seq"] for s in states]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing else was sent between


def test_readings_are_batched_as_the_scenario_says(broker: BrokerHandle, topic_site: str) -> None:
    scenario = scenario_for(topic_site).model_copy(update={"telemetry_batch": 4})
    live = live_factory(broker, scenario)
    try:
        watcher = broker.capture(f"factory/{topic_site}/+/+/{ROBOT}/telemetry")
        live.start()
        messages = watcher.wait_for(count=3, timeout_s=15.0)
    finally:
        live.stop()
    for message in messages:
        telemetry = decode(Channel.TELEMETRY, message.payload)
        assert isinstance(telemetry, Telemetry)
        stamps = [r.ts for r in telemetry.readings]
        assert stamps == sorted(stamps)
        assert telemetry.ts == stamps[-1]
        assert [b - a for a, b in pairwise(stamps)] == [SAMPLE_S] * (len(stamps) - 1)
    assert max(len(orjson.loads(m.payload)["readings"]) for m in messages) == 4


def test_killed_connection_fires_the_last_will(
    broker: BrokerHandle, live: LiveFactory, topic_site: str
) -> None:
    live.start()
    watcher = broker.capture(f"factory/{topic_site}/+/+/{ROBOT}/state")
    watcher.wait_for(lambda m: payload(m)["state"] == "RUNNING", timeout_s=10.0)
    live.agents[ROBOT].drop_connection(offline_wall_s=30.0)
    will = watcher.wait_for(lambda m: payload(m)["state"] == "OFFLINE", timeout_s=10.0)[0]
    state = decode(Channel.STATE, will.payload)
    assert isinstance(state, State)
    assert state.seq == 0  # the will's reserved sequence number
    assert state.reason == "connection lost"


def test_clean_stop_publishes_offline_itself(
    broker: BrokerHandle, live: LiveFactory, topic_site: str
) -> None:
    live.start()
    watcher = broker.capture(f"factory/{topic_site}/+/+/{ROBOT}/state")
    watcher.wait_for(lambda m: payload(m)["state"] == "RUNNING", timeout_s=10.0)
    live.stop()
    offline = watcher.wait_for(lambda m: payload(m)["state"] == "OFFLINE", timeout_s=10.0)[0]
    assert payload(offline)["seq"] > 0  # published by the robot, not the will
    assert payload(offline)["reason"] == "shut down"


class SeqWatcher:
    """A service-account subscriber with a persistent session that follows the broker across a
    restart, recording every ``seq`` the robot's messages carry. :meth:`wait_subscribed` tells
    when its subscription is in place again (the test keeps the robot away until then: amqtt
    forgets sessions on a restart, so what the robot sent before would reach no one)."""

    def __init__(self, state_dir: Path, port: int, site: str) -> None:
        credentials = load_credentials(state_dir)
        assert credentials is not None
        username, password = credentials.get("service")
        self.seqs: set[int] = set()
        self.historical = 0
        self._filter = f"factory/{site}/+/+/{ROBOT}/+"
        self.client = new_client(
            f"restart-watcher-{site}", clean_session=False, username=username, password=password
        )
        self.client.reconnect_delay_set(0.1, 0.2)  # type: ignore[arg-type]
        self.subscribed = 0
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(self._filter, qos=1)
        self.client.on_subscribe = lambda c, u, mid, codes, p: self._count_suback()
        self.client.on_message = lambda c, u, m: self._add(bytes(m.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _count_suback(self) -> None:
        self.subscribed += 1

    def wait_subscribed(self, times: int, timeout_s: float) -> None:
        wait_until(lambda: self.subscribed >= times, timeout_s)

    def _add(self, data: bytes) -> None:
        body = orjson.loads(data)
        if body.get("seq"):
            self.seqs.add(body["seq"])
        if body.get("historical"):
            self.historical += 1

    def wait_for_seq(self, seq: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while seq not in self.seqs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seq in self.seqs, f"sequence {seq} never arrived; have up to {max(self.seqs)}"

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_until(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("impl", ["mosquitto", "amqtt"])
def test_broker_restart_loses_no_reading(
    impl: str, tmp_path: Path, topic_site: str, request: pytest.FixtureRequest
) -> None:
    """Stop the broker mid-run and start it again on the same port: on Mosquitto every message
    the robot made arrives (its sequence has no gap); those made while the broker was away are
    flagged historical. amqtt keeps nothing across a restart, so what it had acknowledged but
    not yet forwarded when it stopped is gone (docs/broker.md): on amqtt, only messages made
    before the robot saw the broker go may be missing — never one made after."""
    request.getfixturevalue(f"{impl}_broker")  # skips (or fails in CI) if it cannot run here
    state_dir, port = tmp_path / "state", free_port()
    first = start_broker(
        impl=impl, port=port, state_dir=state_dir, scenario=scenario_for(topic_site)
    )
    watcher = SeqWatcher(state_dir, port, topic_site)
    live = LiveFactory(
        scenario_for(topic_site),
        seed=5,
        factor=FACTOR,
        host="127.0.0.1",
        port=port,
        state_dir=state_dir,
    )
    second: BrokerProcess | None = None
    try:
        live.start()
        agent = live.agents[ROBOT]
        wait_until(lambda: len(watcher.seqs) >= 20, timeout_s=30.0)
        first.stop()
        wait_until(lambda: not agent.connected, timeout_s=30.0)
        seq_at_loss = agent.last_seq
        agent.hold_offline()  # back only once the watcher is: no guess at who is faster
        wait_until(lambda: agent.buffered >= 10, timeout_s=30.0)  # made while away
        second = start_broker(
            impl=impl, port=port, state_dir=state_dir, scenario=scenario_for(topic_site)
        )
        watcher.wait_subscribed(times=2, timeout_s=30.0)
        agent.come_back()
        wait_until(lambda: agent.connected and agent.buffered == 0, timeout_s=60.0)
        live.stop()  # publishes OFFLINE: after that, the robot's sequence is complete
        watcher.wait_for_seq(agent.last_seq, timeout_s=30.0)
        missing = sorted(set(range(1, agent.last_seq + 1)) - watcher.seqs)
        if impl == "mosquitto":
            assert not missing, f"lost {len(missing)} messages, e.g. seq {missing[:5]}"
        else:
            assert all(seq <= seq_at_loss for seq in missing), (
                f"lost messages made after the broker went away: {missing[:5]}"
            )
        assert watcher.historical >= 10
        assert agent.stats.dropped == 0
    finally:
        live.stop()
        watcher.close()
        if second is not None:
            second.stop()
        first.stop()


def test_a_long_disconnection_spills_to_disk_and_loses_nothing(
    mosquitto_broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    """Five messages fit in memory; the rest of what the robot makes while away goes to segment
    files, comes back in order after the reconnect (flagged historical), and the files go when
    the robot stops."""
    broker = mosquitto_broker
    watcher = broker.capture(f"factory/{topic_site}/+/+/{ROBOT}/+", who="service")
    spool = tmp_path / "spool"
    live = LiveFactory(
        scenario_for(topic_site),
        seed=4,
        factor=FACTOR,
        host=broker.host,
        port=broker.port,
        state_dir=broker.state_dir,
        buffer_messages=5,
        spool_dir=spool,
    )
    try:
        live.start()
        agent = live.agents[ROBOT]
        watcher.wait_for(on("telemetry"), timeout_s=30.0)
        agent.hold_offline()
        agent.drop_connection(offline_wall_s=0.0)
        # Two segments on disk: waited for as files, since the count includes a full tail the
        # simulation thread may still be writing out.
        wait_until(
            lambda: (
                agent.buffered >= 5 + 2 * 1_000 and len(list((spool / ROBOT).glob("*.jsonl"))) >= 2
            ),
            timeout_s=60.0,
        )
        agent.come_back()
        wait_until(lambda: agent.connected and agent.buffered == 0, timeout_s=60.0)
        live.stop()  # OFFLINE last: after it, the sequence is complete
        watcher.wait_for(lambda m: on("state")(m) and payload(m)["seq"] == agent.last_seq)
    finally:
        live.stop()
    bodies = [payload(m) for m in watcher.messages if payload(m)["seq"] > 0]
    seqs = {b["seq"] for b in bodies}
    assert seqs == set(range(min(seqs), agent.last_seq + 1))
    # Telemetry (about half of the 2,005 made while away; the rest is truth) is flagged.
    assert sum(1 for b in bodies if b.get("historical")) >= 500
    assert agent.stats.dropped == 0
    assert not spool.exists() or not any(spool.iterdir())
