"""One robot as an MQTT device: the adapter between the pure model and the broker.

A :class:`DeviceAgent` owns one paho client with the robot's own credentials and client id. It
turns the model's records into contract payloads (adding ``v/robot/ts/boot/seq``) and publishes
them; it turns ``cmd`` messages into commands for the model. On every (re)connect it re-sends the
retained birth and state and re-subscribes; its last will is the retained OFFLINE state
(``seq = 0``, see :mod:`contract.payloads`); before a deliberate disconnect it publishes OFFLINE
itself, because a broker does not send the will then.

Store and forward: while disconnected, telemetry, events and truth go into a spool
(:mod:`.spool`: bounded in memory, then on disk up to a stated bound past which the oldest are
dropped, counted) and are sent after the reconnect, telemetry with ``historical = true``. The
same spool holds what paho will not take while connected: paho's queue per client is bounded
(:data:`MAX_QUEUED_MESSAGES`, of which :data:`MAX_INFLIGHT_MESSAGES` in flight), and messages wait
in the spool, in order, until acknowledgements make room. Each message takes its ``seq`` when it
is made, so a reader sees a gapless sequence unless the spool's disk bound was reached. State
changes made while disconnected are not buffered: the current state is re-published on
reconnect. QoS 1 messages in flight when the link drops are re-sent by paho itself (with the DUP
flag); the service's ``(robot, boot, seq)`` dedupe absorbs any duplicate. A link that dies
silently is only noticed by the keepalive; what is published until then waits in paho's queue
(then the spool) and goes out after the reconnect unflagged (docs/contract.md).

Pace: an agent given ``on_pace`` also reads its site's retained ``factory/{site}/pace`` and hands
every valid pace to it (the runner pauses or re-paces the simulation, :mod:`.pace`).

Threads: :meth:`send` is called from the simulation thread, paho callbacks run in the client's
network thread; one lock orders publishing, the buffer and ``seq``. Commands are handed to the
simulation through ``on_command`` (the runner queues them into the SimPy thread).

Batching and heartbeat: with ``telemetry_batch > 1`` readings are collected and sent as one
telemetry message of that many (an event, a state change, a heartbeat and :meth:`stop` send a
partial batch first, so readings arrive before what they led to). :meth:`heartbeat` re-publishes
the retained state, same ``since`` and a fresh ``ts``, when the robot has sent nothing for a
while: an idle robot still says it is alive, and a reader's simulated clock keeps moving.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from broker_config.sessions import robot_client_id, session_client_id
from contract.codec import Rejected, decode_message, encode
from contract.mqtt import new_client
from contract.pace import Pace, decode_pace, pace_topic
from contract.payloads import (
    WILL_SEQ,
    CancelMaintenance,
    InjectFault,
    ScheduleMaintenance,
    State,
)
from contract.topics import Channel, Topic
from simulator.devices.spool import DEFAULT_DISK_BYTES, DEFAULT_MEMORY_ITEMS, Spool
from simulator.model.records import BirthRecord, NetworkDrop, Record, Sample, StateChange

log = logging.getLogger(__name__)

Command = ScheduleMaintenance | CancelMaintenance | InjectFault
#: Messages waiting to be sent that are kept in memory; more go to disk (:mod:`.spool`).
DEFAULT_BUFFER_MESSAGES = DEFAULT_MEMORY_ITEMS
#: paho's own queue per client (in flight and waiting), and how many of those in flight.
MAX_QUEUED_MESSAGES, MAX_INFLIGHT_MESSAGES = 1_000, 20
KEEPALIVE_S = 15
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30
#: How long a clean stop waits for the broker to acknowledge the OFFLINE state.
STOP_PUBLISH_TIMEOUT_S = 5.0


@dataclass(slots=True)
class AgentStats:
    published: int = 0
    buffered: int = 0
    dropped: int = 0
    replayed: int = 0
    connects: int = 0
    commands: int = 0
    bad_commands: int = 0


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
    ) -> None:
        self.robot = topic.robot
        self._topics = {channel: str(topic.with_channel(channel)) for channel in Channel}
        self._host, self._port = host, port
        self.boot = boot
        self._birth = birth
        self._on_command = on_command
        self._qos = dict.fromkeys(Channel, 1) | {Channel.TELEMETRY: telemetry_qos}
        #: Wall seconds per simulated second (how long a simulated network drop lasts).
        self.wall_s_per_sim_s = wall_s_per_sim_s
        self._on_pace = on_pace
        self._pace_topic = pace_topic(topic.site)
        self._lock = threading.Lock()
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
        #: Why the broker refused the last CONNECT (e.g. "Not authorized"); None once accepted.
        self.refused: str | None = None
        self._client = new_client(
            # A tag from the password: no one without it can name (and take over) this session.
            session_client_id(robot_client_id(self.robot), password),
            protocol=protocol,
            clean_session=False,  # commands sent while we are away wait for us at the broker
            username=username,
            password=password,
            tls=tls,
            cafile=cafile,
        )
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.max_inflight_messages_set(MAX_INFLIGHT_MESSAGES)
        self._client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
        self._client.on_publish = self._on_published
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_pre_connect = self._wait_at_gate
        self._gate = threading.Event()  # cleared: the robot stays away (see hold_offline)
        self._gate.set()

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (retrying with back-off until the broker answers)."""
        self._set_will()
        self._client.connect_async(self._host, self._port, keepalive=KEEPALIVE_S)
        self._client.loop_start()

    def stop(self) -> None:
        """Publish OFFLINE (retained) ourselves, then disconnect cleanly (one robot; a fleet
        stops all at once with :func:`simulator.devices.fleet_links.stop_all`)."""
        info = self.begin_stop()
        self.await_offline(info, STOP_PUBLISH_TIMEOUT_S)
        self.disconnect()
        self.join()

    def begin_stop(self) -> mqtt.MQTTMessageInfo | None:
        """Stop making messages and publish OFFLINE if connected; the publish to wait for."""
        with self._lock:
            self._flush_batch()
            self._closing = True
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
        self._gate.set()  # a held robot must not sit in the gate while we stop
        return info

    @staticmethod
    def await_offline(info: mqtt.MQTTMessageInfo | None, timeout_s: float) -> None:
        """Wait (bounded) for the broker to acknowledge OFFLINE."""
        if info is not None and timeout_s > 0:
            # Not connected any more (RuntimeError/ValueError): the will reports OFFLINE instead.
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout=timeout_s)

    def disconnect(self) -> None:
        """Ask the network thread to end (it leaves any reconnect wait at once)."""
        self._client.disconnect()

    def join(self) -> None:
        """Wait for the network thread to end."""
        self._client.loop_stop()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def last_seq(self) -> int:
        """The ``seq`` of the newest message made (published or buffered)."""
        return self._seq

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
        away for ``offline_wall_s`` wall seconds before reconnecting."""
        delay = max(RECONNECT_MIN_S, math.ceil(offline_wall_s))
        self._client.reconnect_delay_set(delay, max(delay, RECONNECT_MAX_S))
        with self._lock:
            self._connected = False
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            # shutdown, not close: the network thread may be selecting on this descriptor.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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
        self._gate.clear()

    def come_back(self) -> None:
        """End :meth:`hold_offline`: the next reconnection attempt goes ahead."""
        self._gate.set()

    # --- paho callbacks (network thread) --------------------------------------------------

    def _wait_at_gate(self, client: mqtt.Client, userdata: Any) -> None:
        """Before every (re)connect: wait while held; once stopping, do not connect at all
        (paho's loop treats the OSError as a failed attempt and then sees it is to stop)."""
        self._gate.wait()
        if self._closing:
            raise ConnectionAbortedError(f"{self.robot} is stopping")

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("%s: broker refused the connection: %s", self.robot, reason)
            self.refused = str(reason)
            return
        self.refused = None
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.subscribe(self._topics[Channel.CMD], qos=1)
        if self._on_pace is not None:
            client.subscribe(self._pace_topic, qos=1)
        with self._lock:
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

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._pace_topic and self._on_pace is not None:
            try:
                pace = decode_pace(bytes(message.payload))
            except Rejected as exc:
                log.warning("%s: refused a pace: %s", self.robot, exc)
                return
            self._on_pace(pace)
            return
        if message.topic != self._topics[Channel.CMD]:
            return  # amqtt also pushes retained messages of other clients' subscriptions
        try:
            _, command = decode_message(message.topic, bytes(message.payload))
        except Rejected as exc:
            self.stats.bad_commands += 1
            log.warning("%s: refused a command: %s", self.robot, exc)
            return
        self.stats.commands += 1
        self._on_command(command)  # type: ignore[arg-type]

    # --- internals ------------------------------------------------------------------------

    def _make(self, channel: Channel, ts: float, fields: dict[str, Any]) -> None:
        """Take the next ``seq`` and publish, or spool while disconnected, while older messages
        wait, or when paho's queue is full (lock held)."""
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
        if self._connected:
            self._send_buffered()

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
        will = State(
            v=1,
            robot=self.robot,
            ts=self._last_ts,
            boot=self.boot,
            seq=WILL_SEQ,
            state="OFFLINE",
            since=self._last_ts,
            reason="connection lost",
        )
        self._client.will_set(self._topics[Channel.STATE], encode(will), qos=1, retain=True)

    def _publish_now(
        self, channel: Channel, ts: float, seq: int, fields: dict[str, Any]
    ) -> mqtt.MQTTMessageInfo:
        payload = {"v": 1, "robot": self.robot, "ts": ts, "boot": self.boot, "seq": seq, **fields}
        info = self._client.publish(
            self._topics[channel],
            encode_fields(payload),
            qos=self._qos[channel],
            retain=channel in _RETAINED,
        )
        if info.rc != MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self.stats.published += 1
        return info


_RETAINED = frozenset({Channel.BIRTH, Channel.STATE})


def encode_fields(payload: dict[str, Any]) -> bytes:
    """JSON bytes of a payload built from a model record; top-level ``None`` fields are left out,
    as :func:`contract.codec.encode` does. The model's records are built to the contract (its
    tests validate every kind), so the hot path does not validate again."""
    return orjson.dumps({k: v for k, v in payload.items() if v is not None})
