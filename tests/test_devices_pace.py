"""The fleet's pace without a broker: the payload, who may publish it, the service's desk, and the
realtime environment that pauses and changes speed without re-timing anything."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest
import simpy

from api.pace import PaceDesk, PaceUnknown
from broker_config.acl import acl_table, permits
from contract.codec import Rejected, encode
from contract.pace import Pace, decode_pace, is_pace_topic, pace_topic
from contract.topics import matches
from simulator.devices.pace import PacedEnvironment

PROBE_S = 0.05


def eventually(condition: Callable[[], bool], what: str, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"within {timeout_s} s: {what}")
        time.sleep(PROBE_S)


# --- the contract ------------------------------------------------------------------------------


def test_pace_payload_is_strict() -> None:
    pace = Pace(v=1, ts=1.5, paused=True, factor=60.0, by="service")
    assert decode_pace(encode(pace)) == pace
    for bad, reason in (
        (b'{"v":1,"ts":1,"paused":"yes","factor":60}', "paused"),
        (b'{"v":1,"ts":1,"paused":true,"factor":0}', "factor"),
        (b'{"v":1,"ts":1,"paused":true,"factor":60,"extra":1}', "extra"),
        (b'{"v":2,"ts":1,"paused":true,"factor":60}', "version"),
        (b"[1]", "JSON list"),
    ):
        with pytest.raises(Rejected, match=reason):
            decode_pace(bad)


def test_pace_topic_is_outside_every_robot_filter() -> None:
    topic = pace_topic("plant-1")
    assert topic == "factory/plant-1/pace"
    assert is_pace_topic(topic)
    assert not is_pace_topic("factory/plant-1/a/l/r/state")
    assert not is_pace_topic("factory/Bad Site/pace")
    assert not matches("factory/+/+/+/+/+", topic)
    assert matches("factory/#", topic)


def test_only_the_service_may_set_the_pace_and_robots_read_it() -> None:
    table = acl_table({"weld-01": "factory/plant-1/body-shop/line-1/weld-01"})
    topic = pace_topic("plant-1")
    assert permits(table, "service", "publish", topic)
    assert not permits(table, "weld-01", "publish", topic)
    assert not permits(table, None, "publish", topic)
    assert permits(table, "weld-01", "subscribe", topic)
    assert permits(table, "weld-01", "receive", topic)
    assert not permits(table, "weld-01", "subscribe", "factory/#")
    assert not permits(table, "weld-01", "receive", pace_topic("plant-2")), "its own site's only"
    assert permits(table, "instructor", "publish", topic)


# --- the service's desk ------------------------------------------------------------------------


def test_desk_publishes_retained_per_site_and_keeps_what_it_hears() -> None:
    sent: list[tuple[str, bytes, int, bool]] = []

    def publish(topic: str, data: bytes, qos: int, retain: bool) -> bool:
        sent.append((topic, data, qos, retain))
        return True

    desk = PaceDesk(publish, ["b", "a", "a"])
    with pytest.raises(PaceUnknown, match="say the factor"):
        desk.change(paused=True, factor=None)
    pace, ok = desk.change(paused=None, factor=60.0)
    assert ok
    assert not pace.paused
    assert pace.factor == 60.0
    assert [(t, q, r) for t, _, q, r in sent] == [
        ("factory/a/pace", 1, True),
        ("factory/b/pace", 1, True),
    ]
    paused, _ = desk.change(paused=True, factor=None)
    assert paused.paused
    assert paused.factor == 60.0
    assert desk.current == paused
    # What comes back from the broker: ours (same), an older one (ignored), another site's
    # (not ours), garbage (counted), and a newer one (taken).
    older = Pace(v=1, ts=paused.ts - 10, paused=False, factor=5.0)
    newer = Pace(v=1, ts=paused.ts + 10, paused=False, factor=3600.0)
    assert desk.observe("factory/a/pace", encode(older))
    assert desk.current == paused
    assert not desk.observe("factory/c/pace", encode(newer))
    assert desk.observe("factory/a/pace", b"{nope")
    assert desk.refused == 1
    assert desk.current == paused
    assert desk.observe("factory/b/pace", encode(newer))
    assert desk.current == newer


# --- the environment ---------------------------------------------------------------------------


@pytest.fixture
def ticking() -> Iterator[tuple[PacedEnvironment, list[float]]]:
    """An environment at 200 simulated seconds per wall second with a process that makes a
    "sample" every simulated second, running in its own thread like the live factory's."""
    env = PacedEnvironment(200.0)
    samples: list[float] = []

    def sampler() -> simpy.events.ProcessGenerator:
        while True:
            yield env.timeout(1.0)
            samples.append(env.now)

    env.process(sampler())
    thread = threading.Thread(target=env.run, daemon=True)
    thread.start()
    yield env, samples
    env.close()
    thread.join(5.0)
    assert not thread.is_alive(), "close() must end the run, even while paused"


def test_pause_stops_sampling_and_resume_loses_nothing(
    ticking: tuple[PacedEnvironment, list[float]],
) -> None:
    env, samples = ticking
    eventually(lambda: len(samples) >= 10, "ten samples at 200×")
    assert env.set_pace(paused=True, sim_per_wall=200.0)
    assert not env.set_pace(paused=True, sim_per_wall=200.0), "the same pace changes nothing"
    # At most the sample being processed when the pause came lands afterwards.
    time.sleep(PROBE_S)
    held = len(samples)
    for _ in range(10):  # ten probes, each of which would have seen ~10 samples if running
        time.sleep(PROBE_S)
        assert len(samples) == held, "a paused environment made a sample"
    assert env.set_pace(paused=False, sim_per_wall=200.0)
    eventually(lambda: len(samples) >= held + 10, "sampling resumed")
    assert samples == [float(i) for i in range(1, len(samples) + 1)], "a sample was lost or moved"


def test_speed_change_takes_effect_mid_wait_and_keeps_time_continuous() -> None:
    env = PacedEnvironment(10.0)
    fired: list[float] = []

    def late() -> simpy.events.ProcessGenerator:
        yield env.timeout(1000.0)  # 100 wall seconds at 10×
        fired.append(env.now)

    env.process(late())
    thread = threading.Thread(target=env.run, daemon=True)
    thread.start()
    try:
        time.sleep(PROBE_S)
        before = env._reached()
        env.set_pace(paused=False, sim_per_wall=1e5)
        assert env.env_start >= before, "re-anchoring never moves simulated time back"
        assert env.env_start - before < 10.0 * 1.0, "nor forward by more than a wall second"
        eventually(lambda: fired == [1000.0], "the event fired at its own simulated time")
    finally:
        env.close()
        thread.join(5.0)


def test_a_paused_environment_resumes_where_it_stood() -> None:
    env = PacedEnvironment(100.0, initial_time=50.0)
    env.set_pace(paused=True, sim_per_wall=100.0)
    stood = env._reached()
    time.sleep(PROBE_S * 2)
    assert env._reached() == stood
    env.set_pace(paused=False, sim_per_wall=100.0)
    assert env.env_start == stood
    with pytest.raises(ValueError, match="> 0"):
        env.set_pace(paused=False, sim_per_wall=0.0)
