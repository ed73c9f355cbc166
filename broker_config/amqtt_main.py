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
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from broker_config.acl import render_amqtt_acl

PARENT_POLL_S = 1.0
EXIT_CANNOT_START = 2


def amqtt_config(
    *,
    port: int,
    password_file: Path,
    robot_ids: Iterable[str],
    bind: str = "127.0.0.1",
    ws_port: int | None = None,
) -> dict[str, Any]:
    """amqtt 0.12 broker config: listeners, our auth plugins and the topic ACL."""
    listeners: dict[str, Any] = {"default": {"type": "tcp", "bind": f"{bind}:{port}"}}
    if ws_port is not None:
        listeners["ws"] = {"type": "ws", "bind": f"{bind}:{ws_port}"}
    acl = render_amqtt_acl(robot_ids)
    return {
        "listeners": listeners,
        "plugins": {
            "broker_config.amqtt_plugins.AnonymousOrFileAuthPlugin": {},
            "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(password_file)},
            "broker_config.amqtt_plugins.TopicACLPlugin": {
                key.replace("-", "_"): value for key, value in acl.items()
            },
        },
    }


def keep_early_disconnects() -> None:
    """Work around amqtt 0.12.1 losing a DISCONNECT and then publishing the client's will.

    amqtt's protocol handler resolves a future when a DISCONNECT arrives and then forgets it
    (``_disconnect_waiter = None``, also in ``stop()`` once the socket closes). The session loop
    asks for that future only after the broker has sent a new client the retained messages it
    owes on CONNECT; a client that disconnects cleanly during that push is then taken for lost
    and its will is published. We remember the DISCONNECT on the handler and answer from it.
    Each connection gets its own handler, so nothing leaks between connections.
    (Pinned by tests/test_broker_differences.py.)
    """
    from amqtt.mqtt.packet import DISCONNECT
    from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler

    original_handle = BrokerProtocolHandler.handle_disconnect
    original_wait = BrokerProtocolHandler.wait_disconnect

    async def handle_disconnect(self: Any, disconnect: Any) -> None:
        header = getattr(disconnect, "fixed_header", None)
        if header is not None and header.packet_type == DISCONNECT:
            self.factory_disconnect_packet = disconnect
        await original_handle(self, disconnect)

    async def wait_disconnect(self: Any) -> Any:
        result = await original_wait(self)
        return result if result is not None else getattr(self, "factory_disconnect_packet", None)

    BrokerProtocolHandler.handle_disconnect = handle_disconnect
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
    keep_early_disconnects()
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
