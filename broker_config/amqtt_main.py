"""The embedded amqtt broker as its own process: ``python -m broker_config.amqtt_main --config F``.

amqtt runs in a subprocess so that it never shares an event loop, logging or warning filters with
whoever started it (the demo runner, a test session). :func:`amqtt_config` builds the JSON config
file from our ACL and password file; :func:`main` runs the broker until SIGTERM/SIGINT, or until
its parent process dies, and exits 2 with one line on stderr if it cannot start (e.g. the port is
taken).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from broker_config.profiles import DEFAULT_SECURITY, Security
from broker_config.tls import TlsFiles

PARENT_POLL_S = 1.0
#: How long already-acknowledged messages may take to be routed when a client leaves or the
#: broker stops (stop() waits 5 s before SIGKILL).
DRAIN_LIMIT_S = 2.0
DRAIN_POLL_S = 0.002
EXIT_CANNOT_START = 2


def amqtt_config(
    *,
    port: int | None,
    password_file: Path,
    robot_prefixes: Mapping[str, str],
    participants: Iterable[str] = (),
    bind: str = "127.0.0.1",
    ws_port: int | None = None,
    security: Security = DEFAULT_SECURITY,
    tls: TlsFiles | None = None,
    tls_port: int | None = None,
) -> dict[str, Any]:
    """amqtt 0.12 broker config: listeners, our auth plugins and the topic policy.

    The ``tls`` profile has TLS listeners only (MQTT on ``tls_port``, WebSockets on ``ws_port``);
    the others have plain ones (MQTT on ``port``, WebSockets on ``ws_port``).
    """
    listeners: dict[str, Any] = {}
    if security.tls:
        if tls is None or tls_port is None:
            raise ValueError("the tls profile needs certificate files and a TLS port")
        secure = {
            "ssl": True,
            "certfile": str(tls.server_cert_pem),
            "keyfile": str(tls.server_key_pem),
        }
        listeners["default"] = {"type": "tcp", "bind": f"{bind}:{tls_port}", **secure}
        if ws_port is not None:
            listeners["ws"] = {"type": "ws", "bind": f"{bind}:{ws_port}", **secure}
    else:
        if port is None:
            raise ValueError("a plain MQTT port is needed")
        listeners["default"] = {"type": "tcp", "bind": f"{bind}:{port}"}
        if ws_port is not None:
            listeners["ws"] = {"type": "ws", "bind": f"{bind}:{ws_port}"}
    policy = {"robot_prefixes": dict(robot_prefixes), "participants": list(participants)}
    plugins: dict[str, Any] = {
        "broker_config.amqtt_plugins.AnonymousOrFileAuthPlugin": {
            **policy,
            "allow_anonymous": not security.logins_required,
            "open": not security.checks_passwords,
            "topic_rules": security.topic_rules,
        },
    }
    if security.checks_passwords:
        plugins["amqtt.plugins.authentication.FileAuthPlugin"] = {
            "password_file": str(password_file)
        }
    if security.topic_rules:
        plugins["broker_config.amqtt_plugins.PolicyTopicPlugin"] = policy
    return {"listeners": listeners, "plugins": plugins}


def authenticate_before_session() -> None:
    """Make amqtt 0.12.1 check a login before it touches the session of the client id.

    amqtt reads the CONNECT, then deletes (clean session) or takes over (persistent session) the
    existing session with that client id, kicking its owner off, and only then asks the auth
    plugins; a refused client has already done its damage. We run the auth plugins as soon as
    the CONNECT is parsed and answer a refusal with CONNACK "not authorised" right there, before
    amqtt looks the session up. (amqtt asks the plugins again later; they answer the same.)
    """
    from amqtt.errors import MQTTError
    from amqtt.mqtt.connack import NOT_AUTHORIZED, ConnackPacket
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler

    original = BrokerProtocolHandler.init_from_connect.__func__

    async def init_from_connect(
        cls: Any, reader: Any, writer: Any, plugins_manager: Any, *args: Any, **kwargs: Any
    ) -> Any:
        handler, session = await original(cls, reader, writer, plugins_manager, *args, **kwargs)
        returns = await plugins_manager.map_plugin_auth(session=session)
        results = [r for r in (returns or {}).values() if r is not None]
        if not results or not all(results):
            await ConnackPacket.build(0, NOT_AUTHORIZED).to_stream(writer)
            await writer.close()
            raise MQTTError(f"client {session.client_id!r} refused before session lookup")
        return handler, session

    BrokerProtocolHandler.init_from_connect = classmethod(init_from_connect)


def finish_before_disconnect() -> None:
    """Work around two amqtt 0.12.1 bugs at a client's DISCONNECT (or lost connection).

    1. *Acknowledged messages lost.* A client's PUBLISHes wait in a queue for the session loop
       to route them; the loop stops at the DISCONNECT, and whatever is still queued is dropped,
       although the client already has its PUBACKs (a robot's last messages before a clean stop,
       e.g. its OFFLINE state). We report the disconnect only once that queue is empty.
    2. *A clean DISCONNECT forgotten, the will published anyway.* The protocol handler resolves
       a future when DISCONNECT arrives and then forgets it (``_disconnect_waiter = None``, also
       in ``stop()``). The session loop asks for that future only after sending a new client the
       retained messages it owes on CONNECT; a client that disconnects during that push was
       taken for lost and its will published. Worse, the reader handles a DISCONNECT in a task
       that it cancels if it reads the end of the stream first. We note the DISCONNECT on the
       connection's reader the moment it is parsed, and answer from that note.

    Each connection has its own handler, so nothing leaks between connections. Both are pinned
    by tests/test_broker_differences.py.
    """
    from amqtt.mqtt.disconnect import DisconnectPacket
    from amqtt.mqtt.protocol import handler as protocol_handler
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler

    class NotedDisconnect(DisconnectPacket):  # type: ignore[misc]  # amqtt is untyped
        @classmethod
        async def from_stream(cls, reader: Any, *args: Any, **kwargs: Any) -> Any:
            packet = await super().from_stream(reader, *args, **kwargs)
            reader.factory_disconnect_packet = packet
            return packet

    original_packet_class = protocol_handler.packet_class
    original_wait = BrokerProtocolHandler.wait_disconnect

    def packet_class(fixed_header: Any) -> Any:
        found = original_packet_class(fixed_header)
        return NotedDisconnect if found is DisconnectPacket else found

    async def wait_disconnect(self: Any) -> Any:
        result = await original_wait(self)
        if result is None:
            result = getattr(self.reader, "factory_disconnect_packet", None)
        pending = self.session.delivered_message_queue if self.session else None
        deadline = time.monotonic() + DRAIN_LIMIT_S
        while pending is not None and not pending.empty() and time.monotonic() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)  # the session loop routes them meanwhile
        return result

    protocol_handler.packet_class = packet_class
    BrokerProtocolHandler.wait_disconnect = wait_disconnect


class SnapshotDict(dict[str, Any]):
    """A dict whose iteration works on a snapshot of its keys and items.

    amqtt 0.12.1 loops over its subscription table while awaiting inside the loop (the retained
    push on CONNECT, the broadcast of each message); a subscription added or a session cleaned
    up meanwhile raises "dictionary changed size during iteration", which drops the connecting
    client or loses a broadcast. Iterating over a copy makes those loops safe.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(super().keys())

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(super().values())

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(super().items())


