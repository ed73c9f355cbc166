"""The PostgreSQL store's tables, created on start, and TimescaleDB when the server has it.

The same tables as the SQLite store (:mod:`api.store.sqlite_schema`,
:mod:`api.store.sqlite_maintenance`) with PostgreSQL types. ``telemetry_messages``, ``events`` and
``truth`` hold the contract's identity ``(robot, boot, seq)`` as a unique key, so several ingest
workers writing into one database still store a message once. ``telemetry`` has no unique key (its
rows are new only when their message is) and an index on ``(robot, ts)`` for history queries; with
the ``timescaledb`` extension available it becomes a hypertable chunked by simulated day (the
simulated time ``ts`` is float seconds, mapped to integer microseconds by ``factory_ts_us`` for
TimescaleDB).
"""

from __future__ import annotations

import logging

import psycopg

from api.store.sqlite_schema import METRIC_COLUMNS, SCHEMA_VERSION

log = logging.getLogger(__name__)

#: One chunk of the hypertable per simulated day, in the microseconds of ``factory_ts_us``.
CHUNK_US = 86_400 * 1_000_000

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}') ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS robots (
    robot TEXT PRIMARY KEY, site TEXT NOT NULL, area TEXT NOT NULL, line TEXT NOT NULL,
    kind TEXT, model TEXT, birth JSONB, birth_boot TEXT, birth_seq BIGINT,
    state TEXT, state_since DOUBLE PRECISION, state_reason TEXT, state_boot TEXT, state_seq BIGINT,
    last_seen DOUBLE PRECISION, last_received_at DOUBLE PRECISION, latest_ts DOUBLE PRECISION,
    latest TEXT
);
CREATE TABLE IF NOT EXISTS telemetry_messages (
    robot TEXT NOT NULL, boot TEXT NOT NULL, seq BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (robot, boot, seq)
);
CREATE TABLE IF NOT EXISTS telemetry (
    robot TEXT NOT NULL, ts DOUBLE PRECISION NOT NULL, boot TEXT NOT NULL, seq BIGINT NOT NULL,
    idx INTEGER NOT NULL, historical BOOLEAN NOT NULL,
    {", ".join(f"{m} DOUBLE PRECISION" for m in METRIC_COLUMNS)}
);
CREATE INDEX IF NOT EXISTS telemetry_robot_ts ON telemetry (robot, ts);
CREATE TABLE IF NOT EXISTS events (
    robot TEXT NOT NULL, boot TEXT NOT NULL, seq BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    kind TEXT NOT NULL, body TEXT NOT NULL, received_at DOUBLE PRECISION NOT NULL,
    UNIQUE (robot, boot, seq)
);
CREATE INDEX IF NOT EXISTS events_robot_ts ON events (robot, ts);
CREATE TABLE IF NOT EXISTS truth (
    robot TEXT NOT NULL, boot TEXT NOT NULL, seq BIGINT NOT NULL, ts DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL, UNIQUE (robot, boot, seq)
);
CREATE INDEX IF NOT EXISTS truth_robot_ts ON truth (robot, ts);
CREATE TABLE IF NOT EXISTS dead_letters (
    id BIGSERIAL PRIMARY KEY, received_at DOUBLE PRECISION NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, size INTEGER NOT NULL, payload BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS reject_counts (reason TEXT PRIMARY KEY, count BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS work_orders (
    id TEXT PRIMARY KEY, robot TEXT NOT NULL, component TEXT NOT NULL, status TEXT NOT NULL,
    active BOOLEAN NOT NULL, created_ts DOUBLE PRECISION NOT NULL,
    updated_ts DOUBLE PRECISION NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS work_orders_created ON work_orders (created_ts);
CREATE TABLE IF NOT EXISTS work_order_transitions (
    work_order TEXT NOT NULL, idx INTEGER NOT NULL, ts DOUBLE PRECISION NOT NULL,
    from_status TEXT, status TEXT NOT NULL, reason TEXT NOT NULL, PRIMARY KEY (work_order, idx)
);
CREATE TABLE IF NOT EXISTS alarms (
    id TEXT PRIMARY KEY, robot TEXT NOT NULL, component TEXT, signal TEXT NOT NULL,
    severity TEXT NOT NULL, limit_name TEXT NOT NULL, value DOUBLE PRECISION NOT NULL,
    message TEXT NOT NULL, raised_ts DOUBLE PRECISION NOT NULL, cleared_ts DOUBLE PRECISION,
    cleared_reason TEXT
);
CREATE INDEX IF NOT EXISTS alarms_raised ON alarms (raised_ts);
"""

#: Serializes schema creation between workers starting together (``CREATE … IF NOT EXISTS`` is
#: not safe against a concurrent twin); any constant works, this one spells "schm".
SCHEMA_LOCK_KEY = 0x7363686D

HYPERTABLE = f"""
CREATE OR REPLACE FUNCTION factory_ts_us(double precision) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT ($1 * 1000000)::bigint';
SELECT create_hypertable('telemetry', 'ts', chunk_time_interval => {CHUNK_US},
    time_partitioning_func => 'factory_ts_us', if_not_exists => TRUE, migrate_data => TRUE);
"""


def create_schema(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    """Create the tables (idempotent, safe with several workers starting at once); make
    ``telemetry`` a hypertable when TimescaleDB is available. Returns whether it is one."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        conn.execute(SCHEMA.encode())
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        return False
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute(HYPERTABLE.encode())
    except psycopg.Error as exc:
        # Not preloaded, not permitted, an old version: a plain table still works.
        log.warning("TimescaleDB is available but telemetry stays a plain table: %s", exc)
        return False
    log.info("telemetry is a TimescaleDB hypertable")
    return True
