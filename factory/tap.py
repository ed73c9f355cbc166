"""``factory tap``: watch the wire. Every message with time, QoS, retained flag, topic and payload.

Payloads are decoded with the contract (:func:`contract.codec.decode_message`), so a message that
breaks it shows the reason it would be refused, with its raw bytes truncated. The tap connects
anonymously by default (the ACL lets anonymous clients read ``factory/#`` and nothing else) with
MQTT 3.1.1, which both Mosquitto and the embedded amqtt broker speak, re-subscribes after a
reconnect, and ignores messages outside its filter (amqtt also sends a new client the retained
messages matching *other* clients' filters; see docs/broker.md).

The network loop runs in paho's thread; printing happens here, in the caller's thread, so Ctrl-C
stops it cleanly and ``--count N`` returns after exactly N messages.
"""

from __future__ import annotations

import os
import queue
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import orjson
import paho.mqtt.client as mqtt
from rich.console import Console
from rich.markup import escape

from contract.codec import Rejected, decode_message
from contract.mqtt import broker_tls, new_client, parse_broker_url, resolve_cafile, use_tls
from contract.topics import TopicError, matches, validate_filter

POLL_S = 0.5
KEEPALIVE_S = 30
RAW_PREVIEW_BYTES = 120
SUBACK_REFUSED = 0x80


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Problem:
    """Something from the network thread that ends the tap with a one-line error."""

    message: str


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


def format_message(message: Received) -> str:
    """One line of rich markup: time, QoS, retained flag, topic, decoded payload or reject."""
    stamp = message.at.strftime("%H:%M:%S.%f")[:-3]
    retained = "[magenta]R[/]" if message.retain else " "
    head = f"[dim]{stamp}[/] q{message.qos} {retained} [cyan]{escape(message.topic)}[/]"
    try:
        _, payload = decode_message(message.topic, message.payload)
    except Rejected as exc:
        raw = message.payload[:RAW_PREVIEW_BYTES]
        cut = len(message.payload) - len(raw)
        more = f"…(+{cut} bytes)" if cut else ""
        return (
            f"{head} [red]REJECTED {exc.reason}[/]: {escape(exc.detail)}"
            f" [dim]raw={escape(repr(raw))}{more}[/]"
        )
    body = orjson.dumps(payload.model_dump(mode="json", exclude_none=True)).decode()
    return f"{head} [green]{type(payload).__name__}[/] {escape(body)}"


def _make_client(
    topic_filter: str, inbox: queue.Queue[Received | Problem | str], url: str
) -> mqtt.Client:
    client = new_client(f"tap-{os.urandom(4).hex()}")
    connected_once = False

    def on_connect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        nonlocal connected_once
        if reason.is_failure:
            inbox.put(
                Problem(
                    f"the broker refused the login ({reason}); check --username/--password "
                    "(`factory credentials service` prints them) or drop them to watch anonymously"
                )
            )
            return
        inbox.put(f"reconnected to {url}" if connected_once else f"connected to {url}")
        connected_once = True
        c.subscribe(topic_filter, qos=1)  # on every (re)connect: the session is clean

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, reasons: Any, props: Any) -> None:
        if any(r.value >= SUBACK_REFUSED for r in reasons):
            inbox.put(
                Problem(
                    f"the broker refused the subscription to {topic_filter!r}; "
                    "anonymous clients may read factory/# only"
                )
            )
        else:
            inbox.put(f"subscribed to {topic_filter}")

    def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
        if not matches(topic_filter, msg.topic):  # amqtt pushes other clients' retained ones
            return
        inbox.put(
            Received(msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain), datetime.now())
        )

    def on_disconnect(c: mqtt.Client, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if connected_once:
            inbox.put(f"connection lost ({reason}); reconnecting …")

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    return client


def run_tap(
    topic_filter: str,
    broker: str,
    username: str | None,
    password: str | None,
    count: int | None,
    raw: bool,
    cafile: str | None = None,
    state_dir: Path | None = None,
) -> None:
    """Subscribe to ``topic_filter`` and print messages until Ctrl-C or ``count`` of them."""
    try:
        validate_filter(topic_filter)
        host, port = parse_broker_url(broker)
        tls = broker_tls(broker)
        ca = resolve_cafile(cafile, state_dir) if tls else None
    except (TopicError, ValueError) as exc:
        _fail(str(exc))
    if count is not None and count < 1:
        _fail("--count must be 1 or more")
    console = Console(highlight=False, soft_wrap=True, stderr=False)
    notes = Console(stderr=True, highlight=False)
    inbox: queue.Queue[Received | Problem | str] = queue.Queue()
    client = _make_client(topic_filter, inbox, f"mqtt://{host}:{port}")
    if username is not None:
        client.username_pw_set(username, password)
    if tls:
        use_tls(client, ca)
    try:
        client.connect(host, port, keepalive=KEEPALIVE_S)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        _fail(
            f"cannot connect to mqtt://{host}:{port} ({reason}); start a broker "
            "(`factory broker` or `factory up`) or point --broker at one"
        )
    client.loop_start()
    seen = 0
    try:
        while count is None or seen < count:
            try:
                item = inbox.get(timeout=POLL_S)  # a bounded wait keeps Ctrl-C responsive
            except queue.Empty:
                continue
            if isinstance(item, Problem):
                _fail(item.message)
            if isinstance(item, str):
                notes.print(f"[dim]{escape(item)}[/]")
                continue
            seen += 1
            if raw:
                sys.stdout.buffer.write(item.payload + b"\n")
                sys.stdout.flush()
            else:
                console.print(format_message(item))
    except KeyboardInterrupt:
        pass
    finally:
        client.disconnect()
        client.loop_stop()