async def drain(broker: Any, limit_s: float) -> None:
    """Before shutting down, let amqtt route and deliver what it has already acknowledged.

    amqtt keeps nothing across a restart, and its ``shutdown()`` first removes every session and
    then drops the messages still waiting to be routed. A SIGTERM therefore waits (at most
    ``limit_s``) until no client's received messages wait for routing, the broadcast queue is
    empty and the outgoing deliveries have finished.
    """
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        waiting = not broker._broadcast_queue.empty()
        waiting |= any(
            not session.delivered_message_queue.empty()
            for session, _ in list(broker._sessions.values())
        )
        waiting |= any(not task.done() for task in list(broker._tasks_queue))
        if not waiting:
            return
        await asyncio.sleep(DRAIN_POLL_S)


async def _serve(config: dict[str, Any]) -> int:
    from amqtt.broker import Broker
    from amqtt.errors import BrokerError

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    parent = os.getppid()

    async def watch_parent() -> None:
        # A broker orphaned by a crashed test session or demo runner would hold its port forever.
        while os.getppid() == parent:
            await asyncio.sleep(PARENT_POLL_S)
        stop.set()

    broker = Broker(config)
    broker._subscriptions = SnapshotDict()
    try:
        await broker.start()
    except BrokerError as exc:
        cause = exc.__cause__.__cause__ if exc.__cause__ else None
        message = str(cause or exc.__cause__ or exc)
        logging.getLogger("broker_config.amqtt_main").error("cannot start: %s", message)
        return EXIT_CANNOT_START
    watcher = asyncio.create_task(watch_parent())
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        await drain(broker, DRAIN_LIMIT_S)
        await broker.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m broker_config.amqtt_main")
    parser.add_argument("--config", type=Path, required=True, help="JSON broker config file")
    parser.add_argument("--log-file", type=Path, help="append the broker log here")
    parser.add_argument("--verbose", action="store_true", help="also log to stderr")
    args = parser.parse_args(argv)
    handlers: list[logging.Handler] = []
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file, encoding="utf-8"))
    if args.verbose or not handlers:
        handlers.append(logging.StreamHandler())
    log_format = "%(asctime)s %(name)s %(levelname)s %(message)s"
    logging.basicConfig(level=logging.INFO, format=log_format, handlers=handlers)
    # amqtt 0.12 warns about its own deprecated internals; route them to the log, not stderr.
    logging.captureWarnings(True)
    logging.getLogger("transitions").setLevel(logging.WARNING)  # a line per session state change
    warnings.simplefilter("default")
    config = json.loads(args.config.read_text(encoding="utf-8"))
    finish_before_disconnect()
    authenticate_before_session()
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
