"""Every record the model emits becomes a valid contract payload once the envelope is added."""

from collections import Counter

import pytest
from pydantic import TypeAdapter
from simulator_support import HOUR_S, cancel, default, fault, run, schedule

from contract.codec import decode, encode
from contract.payloads import Birth, Event, State, Telemetry, Truth
from contract.topics import Channel
from simulator.model.records import NetworkDrop, Record

MODELS = {Channel.BIRTH: Birth, Channel.TELEMETRY: Telemetry, Channel.STATE: State}
EVENT = TypeAdapter(Event)


@pytest.fixture(scope="module")
def records() -> list[Record]:
    scenario = default()
    t0 = scenario.start_ts
    commands = [
        schedule("weld-01", "wo-1", "reducer-j2", t0 + 16 * HOUR_S),
        schedule("weld-02", "wo-2", "gripper", t0 + 16 * HOUR_S),
        cancel("weld-02", "c-1", "wo-2", t0 + HOUR_S),
        schedule("weld-03", "wo-3", "elbow", t0 + 16 * HOUR_S),
        fault("handle-01", "f-1", t0 + HOUR_S, "sensor_drift", sensor="temperature_c"),
        fault("handle-02", "f-2", t0 + HOUR_S, "spike", sensor="vibration_rms_mm_s"),
        fault("handle-03", "f-3", t0 + HOUR_S, "stuck", sensor="cycle_time_s", duration_s=600.0),
        fault("handle-04", "f-4", t0 + HOUR_S, "dropout", sensor="motor_current_a"),
        fault("paint-01", "f-5", t0 + HOUR_S, "overheat", magnitude=3.0),
        fault("paint-02", "f-6", t0 + HOUR_S, "network_drop"),
        fault(
            "weld-04", "f-7", t0 + HOUR_S, "accelerated_wear", component="gripper", magnitude=9.0
        ),
    ]
    actions = [(HOUR_S, lambda f, c=c: f.handle(c)) for c in commands]
    return run(scenario, seed=7, days=14, actions=actions)[0]


def test_every_record_validates_as_its_payload(records: list[Record]) -> None:
    kinds: Counter[str] = Counter()
    for seq, record in enumerate(records, start=1):
        envelope = {"v": 1, "robot": record.robot, "ts": record.ts, "boot": "b00t-1", "seq": seq}
        channel = record.CHANNEL
        if channel is None:
            assert isinstance(record, NetworkDrop)
            kinds["network_drop"] += 1
            continue
        data = {**envelope, **record.fields()}
        if channel is Channel.EVENT:
            payload = EVENT.validate_python(data)
            kinds[f"event:{data['kind']}"] += 1
        elif channel is Channel.TRUTH:
            payload = Truth.model_validate(data)
            kinds["truth"] += 1
        else:
            payload = MODELS[channel].model_validate(data)
            kinds[channel.value] += 1
        assert decode(channel, encode(payload)) == payload  # and survives the wire
    wanted = {
        "birth",
        "telemetry",
        "state",
        "truth",
        "network_drop",
        *(
            f"event:{k}"
            for k in (
                "failure",
                "repair_started",
                "repair_finished",
                "maintenance_started",
                "maintenance_finished",
                "parts",
                "ack",
                "fault_started",
                "fault_cleared",
            )
        ),
    }
    assert wanted <= set(kinds), wanted - set(kinds)


def test_sample_reading_is_one_telemetry_entry(records: list[Record]) -> None:
    sample = next(r for r in records if r.CHANNEL is Channel.TELEMETRY)
    reading = sample.reading()  # type: ignore[union-attr]
    assert reading["ts"] == sample.ts
    assert set(reading) == {"ts", *sample.values}  # type: ignore[union-attr]
