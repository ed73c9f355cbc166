"""The Topic value type: building, parsing, name validation and wildcard matching (no network)."""

import pytest

from contract.topics import (
    Channel,
    Topic,
    TopicError,
    matches,
    topic_filter,
    validate_filter,
    validate_name,
)


def test_build_and_parse_round_trip() -> None:
    topic = Topic("plant-1", "body-shop", "line-1", "weld-01", Channel.TELEMETRY)
    text = str(topic)
    assert text == "factory/plant-1/body-shop/line-1/weld-01/telemetry"
    assert Topic.parse(text) == topic
    assert topic.with_channel(Channel.CMD).channel is Channel.CMD
    assert topic.prefix == "factory/plant-1/body-shop/line-1/weld-01"


def test_channel_given_as_text_becomes_a_channel() -> None:
    topic = Topic("s", "a", "l", "r", "state")  # type: ignore[arg-type]
    assert topic.channel is Channel.STATE


@pytest.mark.parametrize(
    "bad",
    [
        "factory/s/a/l/r",  # too short
        "factory/s/a/l/r/telemetry/extra",
        "plant/s/a/l/r/telemetry",  # wrong root
        "factory/s/a/l/r/unknown",
        "factory/S/a/l/r/state",  # uppercase
        "factory/s p/a/l/r/state",  # space
        "factory/s/+/l/r/state",  # wildcard in a concrete topic
        "factory/s/a/#/r/state",
        "factory/s/a/l/-r/state",  # leading dash
        "factory//a/l/r/state",  # empty level
        "factory/$s/a/l/r/state",
    ],
)
def test_parse_refuses_bad_topics(bad: str) -> None:
    with pytest.raises(TopicError):
        Topic.parse(bad)


def test_name_rules() -> None:
    assert validate_name("weld-01") == "weld-01"
    for bad in ["", "a" * 33, "Weld", "weld_01", "weld/01", "-x", "x-", "ü"]:
        with pytest.raises(TopicError):
            validate_name(bad)


def test_filters_are_built_with_wildcards() -> None:
    assert topic_filter() == "factory/+/+/+/+/+"
    assert topic_filter(line="line-1", channel="telemetry") == "factory/+/+/line-1/+/telemetry"
    assert topic_filter(robot="weld-01", channel="#") == "factory/+/+/+/weld-01/#"
    with pytest.raises(TopicError):
        topic_filter(robot="Bad")
    with pytest.raises(ValueError, match="nope"):
        topic_filter(channel="nope")


@pytest.mark.parametrize(
    ("pattern", "topic", "expected"),
    [
        ("factory/#", "factory/s/a/l/r/state", True),
        ("factory/#", "factory", True),  # '#' also matches the parent level
        ("#", "factory/s/a/l/r/state", True),
        ("factory/+/+/+/+/cmd", "factory/s/a/l/r/cmd", True),
        ("factory/+/+/+/+/cmd", "factory/s/a/l/r/state", False),
        ("factory/+/+/+/r/#", "factory/s/a/l/r/telemetry", True),
        ("factory/+/+/+/r/#", "factory/s/a/l/r2/telemetry", False),
        ("factory/+", "factory/s/a", False),
        ("factory/s/a/l/r/state", "factory/s/a/l/r/state", True),
        ("#", "$SYS/broker/uptime", False),
        ("+/broker/uptime", "$SYS/broker/uptime", False),
        ("$SYS/#", "$SYS/broker/uptime", True),
    ],
)
def test_matches(pattern: str, topic: str, expected: bool) -> None:
    assert matches(pattern, topic) is expected


def test_validate_filter() -> None:
    assert validate_filter("factory/+/x/#") == "factory/+/x/#"
    for bad in ["", "factory/#/x", "factory/a+", "factory/x#"]:
        with pytest.raises(TopicError):
            validate_filter(bad)
