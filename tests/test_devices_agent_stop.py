"""A stopping robot's OFFLINE is its last message, without a broker: once the stop has begun,
whatever the simulation still hands the agent, and a connection that opens late, take no
``seq`` (a reader waiting for OFFLINE's ``seq`` has the whole sequence)."""

from __future__ import annotations

from contract.topics import Channel, Topic
from simulator.devices.agent import DeviceAgent
from simulator.devices.net_loop import NetworkLoop
from simulator.model.records import BirthRecord, Sample, StateChange

T0 = 1_767_592_800.0


def test_nothing_is_made_once_the_stop_has_begun() -> None:
    network = NetworkLoop()
    agent = DeviceAgent(
        Topic("plant-1", "body-shop", "line-1", "weld-01", Channel.BIRTH),
        host="127.0.0.1",
        port=9,  # never connected: start() is not called
        username="weld-01",
        password="-",
        boot="boot-1",
        birth=lambda: BirthRecord("weld-01", T0, {}),
        on_command=lambda command: None,
        network=network,
    )
    try:
        agent.send(StateChange("weld-01", T0, "RUNNING", None))  # re-published on connect
        agent.send(Sample("weld-01", T0 + 1, {"temperature_c": 40.0}))  # spooled: offline
        assert (agent.last_seq, agent.buffered) == (1, 1)
        agent.begin_stop()
        agent.send(Sample("weld-01", T0 + 2, {"temperature_c": 40.0}))
        agent.send(StateChange("weld-01", T0 + 2, "IDLE", None))
        agent.heartbeat(T0 + 3600, quiet_s=60.0)
        assert agent.last_seq == 1
    finally:
        network.stop()
