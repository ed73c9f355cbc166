"""Ground truth stays private: which messages carry it, who is streamed them, and the key that
unlocks them kept out of the access log. Pure: no broker, no server."""

from __future__ import annotations

import logging

import pytest

from api.auth import RedactApiKey
from api.inbound import Inbound
from api.private_truth import carries_truth, is_truth_topic
from api.stream import RAW, StreamEvent, StreamFilter, StreamHub

TRUTH_TOPIC = "factory/plant-1/body/line-1/weld-01/truth"
TELEMETRY_TOPIC = "factory/plant-1/body/line-1/weld-01/telemetry"
TRUTH_BODY = b'{"v":1,"components":[{"name":"gearbox","wear":0.4,"threshold":1.0,"rul_s":9}]}'


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        (TRUTH_TOPIC, TRUTH_BODY, True),
        (TRUTH_TOPIC, b"{not json", True),  # a malformed truth message is still truth
        ("factory/x/truth", b"", True),  # so is a truth topic of the wrong shape
        (TELEMETRY_TOPIC, TRUTH_BODY, True),  # truth's content on another channel
        (TELEMETRY_TOPIC, TRUTH_BODY[:60], True),  # ... even cut short
        (TELEMETRY_TOPIC, b'{"v":1,"readings":[{"temperature_c":40}]}', False),
        (TELEMETRY_TOPIC, b'{"fault":"accelerated_wear"}', False),  # a word, not the key
        ("factory/plant-1/body/line-1/truthy/state", b"{}", False),
    ],
)
def test_what_carries_ground_truth(topic: str, payload: bytes, expected: bool) -> None:
    assert carries_truth(topic, payload) is expected
    assert carries_truth(topic, payload.decode(errors="replace")) is expected


def test_a_truth_topic_is_one_whose_level_names_the_channel() -> None:
    assert is_truth_topic(TRUTH_TOPIC)
    assert not is_truth_topic("factory/truthful/a/b/c/state")


def raw_event(topic: str, payload: bytes) -> StreamEvent:
    return StreamEvent.raw(Inbound(topic=topic, payload=payload, received_at=0.0), None)


def test_the_hub_streams_truth_only_to_clients_holding_the_key() -> None:
    hub = StreamHub(max_queue=10)
    keyless = hub.subscribe(StreamFilter.of(None, None, [RAW]))
    keyed = hub.subscribe(StreamFilter.of(None, None, [RAW], truth=True))
    secret, plain = raw_event(TRUTH_TOPIC, TRUTH_BODY), raw_event(TELEMETRY_TOPIC, b"{}")
    assert secret.truth
    assert not plain.truth
    hub.publish(secret)
    hub.publish(plain)
    assert [keyless.queue.get_nowait()] == [plain]
    assert keyless.queue.empty()
    assert [keyed.queue.get_nowait(), keyed.queue.get_nowait()] == [secret, plain]


def test_the_stream_key_is_kept_out_of_the_access_log() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/stream?channel=raw&api_key=s3cret&robot=a", "1.1", 200),
        None,
    )
    assert RedactApiKey().filter(record)
    line = record.getMessage()
    assert "s3cret" not in line
    assert "channel=raw&api_key=…&robot=a" in line
