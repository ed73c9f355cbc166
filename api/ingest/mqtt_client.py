"""The service's MQTT connection: a paho 2.x client on its own network thread.

- A persistent session (MQTT 5 with a session expiry interval, or MQTT 3.1.1 with
  ``clean_session=False``) under a stable client id, subscribed at QoS 1: the broker queues what
  robots publish while the service is down and delivers it when the service is back.
- ``manual_ack=True``: a message is acknowledged (PUBACK) only by :meth:`IngestClient.ack`, which
  the consumer calls after the message is committed. A crash before the commit means the broker
  delivers it again, and the store's ``(robot, boot, seq)`` key makes that harmless. (Mosquitto
  does; amqtt 0.12 drops a session's unacknowledged in-flight messages when its connection ends,
  pinned in ``tests/test_api_ingest.py``.)
- Callbacks never block: a message is appended to a deque and the event loop is woken once per
  burst, not once per message. What does not fit in the ingest queue is left unacknowledged and
  counted (:mod:`api.ingest.inbox`); :meth:`IngestClient.redeliver` then cycles the connection.
- paho reconnects by itself with back-off, so the service starts, and reports not ready, while the
  broker is unreachable.
- Never deaf, and a takeover noticed: :mod:`api.ingest.hearing` (the probe it publishes comes
  back here and is taken out before ingest).
- A message outside the subscription's filter is acknowledged at once and dropped (``stray``):
  amqtt 0.12 sends a connecting client the retained messages of *other* clients' filters, and
  ingesting another site's retained state would move robots and the simulated clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from api.inbound import Inbound
from api.ingest.hearing import Hearing
from api.settings import Settings
from broker_config.sessions import session_client_id
from contract.mqtt import broker_tls, parse_broker_url, resolve_cafile, use_tls
from contract.topics import matches

log = logging.getLogger(__name__)


class _QuietAfterDisconnect(logging.Filter):
    """paho 2.2 logs an ERROR from its loop after every clean disconnect; it means nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_QUIET = _QuietAfterDisconnect()

DISCONNECT_TIMEOUT_S = 2.0
FLUSH_TIMEOUT_S = 1.0
FLUSH_POLL_S = 0.005
#: Called on the event loop with ``None`` once subscribed, or with what is wrong.
StatusCallback = Callable[[str | None], None]


