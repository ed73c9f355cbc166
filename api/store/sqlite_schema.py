"""The SQLite store's tables and the statements the write path repeats.

``telemetry`` is clustered by ``(robot, ts)`` (``WITHOUT ROWID``) so a history query is one
sequential range scan; a telemetry message's identity goes into ``telemetry_messages`` first and
decides whether its readings are new. ``events`` and ``truth`` are one row per message with the
identity as a UNIQUE key. Metric columns follow the contract's ``METRICS``.
"""

from __future__ import annotations

from contract.payloads import METRICS

SCHEMA_VERSION = 1
METRIC_COLUMNS = tuple(METRICS)

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '{SCHEMA_VERSION}');
CREATE TABLE IF NOT EXISTS robots (
    robot TEXT PRIMARY KEY, site TEXT NOT NULL, area TEXT NOT NULL, line TEXT NOT NULL,
    kind TEXT, model TEXT, birth TEXT, birth_boot TEXT, birth_seq INTEGER,
    state TEXT, state_since REAL, state_reason TEXT, state_boot TEXT, state_seq INTEGER,
    last_seen REAL, last_received_at REAL, latest_ts REAL, latest TEXT
);
CREATE TABLE IF NOT EXISTS telemetry_messages (
    robot TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (robot, boot, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS telemetry (
    robot TEXT NOT NULL, ts REAL NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL,
    idx INTEGER NOT NULL, historical INTEGER NOT NULL,
    {", ".join(f"{m} REAL" for m in METRIC_COLUMNS)},
    PRIMARY KEY (robot, ts, boot, seq, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    robot TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,
    kind TEXT NOT NULL, body TEXT NOT NULL, received_at REAL NOT NULL,
    UNIQUE (robot, boot, seq)
);
CREATE INDEX IF NOT EXISTS events_robot_ts ON events (robot, ts);
CREATE TABLE IF NOT EXISTS truth (
    robot TEXT NOT NULL, boot TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,
    body TEXT NOT NULL, UNIQUE (robot, boot, seq)
);
CREATE INDEX IF NOT EXISTS truth_robot_ts ON truth (robot, ts);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, received_at REAL NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, detail TEXT NOT NULL, size INTEGER NOT NULL, payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS reject_counts (reason TEXT PRIMARY KEY, count INTEGER NOT NULL);
"""

INSERT_MESSAGE = (
    "INSERT OR IGNORE INTO telemetry_messages (robot, boot, seq, ts) VALUES (?, ?, ?, ?)"
)
INSERT_READING = (
    f"INSERT INTO telemetry (robot, ts, boot, seq, idx, historical, "
    f"{', '.join(METRIC_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?{', ?' * len(METRIC_COLUMNS)})"
)
