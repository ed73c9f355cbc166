"""The wire codec: strict payloads, one clear reason for every refusal (no network)."""

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from contract.codec import (
    MAX_PAYLOAD_BYTES,
    Rejected,
    RejectReason,
    decode,
    decode_message,
    encode,
)
from contract.payloads import (
    MAX_BATCH,
    Ack,
    Birth,
    ComponentInfo,
    ComponentTruth,
    InjectFault,
    Reading,
    ScheduleMaintenance,
    SensorInfo,
    State,
    Telemetry,
    Truth,
)

ENVELOPE: dict[str, Any] = {
    "v": 1,
    "robot": "weld-01",
    "ts": 1767592800.0,
    "boot": "b00t",
    "seq": 7,
}
TOPIC = "factory/plant-1/body-shop/line-1/weld-01/telemetry"


def telemetry(**reading: Any) -> dict[str, Any]:
    return {**ENVELOPE, "readings": [{"ts": 1767592800.0, **reading}]}


def reject_reason(data: bytes, channel: str = "telemetry") -> RejectReason:
    with pytest.raises(Rejected) as info:
        decode(channel, data)
    return info.value.reason


def test_valid_payloads_round_trip() -> None:
    payloads = [
        Telemetry(**ENVELOPE, readings=[Reading(ts=1.0, temperature_c=41.5, cycle_time_s=45.0)]),
        State(**ENVELOPE, state="RUNNING", since=1.0),
        Birth(
            **ENVELOPE,
            kind="welder",
            model="AW-6",
            site="plant-1",
            area="body-shop",
            line="line-1",
            components=[ComponentInfo(name="gripper", kind="gripper")],
            sensors=[SensorInfo(name="temperature_c", unit="°C", min=-10.0, max=150.0)],
            sample_interval_s=300.0,
            vibration_class="I",
        ),
        Ack(**ENVELOPE, kind="ack", command_id="wo-1.1", status="rejected", reason="expired"),
        Truth(
            **ENVELOPE,
            components=[ComponentTruth(name="gripper", wear=0.2, threshold=1.0, rul_s=3600.0)],
        ),
        ScheduleMaintenance(
            **ENVELOPE,
            id="wo-1.1",
            type="schedule_maintenance",
            expires_ts=1767600000.0,
            component="gripper",
            start_ts=1767596400.0,
            duration_s=3600.0,
        ),
        InjectFault(
            **ENVELOPE,
            id="f-1",
            type="inject_fault",
            expires_ts=1767600000.0,
            fault="spike",
            sensor="vibration_rms_mm_s",
        ),
    ]
    channels = ["telemetry", "state", "birth", "event", "truth", "cmd", "cmd"]
    for payload, channel in zip(payloads, channels, strict=True):
        assert decode(channel, encode(payload)) == payload


def test_integers_are_accepted_where_floats_are_expected() -> None:
    decoded = decode("telemetry", orjson.dumps(telemetry(temperature_c=41)))
    assert isinstance(decoded, Telemetry)
    assert decoded.readings[0].temperature_c == 41.0


def test_string_for_a_number_is_invalid_and_named() -> None:
    with pytest.raises(Rejected) as info:
        decode("telemetry", orjson.dumps(telemetry(temperature_c="hot")))
    assert info.value.reason is RejectReason.INVALID
    assert "readings.0.temperature_c" in str(info.value)


