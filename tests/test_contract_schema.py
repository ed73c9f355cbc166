"""The checked-in contract schema is the one generated from the models."""

from pathlib import Path

from contract.asyncapi import schema_document
from contract.cli import render_schema
from contract.topics import Channel

DOCS = Path(__file__).resolve().parents[1] / "docs" / "contract.schema.json"


def test_checked_in_schema_is_current() -> None:
    assert DOCS.read_bytes() == render_schema(), (
        "docs/contract.schema.json is stale; regenerate it with "
        "`factory contract --schema > docs/contract.schema.json`"
    )


def test_schema_describes_every_channel_with_its_mqtt_binding() -> None:
    document = schema_document()
    for channel in Channel:
        message = document["components"]["messages"][channel.value]
        assert message["bindings"]["mqtt"]["qos"] == 1
        assert message["payload"].get("type") == "object" or "oneOf" in message["payload"]
    assert document["components"]["messages"]["state"]["bindings"]["mqtt"]["retain"] is True
    assert document["components"]["messages"]["telemetry"]["bindings"]["mqtt"]["retain"] is False
    assert document["operations"]["cmd"]["action"] == "receive"
