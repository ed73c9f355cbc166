"""One robot as an MQTT device: the adapter between the pure model and the broker.

A :class:`DeviceAgent` owns one paho client with the robot's own credentials and client id. It
turns the model's records into contract payloads (adding ``v/robot/ts/boot/seq``) and publishes
them; it turns ``cmd`` messages into commands for the model. On every (re)connect it re-sends the
retained birth and state and re-subscribes; its last will is the retained OFFLINE state
(``seq = 0``, see :mod:`contract.payloads`); before a deliberate disconnect it publishes OFFLINE
itself, because a broker does not send the will then.

Store and forward: while disconnected, telemetry, events and truth go into a spool
(:mod:`.spool`: bounded in memory, then on disk up to a stated bound past which the oldest are
dropped, counted) and are sent after the reconnect, telemetry with ``historical = true``.
While connected, paho's queue per client is bounded (:data:`MAX_QUEUED_MESSAGES`, of which
:data:`MAX_INFLIGHT_MESSAGES` in flight); when it is full the simulation waits for the broker's
acknowledgements to make room (back-pressure), and a replay after a reconnect is handed over
the same way, in order. Each message takes its ``seq`` when it
is made, so a reader sees a gapless sequence unless the spool's disk bound was reached. State
changes made while disconnected are not buffered: the current state is re-published on
reconnect. QoS 1 messages in flight when the link drops are re-sent by paho itself (with the DUP
flag); the service's ``(robot, boot, seq)`` dedupe absorbs any duplicate. A link that dies
silently is only noticed by the keepalive; what is published until then waits in paho's queue
(then the spool) and goes out after the reconnect unflagged (docs/contract.md).

Pace: an agent given ``on_pace`` also reads its site's retained ``factory/{site}/pace`` and hands
every valid pace to it (the runner pauses or re-paces the simulation, :mod:`.pace`).

Threads: :meth:`send` is called from the simulation thread; paho callbacks run in the process's
one network thread (:mod:`.net_loop`), which every robot of the process shares, so they never
block; one lock orders publishing, the buffer and ``seq``. Commands are handed to the simulation
through ``on_command`` (the runner queues them into the SimPy thread). An agent made without a
``network`` gets a loop of its own (one thread; a fleet shares one, see :mod:`.run`).

Batching and heartbeat: with ``telemetry_batch > 1`` readings are collected and sent as one
telemetry message of that many (an event, a state change, a heartbeat and :meth:`stop` send a
partial batch first, so readings arrive before what they led to). :meth:`heartbeat` re-publishes
the retained state, same ``since`` and a fresh ``ts``, when the robot has sent nothing for a
while: an idle robot still says it is alive, and a reader's simulated clock keeps moving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from contract.pace import Pace
from contract.topics import Channel, Topic
from simulator.devices.inbox import AgentStats, Command, Inbox
from simulator.devices.net_loop import NetworkLoop
from simulator.devices.spool import DEFAULT_DISK_BYTES, DEFAULT_MEMORY_ITEMS, Spool
from simulator.devices.wire import (
    RETAINED,
    await_ack,
    encode_fields,
    offline_will,
    robot_client,
)
from simulator.model.records import BirthRecord, NetworkDrop, Record, Sample, StateChange

log = logging.getLogger(__name__)

#: Messages waiting to be sent that are kept in memory; more go to disk (:mod:`.spool`).
DEFAULT_BUFFER_MESSAGES = DEFAULT_MEMORY_ITEMS
#: paho's own queue per client (in flight and waiting), and how many of those in flight.
MAX_QUEUED_MESSAGES, MAX_INFLIGHT_MESSAGES = 100, 20
#: While paho's queue is full, the simulation re-checks at least this often (wall seconds).
ROOM_WAIT_S = 0.05
KEEPALIVE_S = 15
#: How long a clean stop waits for the broker to acknowledge the OFFLINE state, then for the
#: DISCONNECT to be written.
STOP_PUBLISH_TIMEOUT_S = 5.0
STOP_CLOSE_TIMEOUT_S = 2.0


@dataclass(slots=True)
class _Pending:
    channel: Channel
    ts: float
    seq: int
    fields: dict[str, Any]


def _to_row(pending: _Pending) -> list[Any]:
    return [pending.channel.value, pending.ts, pending.seq, pending.fields]


def _from_row(row: list[Any]) -> _Pending:
    return _Pending(Channel(row[0]), row[1], row[2], row[3])


class DeviceAgent:
    """The MQTT side of one robot; see the module docstring."""

    def __init__(
        self,
        topic: Topic,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        boot: str,
        birth: Callable[[], BirthRecord],
        on_command: Callable[[Command], None],
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
        telemetry_qos: int = 1,
        buffer_messages: int = DEFAULT_BUFFER_MESSAGES,
        spool_dir: Path | None = None,
        spool_disk_bytes: int = DEFAULT_DISK_BYTES,
        wall_s_per_sim_s: float = 0.0,
        telemetry_batch: int = 1,
        on_pace: Callable[[Pace], None] | None = None,
        tls: bool = False,
        cafile: str | None = None,
        network: NetworkLoop | None = None,
    ) -> None:
        self.robot = topic.robot
        self._topics = {channel: str(topic.with_channel(channel)) for channel in Channel}
        self.boot = boot
        self._birth = birth
        self._qos = dict.fromkeys(Channel, 1) | {Channel.TELEMETRY: telemetry_qos}
        #: Wall seconds per simulated second (how long a simulated network drop lasts).
        self.wall_s_per_sim_s = wall_s_per_sim_s
        self._lock = threading.Lock()
        self._room = threading.Event()  # set by every acknowledgement (see _wait_for_room)
        self._seq = 0
        self._connected = False
        self._closing = False
        self._state: StateChange | None = None
        self._last_ts = 0.0  # newest simulated time seen
        self._made_ts = 0.0  # simulated time of the newest message made (published or buffered)
        self._batch_size = telemetry_batch
        self._batch: list[dict[str, float]] = []
        self._buffer: Spool[_Pending] = Spool(
            _to_row,
            _from_row,
            directory=spool_dir,
            memory_items=buffer_messages,
            disk_bytes=spool_disk_bytes,
        )
        self.stats = AgentStats()
        self._inbox = Inbox(topic, self.stats, on_command, on_pace)
        #: Why the broker refused the last CONNECT (e.g. "Not authorized"); None once accepted.
        self.refused: str | None = None
        self._client = robot_client(self.robot, username, password, protocol, tls, cafile)
        self._client.max_inflight_messages_set(MAX_INFLIGHT_MESSAGES)
        self._client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
        self._client.on_publish = self._on_published
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._inbox.on_message
        self._own_network = network is None
        self._network = network or NetworkLoop()
        self._link = self._network.link(
            self._client, host, port, keepalive_s=KEEPALIVE_S, name=self.robot
        )

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying with back-off until the broker answers)."""
        self._set_will()
        self._link.start()

    def stop(self) -> None:
        """Publish OFFLINE (retained) ourselves, then disconnect cleanly (one robot; a fleet
        stops all at once with :func:`simulator.devices.fleet_links.stop_all`)."""
        await_ack(self.begin_stop(), STOP_PUBLISH_TIMEOUT_S)
        self.disconnect()
        self.join(STOP_CLOSE_TIMEOUT_S)

    def begin_stop(self) -> mqtt.MQTTMessageInfo | None:
        """Stop making messages and publish OFFLINE if connected; the publish to wait for
        (:func:`~simulator.devices.wire.await_ack`)."""
        with self._lock:
            self._closing = True  # from here _make never waits for room
            self._flush_batch()
            if self._connected:
                # Everything that waits goes out before OFFLINE. paho's setter refuses while
                # connected ("not tested"); its publish only reads the bound, so lift it directly.
                self._client._max_queued_messages = 0
                self._send_buffered()
            elif self._buffer:
                self.stats.dropped += len(self._buffer)
                log.warning(
                    "%s: stopped offline; %d buffered messages dropped",
                    self.robot,
                    len(self._buffer),
                )
            self._buffer.close()
            if self._connected:
                info = self._publish_now(
                    Channel.STATE,
                    self._last_ts,
                    self._next_seq(),
                    {"state": "OFFLINE", "since": self._last_ts, "reason": "shut down"},
                )
                self._connected = False
            else:
                info = None
        return info

    def disconnect(self) -> None:
        """Disconnect cleanly and never reconnect (a reconnect wait or a hold ends at once)."""
        self._link.close()

    def join(self, timeout_s: float) -> bool:
        """Wait (bounded) until the connection is closed; True if it is. An agent with a
        network loop of its own stops it then (a connection still open is cut)."""
        closed = self._link.wait_closed(timeout_s)
        if self._own_network:
            self._network.stop()
        return closed

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def link_error(self) -> str | None:
        """Why the last connect attempt failed below MQTT (e.g. "Connection refused",
        "timed out"); None once one opened a connection."""
        return self._link.last_error

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the newest message made (published or buffered)."""
        return self._seq

    @property
    def made_ts(self) -> float:
        """The simulated time of the newest message made (published or buffered)."""
        return self._made_ts

    # --- from the simulation thread -------------------------------------------------------

    def send(self, record: Record) -> None:
        """Publish a model record now, or keep it for after the reconnect."""
        if isinstance(record, NetworkDrop):
            self.drop_connection(record.duration_s * self.wall_s_per_sim_s)
            return
        if isinstance(record, BirthRecord):
            return  # published on every connect from the model's current birth
        channel = record.CHANNEL
        assert channel is not None
        with self._lock:
            if self._closing:
                return  # OFFLINE was this robot's last message: a stopped robot makes nothing
            self._last_ts = max(self._last_ts, record.ts)
            if isinstance(record, Sample) and self._batch_size > 1:
                self._batch.append(record.reading())
                if len(self._batch) >= self._batch_size:
                    self._flush_batch()
                return
            if channel is not Channel.TRUTH:
                self._flush_batch()  # readings go out before the event or state they led to
            if isinstance(record, StateChange):
                self._state = record
                if not self._connected:
                    return  # re-published on reconnect
            self._make(channel, record.ts, record.fields())

    def heartbeat(self, now_ts: float, quiet_s: float) -> None:
        """Re-publish the current state stamped ``now_ts`` (a partial batch of readings, if one
        is waiting) when nothing was sent for ``quiet_s`` simulated seconds."""
        with self._lock:
            if not self._connected or self._state is None or now_ts - self._made_ts < quiet_s:
                return
            self._last_ts = max(self._last_ts, now_ts)
            if self._batch:
                self._flush_batch()
            else:
                self._make(Channel.STATE, now_ts, self._state.fields())

    def drop_connection(self, offline_wall_s: float) -> None:
        """Kill the TCP connection without DISCONNECT (the broker fires the will) and stay
        away for ``offline_wall_s`` wall seconds (at least a second) before reconnecting."""
        with self._lock:
            self._connected = False
        self._link.drop(offline_wall_s)

    def pump(self) -> None:
        """Send what waits in the spool, if connected and paho has room (any thread but paho's
        callbacks): while the simulation makes nothing, nothing else would."""
        with self._lock:
            if self._connected and self._buffer:
                self._send_buffered()

    def hold_offline(self) -> None:
        """Make no (re)connection attempt until :meth:`come_back`: with
        ``drop_connection(0)`` a robot is away for exactly as long as its caller needs — until a
        condition holds, not for a guessed number of seconds."""
        self._link.hold()

    def come_back(self) -> None:
        """End :meth:`hold_offline`: a robot waiting to reconnect does so now."""
        self._link.release()

    # --- paho callbacks (network thread) --------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("%s: broker refused the connection: %s", self.robot, reason)
            self.refused = str(reason)
            return
        self.refused = None
        for topic in self._inbox.topics:
            client.subscribe(topic, qos=1)
        with self._lock:
            if self._closing:
                return  # a connection that opened as the robot stopped: OFFLINE stays last
            self.stats.connects += 1
            birth = self._birth()
            self._last_ts = max(self._last_ts, birth.ts)
            self._publish_now(Channel.BIRTH, self._last_ts, self._next_seq(), birth.fields())
            if self._state is not None:
                self._publish_now(
                    Channel.STATE, self._last_ts, self._next_seq(), self._state.fields()
                )
            self._connected = True
            self._send_buffered()
        # The will carries the connect time; set it now for the next connection.
        self._set_will()

    def _on_published(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        """An acknowledgement makes room in paho's queue: send what waits in the spool.

        paho calls this holding its outgoing-message lock, which :meth:`send` takes (inside ours)
        to publish: waiting for our lock here could deadlock, so a busy lock skips this turn (the
        next acknowledgement, :meth:`_make` or :meth:`pump` sends it)."""
        self._room.set()
        if self._buffer and self._lock.acquire(blocking=False):
            try:
                if self._connected:
                    self._send_buffered()
            finally:
                self._lock.release()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        with self._lock:
            self._connected = False
        if not self._closing:
            log.warning("%s: connection lost (%s); reconnecting", self.robot, reason)

    # --- internals ------------------------------------------------------------------------

    def _make(self, channel: Channel, ts: float, fields: dict[str, Any]) -> None:
        """Take the next ``seq`` and publish, or spool while disconnected; while connected,
        wait until paho has taken it and everything older (lock held)."""
        seq = self._next_seq()
        self._made_ts = max(self._made_ts, ts)
        if self._connected and not self._buffer:
            info = self._publish_now(channel, ts, seq, fields)
            if info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                return
        if self._connected and channel is Channel.TELEMETRY:
            fields = {**fields, "historical": False}  # only waits for room: not replayed late
        self.stats.dropped += self._buffer.append(_Pending(channel, ts, seq, fields))
        self.stats.buffered += 1
        while self._connected and not self._closing:
            self._send_buffered()
            if not self._buffer or not self._wait_for_room():
                return

    def _wait_for_room(self) -> bool:
        """Back-pressure (lock held, released while waiting): wait, bounded, for paho to take
        more; True while still connected. A connected robot thus hands everything to paho
        before the simulation goes on: no robot's messages lag behind the others' in its
        spool (the service's clock guard and the flow control count on robots' messages
        arriving roughly in simulated-time order); only a disconnected robot spools."""
        self._room.clear()
        self._lock.release()
        try:
            self._room.wait(ROOM_WAIT_S)
        finally:
            self._lock.acquire()
        return self._connected and not self._closing

    def _send_buffered(self) -> None:
        """Hand the spool to paho, oldest first, while it takes them (lock held, connected).
        Telemetry made while disconnected is flagged ``historical``."""
        while self._buffer:
            pending = self._buffer.popleft()
            fields = pending.fields
            if pending.channel is Channel.TELEMETRY and "historical" not in fields:
                fields = {**fields, "historical": True}
            info = self._publish_now(pending.channel, pending.ts, pending.seq, fields)
            if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
                self._buffer.putback(pending)
                return
            self.stats.replayed += 1

    def _flush_batch(self) -> None:
        """Send the readings collected so far as one telemetry message (lock held)."""
        if self._batch:
            readings, self._batch = self._batch, []
            self._make(Channel.TELEMETRY, readings[-1]["ts"], {"readings": readings})

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _set_will(self) -> None:
        will = offline_will(self.robot, self.boot, self._last_ts)
        self._client.will_set(self._topics[Channel.STATE], will, qos=1, retain=True)

    def _publish_now(
        self, channel: Channel, ts: float, seq: int, fields: dict[str, Any]
    ) -> mqtt.MQTTMessageInfo:
        payload = {"v": 1, "robot": self.robot, "ts": ts, "boot": self.boot, "seq": seq, **fields}
        info = self._client.publish(
            self._topics[channel],
            encode_fields(payload),
            qos=self._qos[channel],
            retain=channel in RETAINED,
        )
        if info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self.stats.published += 1
        return info