class IngestClient:
    def __init__(
        self,
        settings: Settings,
        username: str | None,
        password: str | None,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[list[Inbound]], None],
        on_status: StatusCallback,
        on_takeover: Callable[[], None] = lambda: None,
    ) -> None:
        self._settings = settings
        self._loop = loop
        self._deliver = deliver
        self._on_status = on_status
        self._host, self._port = parse_broker_url(settings.broker_url)
        v5 = settings.mqtt_protocol == "mqtt5"
        # A tag from the password: no one without it can name (and take over) this session.
        self.client_id = session_client_id(settings.mqtt_client_id, password)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if v5 else False,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            manual_ack=True,
        )
        if username is not None:
            client.username_pw_set(username, password)
        if broker_tls(settings.broker_url):
            use_tls(client, resolve_cafile(settings.mqtt_cafile, settings.state_dir))
        client.reconnect_delay_set(
            settings.mqtt_reconnect_min_s,  # type: ignore[arg-type]  # floats work; hints say int
            settings.mqtt_reconnect_max_s,  # type: ignore[arg-type]
        )
        paho_log = logging.getLogger(f"{__name__}.paho")
        paho_log.addFilter(_QUIET)  # once: addFilter ignores a filter it already has
        client.enable_logger(paho_log)
        client.suppress_exceptions = True  # a bug in a callback must not end the network thread
        client.on_socket_open = self._on_socket_open
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_pre_connect = self._on_pre_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self._v5 = v5
        # Acks must go back on the connection that delivered the message: a mid is only
        # meaningful there. The generation changes whenever a connection ends or begins.
        self._lock = threading.Lock()
        self._generation = 0
        self._pending: deque[Inbound] = deque()
        self._wake_scheduled = False
        self._cycling = False
        self._disconnected = threading.Event()
        self._stopping = False
        self._filter = settings.mqtt_topic_filter
        # The common case needs no level-by-level match.
        self._prefix = self._filter[:-1] if self._filter.endswith("/#") else None
        #: Messages that did not match the subscription (acknowledged and dropped).
        self.stray = 0
        self.hearing = Hearing(
            settings,
            self.client_id,
            lambda topic, data: client.publish(topic, data, qos=0),
            on_takeover,
        )

    @property
    def generation(self) -> int:
        return self._generation

    def start(self) -> None:
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self._settings.mqtt_session_expiry_s
            properties.ReceiveMaximum = self._settings.mqtt_receive_maximum
        self._client.connect_async(
            self._host,
            self._port,
            keepalive=self._settings.mqtt_keepalive_s,
            # MQTT 5: never start clean, or the queue kept while we were away is thrown out.
            clean_start=False if self._v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect cleanly (the session and its queue stay on the broker) and end the thread.

        Waits (bounded) for the DISCONNECT to go out: stopping the network thread at once can
        leave it unsent, and the broker would then keep a half-dead connection for a while.
        """
        self._stopping = True
        if self._client.is_connected():
            self._disconnected.clear()
            self._client.disconnect()
            self._disconnected.wait(DISCONNECT_TIMEOUT_S)
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Queue a message for the broker; thread-safe and never blocks (the network thread
        writes it). While disconnected, a QoS 1 message waits in paho's memory and goes out
        after the reconnect. False only if paho refused it outright."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)

    def ack(self, messages: Iterable[Inbound]) -> int:
        """Acknowledge committed messages that came on the current connection; return how many."""
        sent = 0
        with self._lock:
            for message in messages:
                if (
                    message.qos > 0
                    and message.generation == self._generation
                    and self._client.ack(message.mid, message.qos) == MQTTErrorCode.MQTT_ERR_SUCCESS
                ):
                    sent += 1
        return sent

    async def reconnect(self) -> None:
        """Cycle the connection (paho reconnects; ``on_connect`` subscribes again)."""
        await self.redeliver(why="the ingest client heard nothing: reconnecting to resubscribe")

    async def redeliver(
        self, why: str = "ingest queue overflowed: reconnecting so the broker redelivers"
    ) -> None:
        """Drop the connection once so the broker resends everything not acknowledged.

        Waits (bounded) until paho has written the acks already queued: dropping them with the
        connection would make the broker resend those messages first, and again next time.
        """
        with self._lock:
            if self._cycling:
                return
            self._cycling = True
        deadline = self._loop.time() + FLUSH_TIMEOUT_S
        while self._client.want_write() and self._loop.time() < deadline:
            await asyncio.sleep(FLUSH_POLL_S)
        sock = self._client.socket()
        if isinstance(sock, socket.socket):
            log.warning("%s", why)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # paho sees a lost connection and reconnects

    # --- paho callbacks (network thread: never block) -------------------------------------------

    def _status(self, problem: str | None) -> None:
        if self._stopping:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the app is shutting down
            self._loop.call_soon_threadsafe(self._on_status, problem)

    def _next_generation(self) -> None:
        with self._lock:
            self._generation += 1

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_pre_connect(self, client: mqtt.Client, userdata: Any) -> None:
        self._next_generation()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            hint = ""
            if str(reason_code) == "Unsupported protocol version" and self._v5:
                hint = "; the broker may speak only MQTT 3.1.1: set FACTORY_MQTT_PROTOCOL=mqtt311"
            self._status(f"the broker at {self._host}:{self._port} refused: {reason_code}{hint}")
            return
        with self._lock:
            self._cycling = False
        self.hearing.connected()
        client.subscribe(self._settings.subscription, qos=1)
        if self.hearing.shared and self.hearing.topic is not None:
            client.subscribe(self.hearing.topic, qos=0)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            self._status(f"the broker refused the subscription to {self._settings.subscription}")
        else:
            self.hearing.subscribed()
            self._status(None)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._status(f"cannot reach the broker at {self._host}:{self._port}; retrying")

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._next_generation()
        self._disconnected.set()
        with self._lock:
            ours = self._cycling or self._stopping
        self.hearing.lost(reason_code, ours)
        self._status(f"disconnected from the broker ({reason_code}); reconnecting")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            topic = message.topic
        except UnicodeDecodeError:  # the contract refuses it; keep it readable for the record
            topic = message._topic.decode("utf-8", errors="replace")
        now = time.time()
        self.hearing.last_heard = now
        if topic == self.hearing.topic:
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        if not self._subscribed_to(topic):
            self.stray += 1
            if message.qos > 0:
                client.ack(message.mid, message.qos)
            return
        inbound = Inbound(
            topic,
            bytes(message.payload),
            now,
            message.qos,
            message.mid,
            self._generation,
            bool(message.retain),
        )
        with self._lock:
            self._pending.append(inbound)
            wake = not self._wake_scheduled
            self._wake_scheduled = True
        if wake:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._hand_over)

    def _subscribed_to(self, topic: str) -> bool:
        prefix = self._prefix
        if prefix is not None and "+" not in prefix:
            return topic.startswith(prefix) or topic == prefix[:-1]
        return matches(self._filter, topic)

    def _hand_over(self) -> None:
        """On the event loop: pass everything that arrived since the last wake-up."""
        with self._lock:
            batch = list(self._pending)
            self._pending.clear()
            self._wake_scheduled = False
        self._deliver(batch)
