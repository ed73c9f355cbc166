"""Hostile input through a real broker: the service stays up, counts every refusal, stores none.

A robot account publishes, on the topics its ACL allows, payloads drawn by Hypothesis: malformed
JSON, wrong types, NaN/Infinity, unknown versions, oversize and deeply nested documents, bad
UTF-8, non-objects, another robot's id, and an area level that breaks the naming rules (the ACL's
``+`` admits it; the contract does not). Between them it publishes valid readings, which must
all arrive. Oversize payloads never reach the service through Mosquitto: its
``message_size_limit`` drops them at the broker; amqtt forwards them and the service refuses
them. The expected reason of each message is the pipeline's own verdict (``classify``), checked
against the category it was drawn from, so the test is about counting and staying up.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from brokers import BrokerHandle, robot_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import MQTTProtocolVersion

from api.app import create_app
from api.inbound import Inbound
from api.ingest.pipeline import classify
from api.settings import Settings
from api.store import Refused
from contract.codec import MAX_PAYLOAD_BYTES, RejectReason
from contract.payloads import Reading, Telemetry
from contract.topics import Channel

with warnings.catch_warnings():
    # Starlette 1.x wants httpx2 for its TestClient and warns on import; httpx behaves the same.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

pytestmark = pytest.mark.integration

T0 = 1_767_592_800.0
EXAMPLES = 40
WAIT_S = 15.0
R = RejectReason


def valid(robot: str, seq: int) -> dict[str, Any]:
    reading = Reading(ts=T0 + seq, temperature_c=40.0, vibration_rms_mm_s=0.5)
    payload = Telemetry(v=1, robot=robot, ts=T0 + seq, boot="boot-1", seq=seq, readings=[reading])
    return payload.model_dump(exclude_none=True)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def hostile(robot: str) -> st.SearchStrategy[tuple[str, str | None, bytes, set[R]]]:
    """(category, a bad topic level or None, payload, reasons allowed for the category)."""
    base = valid(robot, 10_000)
    # None is a wrong value for a required field; a reading's metrics may be null (absent).
    wrong_value = st.one_of(st.text(max_size=3), st.booleans(), st.lists(st.integers(), max_size=2))
    wrong_types = st.tuples(
        st.sampled_from(["ts", "seq", "boot", "readings"]), st.one_of(wrong_value, st.none())
    ).map(lambda kv: dumps(base | {kv[0]: kv[1]}))
    wrong_reading = st.tuples(st.sampled_from(["temperature_c", "ts"]), wrong_value).map(
        lambda kv: dumps(base | {"readings": [base["readings"][0] | {kv[0]: kv[1]}]})
    )
    non_finite = st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999"]).map(
        lambda token: dumps(base).replace(b'"temperature_c": 40.0', b'"temperature_c": ' + token)
    )
    versions = st.one_of(st.integers(-5, 99).filter(lambda v: v != 1), st.text(max_size=3))
    unknown_version = versions.map(lambda v: dumps(base | {"v": v}))
    huge = st.integers(MAX_PAYLOAD_BYTES + 1, 3 * MAX_PAYLOAD_BYTES).map(
        lambda size: dumps(base | {"pad": "x" * size})
    )
    deep = st.integers(17, 400).map(
        lambda depth: b'{"v": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"
    )
    bad_utf8 = st.binary(min_size=1, max_size=8).map(
        lambda junk: dumps(base).replace(b'"boot-1"', b'"\xff' + junk + b'"')
    )
    not_object = st.sampled_from([b"[]", b"42", b'"text"', b"null", b"true"])
    malformed = st.binary(max_size=64).map(lambda junk: b"{" + junk)
    mismatch = st.just(dumps(base | {"robot": "someone-else"}))
    bad_level = st.sampled_from(["UPPER", "under_score", "sp ace", "-dash", "x" * 40, "é"])
    no_topic = st.none()
    return st.one_of(
        st.tuples(
            st.just("wrong_types"), no_topic, wrong_types, st.just({R.INVALID, R.UNKNOWN_VERSION})
        ),
        st.tuples(st.just("wrong_reading"), no_topic, wrong_reading, st.just({R.INVALID})),
        st.tuples(st.just("non_finite"), no_topic, non_finite, st.just({R.NON_FINITE})),
        st.tuples(st.just("version"), no_topic, unknown_version, st.just({R.UNKNOWN_VERSION})),
        st.tuples(st.just("huge"), no_topic, huge, st.just({R.TOO_LARGE})),
        st.tuples(st.just("deep"), no_topic, deep, st.just({R.TOO_DEEP})),
        st.tuples(st.just("bad_utf8"), no_topic, bad_utf8, st.just({R.BAD_UTF8})),
        st.tuples(st.just("not_object"), no_topic, not_object, st.just({R.NOT_OBJECT})),
        st.tuples(
            st.just("malformed"),
            no_topic,
            malformed,
            st.just({R.BAD_JSON, R.NON_FINITE, R.BAD_UTF8, R.UNKNOWN_VERSION, R.TOO_DEEP}),
        ),
        st.tuples(st.just("mismatch"), no_topic, mismatch, st.just({R.ROBOT_MISMATCH})),
        st.tuples(st.just("bad_topic"), bad_level, st.just(dumps(base)), st.just({R.BAD_TOPIC})),
    )


def test_hostile_payloads_are_counted_never_stored_and_valid_traffic_flows(
    broker: BrokerHandle, topic_site: str, tmp_path: Path
) -> None:
    robot = broker.robot_ids[0]
    service = Settings(
        mqtt_topic_filter=f"factory/{topic_site}/#",  # not other tests' retained messages
        state_dir=broker.state_dir,
        db_path=tmp_path / "f.db",
        broker_url=broker.url,
        mqtt_protocol="mqtt5" if broker.impl == "mosquitto" else "mqtt311",
        mqtt_client_id=f"svc-{os.urandom(4).hex()}",
    )
    # MQTT 3.1.1: Mosquitto answers an oversize MQTT 5 publish with a PUBACK paho cannot parse.
    publisher = broker.client(robot, MQTTProtocolVersion.MQTTv311)
    good_topic = robot_topic(topic_site, robot, Channel.TELEMETRY)
    expected: Counter[str] = Counter()
    sent_valid: list[int] = []

    with TestClient(create_app(service)) as client:
        _eventually(lambda: client.get("/readyz").status_code == 200, "ready")

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=hostile(robot))
        def publish(case: tuple[str, str | None, bytes, set[R]]) -> None:
            category, bad_level, payload, allowed = case
            topic = (
                good_topic
                if bad_level is None
                else good_topic.replace("/area-1/", f"/{bad_level}/")
            )
            verdict = classify(Inbound(topic, payload, received_at=0.0))
            assert isinstance(verdict, Refused), category
            assert verdict.reason in allowed, (category, verdict.reason, verdict.detail)
            broker.publish(publisher, topic, payload)
            if not (broker.impl == "mosquitto" and len(payload) > MAX_PAYLOAD_BYTES):
                expected[verdict.reason] += 1
            seq = len(sent_valid) + 1  # valid traffic in between, which must all land
            broker.publish(publisher, good_topic, dumps(valid(robot, seq)))
            sent_valid.append(seq)

        publish()

        def counted() -> dict[str, Any] | None:
            body: dict[str, Any] = client.get("/api/rejects", params={"limit": 1000}).json()
            return body if body["total"] >= sum(expected.values()) else None

        rejects = _eventually(counted, "every hostile message counted")
        assert rejects["counts"] == dict(expected)
        assert len(rejects["recent"]) == sum(expected.values())
        assert all(len(d["payload"].encode()) <= 4 * 1024 for d in rejects["recent"])

        def stored() -> dict[str, Any] | None:
            # The last valid message follows the last hostile one: counting the rejects does
            # not mean it is stored yet; wait for it (bounded) rather than assume it.
            history: dict[str, Any] = client.get(
                f"/api/robots/{robot}/telemetry",
                params={"since": T0, "until": T0 + 20_000, "metric": "temperature_c"},
            ).json()
            return history if len(history["points"]) >= len(sent_valid) else None

        history = _eventually(stored, "every valid message stored")
        assert [p["ts"] for p in history["points"]] == [T0 + s for s in sent_valid]
        assert [r["id"] for r in client.get("/api/robots").json()] == [robot]
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
    assert len(expected) >= 6  # the draw covered most kinds of refusal


def _eventually(probe: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (result := probe()):
        if time.monotonic() > deadline:
            pytest.fail(f"within {WAIT_S} s: {what}")
        time.sleep(0.05)
    return result
