"""``factory serve``: run the service under uvicorn, with one-line errors for what a user can fix.

The broker being unreachable is not one of them: the service starts, ``/readyz`` says what is
missing, and the MQTT client keeps retrying with back-off until the broker is there.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from api.app import create_app, end_streams, service_credentials
from api.auth import RedactApiKey
from api.settings import Settings, load_settings
from api.store.opening import db_overrides, store_label
from broker_config.credentials import CredentialsError
from broker_config.embedded import port_is_free
from broker_config.layout import read_running
from broker_config.protocol import speaks_mqtt5
from contract.mqtt import parse_broker_url
from plant import PlantError, load_plant

API_KEY_FILE = "api-key"
#: Where ``factory broker --security tls`` writes the local CA's server certificate and key.
TLS_CERT = Path("tls") / "server.pem"
TLS_KEY = Path("tls") / "server.key"
GRACEFUL_SHUTDOWN_S = 3


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def api_key(state_dir: Path) -> str:
    """``FACTORY_API_KEY``, else ``STATE_DIR/api-key`` (made on first use, mode 0600)."""
    from_env = os.environ.get("FACTORY_API_KEY")
    if from_env:
        return from_env
    path = state_dir / API_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(24) + "\n")
    return path.read_text(encoding="utf-8").strip()


def api_key_hint(state_dir: Path) -> str:
    """Where the key :func:`api_key` returns comes from, in words for the dashboard."""
    if os.environ.get("FACTORY_API_KEY"):
        return "the service's FACTORY_API_KEY environment variable"
    return str((state_dir / API_KEY_FILE).resolve())


WORKER_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _protocol_for(state_dir: Path, broker_url: str) -> dict[str, Any]:
    """MQTT 3.1.1 when the broker at ``broker_url`` speaks only that: the state dir's amqtt or
    NATS, or any broker that refuses an MQTT 5 CONNECT (:mod:`broker_config.protocol`)."""
    if "FACTORY_MQTT_PROTOCOL" in os.environ:
        return {}
    running = read_running(state_dir)
    same_broker = running is not None and parse_broker_url(running.url) == parse_broker_url(
        broker_url
    )
    if same_broker and running is not None and running.impl in ("amqtt", "nats"):
        return {"mqtt_protocol": "mqtt311"}
    # Another broker (a NATS node other than the first, an external one): ask it.
    host, port = parse_broker_url(broker_url)
    if speaks_mqtt5(host, port) is False:
        return {"mqtt_protocol": "mqtt311"}
    return {}


def build_settings(
    state_dir: Path,
    scenario: str | None,
    broker: str,
    db: str | None,
    tls: bool = False,
    worker: str | None = None,
) -> Settings:
    overrides: dict[str, Any] = {"state_dir": state_dir, "broker_url": broker}
    if tls:
        cert, key = state_dir / TLS_CERT, state_dir / TLS_KEY
        if not (cert.is_file() and key.is_file()):
            _fail(
                f"--tls needs {cert} and {key}: start the broker with `factory broker "
                f"--security tls --state-dir {state_dir}` (it makes a local CA), or set "
                "FACTORY_TLS_CERTFILE and FACTORY_TLS_KEYFILE"
            )
        overrides |= {"tls_certfile": cert, "tls_keyfile": key}
    if scenario is not None:
        overrides["scenario"] = scenario
    try:
        overrides |= db_overrides(db)
        overrides |= worker_overrides(worker, "db_url" in overrides)
        overrides["api_key"] = api_key(state_dir)
        overrides["api_key_hint"] = api_key_hint(state_dir)
        overrides |= _protocol_for(state_dir, broker)
        return load_settings(**overrides)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        _fail(f"bad setting {where}: {first['msg']}")
    except (ValueError, OSError) as exc:
        _fail(str(exc))


def worker_overrides(worker: str | None, on_postgres: bool) -> dict[str, Any]:
    """``--worker NAME``: one of several ingest workers sharing the telemetry (a client id of its
    own in the shared subscription group, ``ingest`` unless FACTORY_MQTT_SHARED_GROUP says)."""
    if worker is None:
        return {}
    if not WORKER_NAME.fullmatch(worker):
        raise ValueError(f"--worker: 1-32 letters, digits, '-' or '_', not {worker[:40]!r}")
    if not on_postgres and "FACTORY_DB_URL" not in os.environ:
        raise ValueError("--worker needs --db postgresql://…: workers share one PostgreSQL store")
    return {
        "mqtt_client_id": f"factory-service-{worker}",
        "mqtt_shared_group": os.environ.get("FACTORY_MQTT_SHARED_GROUP", "ingest"),
    }


def run_serve(
    state_dir: Path,
    scenario: str | None,
    broker: str,
    db: str | None,
    host: str,
    port: int,
    tls: bool = False,
    worker: str | None = None,
) -> None:
    settings = build_settings(state_dir, scenario, broker, db, tls, worker)
    try:
        service_credentials(settings)
        load_plant(settings.scenario)  # the maintenance engine follows its robots
    except (CredentialsError, PlantError) as exc:
        _fail(str(exc))
    if not port_is_free(host, port):
        _fail(f"port {port} on {host} is already in use; pick another with --port N")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    scheme = "https" if settings.https else "http"
    print(
        f"service on {scheme}://{host}:{port} (docs at /docs), broker {settings.broker_url}, "
        f"database {store_label(settings)}; write API key in {state_dir / API_KEY_FILE}",
        flush=True,
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **ssl_options(settings),
    )
    # After uvicorn's Config has set up its loggers: the stream's ?api_key= stays out of the log.
    logging.getLogger("uvicorn.access").addFilter(RedactApiKey())
    StreamEndingServer(config, app).run()


def ssl_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's HTTPS options for ``settings`` (none for plain HTTP)."""
    if settings.https is None:
        return {}
    cert, key = settings.https
    return {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}


class StreamEndingServer(uvicorn.Server):
    """uvicorn's server that ends the app's open streams as soon as a stop is asked for."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        end_streams(self._app)
        super().handle_exit(sig, frame)


class BackgroundServer:
    """An app under uvicorn in a daemon thread, on a socket bound before it starts (port 0 picks
    a free one). For tests and benchmarks that need real HTTP, e.g. streaming::

        with BackgroundServer(create_app(settings)) as server:
            httpx.get(server.url + "/healthz")
    """

    STARTUP_TIMEOUT_S = 15.0
    STOP_TIMEOUT_S = 10.0

    def __init__(
        self,
        app: FastAPI,
        host: str = "127.0.0.1",
        port: int = 0,
        https: tuple[Path, Path] | None = None,
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = host, int(self._socket.getsockname()[1])
        self._app = app
        ssl: dict[str, Any] = {}
        if https is not None:
            ssl = {"ssl_certfile": str(https[0]), "ssl_keyfile": str(https[1])}
        self.scheme = "https" if https else "http"
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=1, **ssl)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + self.STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self._socket.close()
                raise RuntimeError("the app did not start; see the log above for why")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        end_streams(self._app)
        self._server.should_exit = True
        self._thread.join(self.STOP_TIMEOUT_S)
        self._socket.close()
