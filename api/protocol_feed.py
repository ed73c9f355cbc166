"""The protocol inspector's feed: Mosquitto's log, followed, turned into ``mqtt`` stream events.

:class:`ProtocolFeed` reads the new lines of the broker's log (``FACTORY_BROKER_LOG``, written
with ``log_type all``; see :mod:`api.protocol_log` for why the log) every ``poll_s`` and keeps
what one line alone cannot say:

- the will each client registered at CONNECT, so a connection lost uncleanly says which will
  the broker just published (``will_topic``), and a clean DISCONNECT says none was;
- which clients resumed a session (CONNACK with *session present*): the PUBLISHes the broker
  sends such a client before the client publishes anything itself are the messages that waited
  for it while it was away, marked ``queued``.

It follows the log whether or not anyone watches (the will of a client that connected before a
viewer opened the page must still be known), but builds stream events only while a client
asked for the ``mqtt`` channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from api.protocol_log import LogTail, WillNote, parse_line, will_note
from api.stream import MQTT, StreamEvent, StreamHub

log = logging.getLogger(__name__)

POLL_S = 0.2
_STAMP = re.compile(r"^(\d+|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d): ")
ROBOT_CLIENT_PREFIX = "robot-"


def _wall_ts(line: str) -> float:
    """The broker's own time of a line (Unix seconds or ISO, UTC), else now."""
    match = _STAMP.match(line)
    if match is None:
        return time.time()
    stamp = match[1]
    if stamp.isdigit():
        return float(stamp)
    with contextlib.suppress(ValueError):
        return datetime.fromisoformat(stamp).timestamp()
    return time.time()


class ProtocolFeed:
    """Follows the broker log; see the module docstring."""

    def __init__(self, path: Path, hub: StreamHub, poll_s: float = POLL_S) -> None:
        self.path = path
        self._hub = hub
        self._poll_s = poll_s
        self._tail = LogTail(path)
        self._pending_will: WillNote | None = None
        self._last_connect: str | None = None
        self._wills: dict[str, str] = {}
        self._draining: set[str] = set()
        self.events_seen = 0

    def events(self, lines: Iterable[str]) -> list[dict[str, Any]]:
        """Parse lines into inspector events, keeping wills and resumed sessions in mind."""
        out: list[dict[str, Any]] = []
        for line in lines:
            note = will_note(line)
            if note is not None:
                self._pending_will = note
                continue
            event = parse_line(line, self._pending_will)
            self._pending_will = None
            if event is None:
                continue
            event["ts"] = _wall_ts(line)
            self._remember(event)
            out.append(event)
        self.events_seen += len(out)
        return out

    def _remember(self, event: dict[str, Any]) -> None:
        kind = event["kind"]
        client = str(event.get("client") or "")
        if kind == "connect":
            self._last_connect = client
            self._wills.pop(client, None)
            self._draining.discard(client)
        elif kind == "will" and self._last_connect is not None:
            event["client"] = self._last_connect
            self._wills[self._last_connect] = event["topic"]
        elif kind == "connack" and event["session_present"]:
            self._draining.add(client)
        elif kind == "publish":
            if event["direction"] == "out":
                event["queued"] = client in self._draining
            else:
                self._draining.discard(client)
        elif kind == "disconnect":
            self._wills.pop(client, None)
            self._draining.discard(client)
            event["will_topic"] = None
        elif kind == "lost":
            event["will_topic"] = self._wills.pop(client, None)
            self._draining.discard(client)

    def stream_event(self, event: dict[str, Any]) -> StreamEvent:
        client = str(event.get("client") or "")
        robot = client.removeprefix(ROBOT_CLIENT_PREFIX) if client.startswith("robot-") else ""
        return StreamEvent(MQTT, robot, "", orjson.dumps(event).decode())

    async def run(self) -> None:
        """Follow the log until cancelled; a read error is logged and retried."""
        while True:
            try:
                lines = await asyncio.to_thread(self._tail.read)
            except OSError as exc:
                log.warning("cannot read the broker log %s: %s", self.path, exc)
                lines = []
            events = self.events(lines)
            if events and self._hub.wants_mqtt:
                for event in events:
                    self._hub.publish(self.stream_event(event))
            await asyncio.sleep(self._poll_s)
