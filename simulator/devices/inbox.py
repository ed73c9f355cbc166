"""What a robot hears: commands on its ``cmd`` topic and, if it follows one, its site's pace.

Each message is decoded at this boundary; a bad one is logged (truncated by the codec's error)
and counted, and the robot goes on. Runs in the network thread: the handlers it calls only queue
(``on_command``) or set a flag (``on_pace``), they never block.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from contract.codec import Rejected, decode_message
from contract.pace import Pace, decode_pace, pace_topic
from contract.payloads import CancelMaintenance, InjectFault, ScheduleMaintenance
from contract.topics import Channel, Topic

log = logging.getLogger(__name__)

Command = ScheduleMaintenance | CancelMaintenance | InjectFault


@dataclass(slots=True)
class AgentStats:
    """A robot's message counts (the live table and the benches read them)."""

    published: int = 0
    buffered: int = 0
    dropped: int = 0
    replayed: int = 0
    connects: int = 0
    commands: int = 0
    bad_commands: int = 0


class Inbox:
    """The paho ``on_message`` of one robot; :attr:`topics` are what it subscribes to."""

    def __init__(
        self,
        topic: Topic,
        stats: AgentStats,
        on_command: Callable[[Command], None],
        on_pace: Callable[[Pace], None] | None,
    ) -> None:
        self.robot = topic.robot
        self._cmd_topic = str(topic.with_channel(Channel.CMD))
        self._pace_topic = pace_topic(topic.site)
        self._stats = stats
        self._on_command = on_command
        self._on_pace = on_pace
        self.topics = [self._cmd_topic] + ([self._pace_topic] if on_pace is not None else [])

    def on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._pace_topic and self._on_pace is not None:
            try:
                pace = decode_pace(bytes(message.payload))
            except Rejected as exc:
                log.warning("%s: refused a pace: %s", self.robot, exc)
                return
            self._on_pace(pace)
            return
        if message.topic != self._cmd_topic:
            return  # amqtt also pushes retained messages of other clients' subscriptions
        try:
            _, command = decode_message(message.topic, bytes(message.payload))
        except Rejected as exc:
            self._stats.bad_commands += 1
            log.warning("%s: refused a command: %s", self.robot, exc)
            return
        self._stats.commands += 1
        self._on_command(command)  # type: ignore[arg-type]
