"""The service's settings: one pydantic-settings object, built by :func:`load_settings`.

Every field can be set from the environment with the ``FACTORY_`` prefix (``FACTORY_BROKER_URL``,
``FACTORY_DB_PATH``, ``FACTORY_DB_URL``, ...). Nothing here runs at import time:
:func:`load_settings` reads the environment when called, and tests build a :class:`Settings`
directly with the values they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contract.mqtt import parse_broker_url

DB_FILE = "factory.db"
DEFAULT_BROKER_URL = "mqtt://127.0.0.1:1883"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")

MqttProtocol = Literal["mqtt5", "mqtt311"]
Policy = Literal["reactive", "preventive", "predictive"]


class Settings(BaseSettings):
    """Everything the service can be told; see the field descriptions (also in the README)."""

    model_config = SettingsConfigDict(env_prefix="FACTORY_", extra="forbid", frozen=True)

    # --- where things are ----------------------------------------------------------------------
    state_dir: Path = Field(
        default=Path(".factory"), description="Credentials, database and broker data."
    )
    db_path: Path | None = Field(
        default=None, description="SQLite file; default STATE_DIR/factory.db."
    )
    db_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://USER@HOST:PORT/DB): the store several "
        "`factory serve` workers share; unset = the SQLite file.",
    )
    scenario: str | None = Field(
        default=None,
        description="Scenario file or bundled name (default: the bundled default); the "
        "maintenance engine follows its robots, components and calendar.",
    )

    # --- MQTT ----------------------------------------------------------------------------------
    broker_url: str = Field(
        default=DEFAULT_BROKER_URL, description="mqtt://HOST:PORT, or mqtts://HOST:PORT for TLS"
    )
    mqtt_cafile: Path | None = Field(
        default=None,
        description="CA file that verifies an mqtts:// broker; default STATE_DIR/tls/ca.pem "
        "when it exists, else the system's CAs.",
    )
    mqtt_protocol: MqttProtocol = Field(
        default="mqtt5",
        description="mqtt5 (Mosquitto: session expiry) or mqtt311 (amqtt: clean_session=False).",
    )
    mqtt_client_id: str = Field(
        default="factory-service",
        min_length=1,
        max_length=64,
        description="Stable id: the broker keeps this session's queue while the service is down.",
    )
    mqtt_username: str | None = Field(
        default=None, description="Default: the 'service' account from STATE_DIR/credentials.json."
    )
    mqtt_password: SecretStr | None = None
    mqtt_session_expiry_s: int = Field(
        default=7 * 86400, ge=0, description="MQTT 5 session expiry: how long the broker queues."
    )
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=3600)
    mqtt_topic_filter: str = Field(default="factory/#", description="What the service ingests.")
    mqtt_shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Subscribe as $share/GROUP/filter to spread ingest over several workers.",
    )
    mqtt_receive_maximum: int = Field(
        default=1000,
        ge=1,
        le=65535,
        description="MQTT 5 flow control: unacknowledged messages the broker may have in flight.",
    )
    mqtt_probe_interval_s: float = Field(
        default=5.0,
        ge=0,
        description="How often the service publishes its hearing probe (0: never); a client "
        "that hears nothing, not even the probe, is reported on /readyz and resubscribes.",
    )
    mqtt_probe_timeout_s: float = Field(
        default=10.0, gt=0, description="How long a probe may take to come back."
    )
    mqtt_reconnect_min_s: float = Field(default=0.5, gt=0)
    mqtt_reconnect_max_s: float = Field(default=30.0, gt=0)

    # --- ingest --------------------------------------------------------------------------------
    ingest_queue_max: int = Field(
        default=10_000,
        ge=1,
        description="Messages waiting between the MQTT thread and the consumer; overflow is "
        "counted, left unacknowledged and redelivered after a reconnect.",
    )
    ingest_batch_max_messages: int = Field(default=500, ge=1, description="Messages per commit.")
    ingest_batch_max_wait_ms: float = Field(
        default=2.0, ge=0, description="How long a batch waits to fill before it is committed."
    )
    ingest_lag_max_s: float | None = Field(
        default=30.0,
        gt=0,
        description="Wall seconds the oldest received message may wait to be committed before "
        "/readyz reports the service as behind (factory_ingest_lag_seconds); unset: never.",
    )
    ingest_progress_interval_s: float = Field(
        default=0.25,
        ge=0,
        description="How often, while committing, the service publishes its ingest progress on "
        "factory/{site}/ingest (flow control for publishers; every 4 s also when idle); 0: never.",
    )
    dead_letter_max_rows: int = Field(default=10_000, ge=1, description="Oldest trimmed past it.")

    # --- clock guard (docs/contract.md, "Clock guard") -------------------------------------------
    clock_max_lead_s: float | None = Field(
        default=None,
        gt=0,
        description="Simulated seconds a message may be ahead of the rest of the fleet; unset: "
        "the larger of CLOCK_LEAD_MIN_S, CLOCK_LEAD_INTERVALS sample intervals and "
        "CLOCK_LEAD_WALL_S wall seconds at the fleet's current pace.",
    )
    clock_lead_intervals: float = Field(default=4.0, gt=0, description="Sample intervals.")
    clock_lead_min_s: float = Field(default=300.0, ge=0, description="Simulated seconds.")
    clock_lead_wall_s: float = Field(
        default=5.0, ge=0, description="Wall seconds at the current pace."
    )
    clock_replay_window_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="How far behind a robot's own newest time its telemetry, events and truth "
        "may be (store-and-forward replays) and still be stored.",
    )
    clock_claim_ttl_s: float = Field(
        default=60.0,
        ge=0,
        description="Wall seconds a refused time ahead counts as a claim a second robot may "
        "confirm (a fleet-wide jump, e.g. a simulator started later).",
    )
    clock_hold_s: float = Field(
        default=30.0,
        ge=0,
        description="Wall seconds a message ahead of the fleet's clock is held (not stored, not "
        "acknowledged) for another robot to confirm its time before it is refused; 0: refuse "
        "at once.",
    )
    clock_hold_max: int = Field(
        default=500,
        ge=1,
        description="Most messages held at once (at most half the broker's in-flight window: "
        "MQTT_RECEIVE_MAXIMUM on MQTT 5, 20 on 3.1.1); past it the longest-held is refused.",
    )

    # --- queries -------------------------------------------------------------------------------
    telemetry_max_points: int = Field(
        default=5_000, ge=1, description="Most points (rows or buckets) one history query returns."
    )
    telemetry_max_range_s: float = Field(
        default=31 * 86400.0, gt=0, description="Longest time range one history query may span."
    )
    telemetry_max_scan_rows: int = Field(
        default=200_000, ge=1, description="Most rows one downsampled query may average over."
    )
    telemetry_default_window_s: float = Field(
        default=3600.0, gt=0, description="Range served when `since` is not given."
    )

    # --- stream --------------------------------------------------------------------------------
    stream_client_queue: int = Field(
        default=1_000, ge=1, description="Events buffered per stream client before it is dropped."
    )
    stream_heartbeat_s: float = Field(default=10.0, gt=0, description="Idle comment interval.")

    # --- maintenance ---------------------------------------------------------------------------
    policy: Policy = Field(
        default="predictive",
        description="Who plans maintenance: reactive (nobody; robots are repaired when they "
        "break), preventive (fixed operating-hour intervals) or predictive (the engine's RUL).",
    )
    engine_warmup_h: float = Field(
        default=168.0,
        ge=0.0,
        description="On start, replay this many simulated hours of stored telemetry and events "
        "into the engine so a restart does not forget a degrading component; 0 starts blank.",
    )
    engine_warmup_max_rows: int = Field(
        default=200_000, ge=0, description="Most readings per robot the warm-up replays."
    )
    fault_command_expiry_s: float = Field(
        default=6 * 3600.0,
        gt=0.0,
        le=365 * 86400.0,
        description="Simulated seconds an inject_fault command stays valid; a robot that comes "
        "back later rejects it as expired.",
    )
    alarm_history_max_rows: int = Field(
        default=10_000,
        ge=1,
        description="Cleared alarms kept in the store; oldest trimmed past it.",
    )

    leader_poll_s: float = Field(
        default=1.0,
        gt=0.0,
        le=60.0,
        description="On PostgreSQL: how often a standby worker tries to take the engine lock; "
        "a dead leader is replaced within about this long plus the restore.",
    )

    # --- access --------------------------------------------------------------------------------
    api_key: SecretStr | None = Field(
        default=None, description="X-API-Key for write endpoints; unset means writes are refused."
    )
    require_key_for_reads: bool = Field(default=False, description="Protect reads as well.")
    broker_log_path: Path | None = Field(
        default=None,
        description="Mosquitto's log file, written with log_type all, for the protocol inspector "
        "(the mqtt stream channel); unset: the inspector shows messages only.",
    )
    broker_ws_url: str | None = Field(
        default=None,
        description="The broker's MQTT-over-WebSocket address for the participant page (/join), "
        "e.g. ws://127.0.0.1:9001; the page puts in the host it was reached at.",
    )
    api_key_hint: str | None = Field(
        default=None,
        description="Where people find the API key, shown on the dashboard's key panel "
        "(factory serve: the key file's absolute path).",
    )
    tls_certfile: Path | None = Field(
        default=None,
        description="Serve HTTPS with this certificate chain (PEM); with TLS_KEYFILE. "
        "`factory serve --tls` uses STATE_DIR/tls/server.pem.",
    )
    tls_keyfile: Path | None = Field(
        default=None, description="The private key of TLS_CERTFILE (PEM)."
    )
    write_rate_per_s: float = Field(
        default=5.0, gt=0, description="Writes per second per API key, sustained (429 past it)."
    )
    write_burst: int = Field(default=30, ge=1, description="Writes per API key at once.")

    @field_validator("broker_url")
    @classmethod
    def _mqtt_url(cls, url: str) -> str:
        parse_broker_url(url)
        return url

    @field_validator("db_url")
    @classmethod
    def _postgres_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(POSTGRES_SCHEMES):
            raise ValueError(f"a database URL starts with postgresql://, not {url[:20]!r}")
        return url

    @property
    def https(self) -> tuple[Path, Path] | None:
        """(certificate, key) when the API is served over HTTPS."""
        if self.tls_certfile is None or self.tls_keyfile is None:
            return None
        return self.tls_certfile, self.tls_keyfile

    @model_validator(mode="after")
    def _both_tls_files(self) -> Settings:
        if (self.tls_certfile is None) != (self.tls_keyfile is None):
            raise ValueError("set both tls_certfile and tls_keyfile for HTTPS, or neither")
        return self

    @property
    def database(self) -> Path:
        return self.db_path if self.db_path is not None else self.state_dir / DB_FILE

    @property
    def subscription(self) -> str:
        if self.mqtt_shared_group:
            return f"$share/{self.mqtt_shared_group}/{self.mqtt_topic_filter}"
        return self.mqtt_topic_filter


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (``FACTORY_*``), with ``overrides`` taking precedence."""
    return Settings(**overrides)
