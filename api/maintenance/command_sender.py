"""Commands from the service to robots: contract payloads on each robot's ``cmd`` topic.

Every command carries the service's envelope — its boot id and its own ``seq`` (counting from 1
per boot) — and goes out at QoS 1 through the service's MQTT client, which only queues it (the
client's network thread writes it; nothing here blocks). A robot that is offline gets it when it
comes back: robots keep persistent sessions, so the broker holds their QoS 1 commands; the robot
rejects one that has expired by then and runs a command id at most once.

Where a robot is: the topic of its newest message (site, area and line come from the wire), else
the scenario's placement of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from prometheus_client import Counter

from contract.codec import encode
from contract.payloads import CancelMaintenance, InjectFault, ScheduleMaintenance
from contract.topics import Channel, Topic
from engine import CommandSpec, command_payload

log = logging.getLogger(__name__)

Command = ScheduleMaintenance | CancelMaintenance | InjectFault
#: Queue a message for the broker: ``(topic, payload) -> accepted``; never blocks.
Publish = Callable[[str, bytes], bool]


class CommandSender:
    def __init__(
        self,
        boot: str,
        publish: Publish,
        sent: Counter,
        placements: Mapping[str, Topic] | None = None,
    ) -> None:
        self.boot = boot
        self._publish = publish
        self._sent = sent
        self._seq = 0
        #: Each robot's newest topic (any channel), updated by the maintenance loop.
        self.topics: dict[str, Topic] = dict(placements or {})

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def topic_of(self, robot: str) -> Topic | None:
        topic = self.topics.get(robot)
        return None if topic is None else topic.with_channel(Channel.CMD)

    def send(self, command: Command) -> bool:
        """Publish ``command`` on its robot's cmd topic; False if that cannot be done."""
        topic = self.topic_of(command.robot)
        if topic is None:
            log.warning(
                "no topic known for robot %s: command %s not sent", command.robot, command.id
            )
            return False
        if not self._publish(str(topic), encode(command)):
            log.warning("the MQTT client refused command %s for %s", command.id, command.robot)
            return False
        self._sent.labels(command.type).inc()
        return True

    def send_spec(self, spec: CommandSpec, now_ts: float) -> bool:
        """Send an engine command issued at simulated ``now_ts``; an expired one is not sent."""
        if spec.expires_ts < now_ts:
            log.info("command %s expired at %.0f before it could be sent", spec.id, spec.expires_ts)
            return False
        try:
            payload = command_payload(spec, ts=now_ts, boot=self.boot, seq=self.next_seq())
        except ValueError:
            # A command the contract cannot carry costs that command, never the dispatch of
            # the others (the engine keeps its times in bounds; this is the last guard).
            log.exception("command %s cannot be sent; it is dropped", spec.id)
            return False
        return self.send(payload)
