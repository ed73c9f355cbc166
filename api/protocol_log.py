"""The protocol inspector's source: Mosquitto's own log, read line by line into MQTT events.

Why the log: a subscriber sees messages, never connections, and never who sent a message, its
DUP flag as sent, or whether a session was resumed. The broker knows all of it, and Mosquitto 2
writes it to its log with ``log_type all``: every CONNECT (client id, protocol, clean session,
keepalive, username), the will it carries, the CONNACK (whose first number is *session present*),
every PUBLISH received (sender, DUP, QoS, retain, message id, topic, size) and sent (to whom),
and how each connection ended — ``disconnected`` after a DISCONNECT packet (clean: no will), or
``closed its connection`` / ``exceeded timeout`` / ``socket error`` (unclean: the broker
publishes the will). ``$SYS/broker/log/#`` (``log_dest topic``) carries the same lines, but
every line delivered to a subscriber is itself logged and published again, a loop; a file the
service tails has none. amqtt writes no such log; with it the inspector shows messages only.

:func:`parse_line` is pure; :class:`LogTail` follows a growing file (and a rotated or truncated
one) without blocking the event loop.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Optional ``1700000000:`` or ``2026-01-05T06:00:00:`` prefix Mosquitto puts before a message.
_PREFIX = re.compile(r"^(?:\d+|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d): ")
_CONNECT = re.compile(
    r"^New client connected from (?P<peer>\S+) as (?P<client>\S+) "
    r"\(p(?P<proto>\d+), c(?P<clean>[01]), k(?P<keepalive>\d+)(?:, u'(?P<user>[^']*)')?\)\.$"
)
_CONNACK = re.compile(r"^Sending CONNACK to (?P<client>\S+) \((?P<present>[01]), (?P<rc>\d+)\)$")
_WILL = re.compile(
    r"^Will message specified \((?P<size>\d+) bytes\) \(r(?P<r>[01]), q(?P<q>\d)\)\.$"
)
_PUBLISH = re.compile(
    r"^(?P<dir>Received PUBLISH from|Sending PUBLISH to) (?P<client>\S+) "
    r"\(d(?P<dup>[01]), q(?P<qos>\d), r(?P<retain>[01]), m(?P<mid>\d+), "
    r"'(?P<topic>.*)', \.\.\. \((?P<size>\d+) bytes\)\)$"
)
_CLEAN = re.compile(r"^Client (?P<client>\S+) disconnected\.$")
_UNCLEAN = (
    (re.compile(r"^Client (?P<client>\S+) closed its connection\.$"), "connection closed"),
    (re.compile(r"^Client (?P<client>\S+) has exceeded timeout, disconnecting\.$"), "keepalive"),
    (re.compile(r"^Socket error on client (?P<client>\S+), disconnecting\.$"), "socket error"),
)
_TAKEN_OVER = re.compile(r"^Client (?P<client>\S+) already connected, closing old connection\.$")
_NOT_AUTHORISED = re.compile(r"^Denied PUBLISH from (?P<client>\S+) \((?P<rest>.*)\)$")


@dataclass(slots=True)
class WillNote:
    """The will the last CONNECT carried: its topic is on the next line."""

    size: int
    retain: bool
    qos: int


def parse_line(line: str, pending_will: WillNote | None = None) -> dict[str, Any] | None:
    """One log line → one inspector event (a dict with ``kind``), or ``None`` for other lines.

    Kinds: ``connect`` (client, user, clean_session, keepalive, protocol), ``connack``
    (session_present), ``will`` (topic; needs the size line before it as ``pending_will``),
    ``publish`` (direction in/out, client, dup, qos, retain, mid, topic, size), ``disconnect``
    (clean: True, no will) and ``lost`` (clean: False, reason; the broker publishes the will).
    """
    text = _PREFIX.sub("", line.rstrip("\n"), count=1)
    if pending_will is not None and text.startswith("\t"):
        return {
            "kind": "will",
            "topic": text.strip(),
            "size": pending_will.size,
            "retain": pending_will.retain,
            "qos": pending_will.qos,
        }
    if match := _PUBLISH.match(text):
        return {
            "kind": "publish",
            "direction": "in" if match["dir"].startswith("Received") else "out",
            "client": match["client"],
            "dup": match["dup"] == "1",
            "qos": int(match["qos"]),
            "retain": match["retain"] == "1",
            "mid": int(match["mid"]),
            "topic": match["topic"],
            "size": int(match["size"]),
        }
    if match := _CONNECT.match(text):
        return {
            "kind": "connect",
            "client": match["client"],
            "user": match["user"],
            "peer": match["peer"],
            # Mosquitto's own numbering: 1 = MQTT 3.1, 2 = 3.1.1, 5 = 5.
            "protocol": {"1": "3.1", "2": "3.1.1", "5": "5"}.get(match["proto"], match["proto"]),
            "clean_session": match["clean"] == "1",
            "keepalive_s": int(match["keepalive"]),
        }
    if match := _CONNACK.match(text):
        return {
            "kind": "connack",
            "client": match["client"],
            "session_present": match["present"] == "1",
            "return_code": int(match["rc"]),
        }
    if match := _CLEAN.match(text):
        return {"kind": "disconnect", "client": match["client"], "clean": True}
    for pattern, reason in _UNCLEAN:
        if match := pattern.match(text):
            return {"kind": "lost", "client": match["client"], "clean": False, "reason": reason}
    if match := _TAKEN_OVER.match(text):
        return {"kind": "lost", "client": match["client"], "clean": False, "reason": "taken over"}
    if match := _NOT_AUTHORISED.match(text):
        return {"kind": "denied", "client": match["client"], "detail": match["rest"]}
    return None


def will_note(line: str) -> WillNote | None:
    """The size line of a will (its topic follows on the next line)."""
    match = _WILL.match(_PREFIX.sub("", line.rstrip("\n"), count=1))
    if match is None:
        return None
    return WillNote(int(match["size"]), match["r"] == "1", int(match["q"]))


class LogTail:
    """Follows a log file from its current end; :meth:`read` returns the new complete lines."""

    def __init__(self, path: Path, *, from_start: bool = False) -> None:
        self.path = path
        self._offset = 0 if from_start else self._size()
        self._partial = b""
        self._inode: int | None = self._stat_inode()

    def _size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def _stat_inode(self) -> int | None:
        try:
            return os.stat(self.path).st_ino
        except OSError:
            return None

    def read(self, max_bytes: int = 1 << 20) -> list[str]:
        inode = self._stat_inode()
        if inode is None:
            return []
        if inode != self._inode or self._size() < self._offset:  # rotated or truncated
            self._inode, self._offset, self._partial = inode, 0, b""
        with self.path.open("rb") as log:
            log.seek(self._offset)
            data = log.read(max_bytes)
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        return [line.decode("utf-8", errors="replace") for line in lines]
