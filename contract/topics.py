"""MQTT topic names of the factory, as a small pure value type.

Every topic is ``factory/{site}/{area}/{line}/{robot}/{channel}`` (ISA-95 / Unified Namespace
style). Names are lowercase ``[a-z0-9-]`` so they never contain the MQTT specials ``+ # / $`` nor
anything a shell or a URL would need to quote. Nothing here touches the network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

ROOT = "factory"
NAME_MAX_LEN = 32
_NAME_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_LEVELS = ("site", "area", "line", "robot", "channel")


class Channel(StrEnum):
    """The six channels of a robot; see ``docs/contract.md`` for direction, QoS and retain."""

    BIRTH = "birth"
    STATE = "state"
    TELEMETRY = "telemetry"
    EVENT = "event"
    CMD = "cmd"
    TRUTH = "truth"


#: Channels a robot publishes on (everything except ``cmd``).
ROBOT_CHANNELS: tuple[Channel, ...] = tuple(c for c in Channel if c is not Channel.CMD)
#: Channels whose last message the broker keeps for late subscribers.
RETAINED_CHANNELS: frozenset[Channel] = frozenset({Channel.BIRTH, Channel.STATE})
#: Default QoS per channel. Telemetry's is configurable; everything else needs at-least-once.
DEFAULT_QOS: dict[Channel, int] = dict.fromkeys(Channel, 1)


class PlacedRobot(Protocol):
    """Where a robot stands in the topic tree (the contract imports no plant model)."""

    @property
    def id(self) -> str: ...
    @property
    def site(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def line(self) -> str: ...


class TopicError(ValueError):
    """A topic or a name within it does not follow the contract."""


def validate_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it is a valid topic level name, else raise :class:`TopicError`."""
    if not isinstance(name, str) or not name:
        raise TopicError(f"{what} must be a non-empty string")
    if len(name) > NAME_MAX_LEN:
        raise TopicError(f"{what} {name!r} is longer than {NAME_MAX_LEN} characters")
    if not _NAME_RE.fullmatch(name):
        raise TopicError(
            f"{what} {name!r} may only hold a-z, 0-9 and inner '-' (no spaces, '+', '#', '/', '$')"
        )
    return name


@dataclass(frozen=True, slots=True)
class Topic:
    """One concrete topic: ``factory/{site}/{area}/{line}/{robot}/{channel}``."""

    site: str
    area: str
    line: str
    robot: str
    channel: Channel

    def __post_init__(self) -> None:
        for level in _LEVELS[:-1]:
            validate_name(getattr(self, level), level)
        try:
            object.__setattr__(self, "channel", Channel(self.channel))
        except ValueError:
            raise TopicError(f"unknown channel {self.channel!r}") from None

    def __str__(self) -> str:
        return f"{ROOT}/{self.site}/{self.area}/{self.line}/{self.robot}/{self.channel}"

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Parse a concrete topic string; raise :class:`TopicError` saying what is wrong."""
        parts = topic.split("/")
        if len(parts) != 6 or parts[0] != ROOT:
            raise TopicError(
                f"topic {topic[:120]!r} is not {ROOT}/<site>/<area>/<line>/<robot>/<channel>"
            )
        return cls(*parts[1:])  # type: ignore[arg-type]

    @classmethod
    def for_robot(cls, robot: PlacedRobot, channel: Channel) -> Topic:
        """The topic of a robot placed in the plant (anything with ``site``, ``area``, ``line``
        and ``id``, e.g. :class:`plant.Robot`) on ``channel``."""
        return cls(robot.site, robot.area, robot.line, robot.id, channel)

    def with_channel(self, channel: Channel) -> Topic:
        """The same robot's topic on another channel."""
        return Topic(self.site, self.area, self.line, self.robot, channel)

    @property
    def prefix(self) -> str:
        """The robot's topic prefix, without the channel."""
        return f"{ROOT}/{self.site}/{self.area}/{self.line}/{self.robot}"


def topic_filter(
    site: str = "+",
    area: str = "+",
    line: str = "+",
    robot: str = "+",
    channel: str = "+",
    *,
    root: str = ROOT,
) -> str:
    """Build a subscription filter; every level not given is the single-level wildcard ``+``."""
    levels = {"site": site, "area": area, "line": line, "robot": robot}
    for what, name in levels.items():
        if name != "+":
            validate_name(name, what)
    if channel not in ("+", "#"):
        Channel(channel)
    return "/".join((root, site, area, line, robot, channel))


def matches(topic_filter: str, topic: str) -> bool:
    """MQTT filter matching (``+`` one level, trailing ``#`` any number, including none).

    Topics starting with ``$`` are not matched by a leading wildcard, as in MQTT 3.1.1 §4.7.2.
    """
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_parts = topic_filter.split("/")
    t_parts = topic.split("/")
    for i, f in enumerate(f_parts):
        if f == "#":
            return i == len(f_parts) - 1
        if i >= len(t_parts):
            return False
        if f != "+" and f != t_parts[i]:
            return False
    return len(f_parts) == len(t_parts)


def validate_filter(topic_filter: str) -> str:
    """Return the filter if it is a syntactically valid MQTT subscription filter."""
    if not topic_filter or len(topic_filter.encode()) > 65535:
        raise TopicError("a topic filter must be 1..65535 bytes")
    parts = topic_filter.split("/")
    for i, part in enumerate(parts):
        if "#" in part and (part != "#" or i != len(parts) - 1):
            raise TopicError(f"'#' must be a whole last level in {topic_filter!r}")
        if "+" in part and part != "+":
            raise TopicError(f"'+' must be a whole level in {topic_filter!r}")
    return topic_filter


def site_topic(site: str, level: str) -> str:
    """``factory/{site}/{level}``: a topic of the site itself, not of a robot (the pace, the
    service's ingest progress)."""
    return f"{ROOT}/{validate_name(site, 'site')}/{level}"


def is_site_topic(topic: str, level: str) -> bool:
    """True for ``factory/{site}/{level}`` with a valid site name."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != ROOT or parts[2] != level:
        return False
    try:
        validate_name(parts[1], "site")
    except TopicError:
        return False
    return True