@pytest.mark.parametrize("token", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_non_finite_numbers_are_refused(token: bytes) -> None:
    data = orjson.dumps(telemetry(temperature_c=1.5)).replace(b"1.5", token)
    assert reject_reason(data) is RejectReason.NON_FINITE


def test_nan_inside_a_string_is_just_a_string() -> None:
    data = orjson.dumps({**ENVELOPE, "state": "RUNNING", "since": 1.0, "reason": "NaN seen"})
    assert isinstance(decode("state", data), State)


@pytest.mark.parametrize(
    ("version", "reason"),
    [
        (2, RejectReason.UNKNOWN_VERSION),
        ("1", RejectReason.UNKNOWN_VERSION),
        (True, RejectReason.UNKNOWN_VERSION),
        (None, RejectReason.UNKNOWN_VERSION),
        (1.0, RejectReason.UNKNOWN_VERSION),  # the version is an integer, as seq is
    ],
)
def test_unknown_versions(version: object, reason: RejectReason) -> None:
    assert reject_reason(orjson.dumps({**telemetry(temperature_c=1.0), "v": version})) is reason


def test_missing_version() -> None:
    payload = telemetry(temperature_c=1.0)
    del payload["v"]
    with pytest.raises(Rejected, match="missing schema version"):
        decode("telemetry", orjson.dumps(payload))


def test_the_largest_batch_fits_the_size_limit() -> None:
    """A full batch with every metric at full float precision encodes under 16 KiB, so a robot
    that batches as the contract allows never makes a message a broker or the codec refuses."""
    worst = 1.2345678901234567e-05  # the longest a float in range prints
    metrics = Reading.model_fields.keys() - {"ts"}
    reading = {"ts": 1767592800.1234567} | dict.fromkeys(metrics, worst)
    payload = {**ENVELOPE, "boot": "b" * 16, "seq": 2**63 - 1, "historical": True}
    data = orjson.dumps({**payload, "readings": [reading] * MAX_BATCH})
    assert len(data) <= MAX_PAYLOAD_BYTES
    assert len(decode("telemetry", data).readings) == MAX_BATCH  # type: ignore[attr-defined]
    with pytest.raises(Rejected):
        decode("telemetry", orjson.dumps({**payload, "readings": [reading] * (MAX_BATCH + 1)}))


def test_oversize_payload() -> None:
    padding = "x" * MAX_PAYLOAD_BYTES
    with pytest.raises(Rejected) as info:
        decode(
            "state", orjson.dumps({**ENVELOPE, "state": "IDLE", "since": 1.0, "reason": padding})
        )
    assert info.value.reason is RejectReason.TOO_LARGE
    assert "16384" in str(info.value)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff\xfe{}", RejectReason.BAD_UTF8),
        (b"{not json", RejectReason.BAD_JSON),
        (b"[1, 2]", RejectReason.NOT_OBJECT),
        (b'"text"', RejectReason.NOT_OBJECT),
        (b'{"v": 1, "a": ' + b"[" * 40 + b"]" * 40 + b"}", RejectReason.TOO_DEEP),
        (b"[" * 3000 + b"]" * 3000, RejectReason.TOO_DEEP),
    ],
)
def test_malformed_bytes(data: bytes, reason: RejectReason) -> None:
    assert reject_reason(data) is reason


@pytest.mark.parametrize(
    "change",
    [
        {"seq": -1},
        {"seq": 1.0},
        {"seq": True},
        {"robot": "Weld 01"},
        {"boot": "b"},
        {"ts": -5.0},
        {"unexpected": 1},
        {"readings": []},
        {"readings": [{"ts": 1.0}]},  # no metric at all
        {"readings": [{"ts": 1.0, "vibration_rms_mm_s": -0.1}]},
        {"readings": [{"ts": 1.0, "humidity_pct": 3.0}]},
    ],
)
def test_invalid_fields(change: dict[str, Any]) -> None:
    assert (
        reject_reason(orjson.dumps({**telemetry(temperature_c=1.0), **change}))
        is RejectReason.INVALID
    )


def test_command_expiring_before_issue_is_invalid() -> None:
    command = {
        **ENVELOPE,
        "id": "x",
        "type": "cancel_maintenance",
        "target": "y",
        "expires_ts": 1.0,
    }
    assert reject_reason(orjson.dumps(command), "cmd") is RejectReason.INVALID


def test_decode_message_checks_topic_and_robot() -> None:
    data = orjson.dumps(telemetry(temperature_c=1.0))
    topic, payload = decode_message(TOPIC, data)
    assert topic.robot == payload.robot == "weld-01"
    with pytest.raises(Rejected) as info:
        decode_message(TOPIC.replace("weld-01", "weld-02"), data)
    assert info.value.reason is RejectReason.ROBOT_MISMATCH
    with pytest.raises(Rejected) as info:
        decode_message("factory/plant-1/weld-01/telemetry", data)
    assert info.value.reason is RejectReason.BAD_TOPIC


def test_event_kind_selects_the_model() -> None:
    data = orjson.dumps({**ENVELOPE, "kind": "ack", "command_id": "c1", "status": "maybe"})
    with pytest.raises(Rejected, match="status"):
        decode("event", data)


def outcome(channel: str, data: bytes) -> RejectReason | None:
    """None if accepted, else the reject reason; any other exception escapes and fails the test."""
    try:
        decode(channel, data)
    except Rejected as exc:
        return exc.reason
    return None


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_accepted_or_rejected_cleanly(data: bytes) -> None:
    assert outcome("telemetry", data) in {None, *RejectReason}


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats()
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=30,
)


@given(st.dictionaries(st.sampled_from([*ENVELOPE, "readings", "state", "kind", "x"]), json_values))
def test_arbitrary_json_objects_are_accepted_or_rejected_cleanly(obj: dict[str, Any]) -> None:
    data = orjson.dumps(obj)
    for channel in ("telemetry", "state", "event", "cmd", "birth", "truth"):
        assert outcome(channel, data) in {None, *RejectReason}
