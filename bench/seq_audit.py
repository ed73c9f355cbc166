"""Lost and duplicated readings, counted from ``seq``: what the scale benches report per run.

A robot numbers every message it makes, on every channel, ``1, 2, 3 …`` within a boot
(``docs/contract.md``): the published sequence is gapless. The benches record what was published
(by the bench's own publishers, or by an observer subscribed to ``factory/#`` from before the
first robot connects) and compare it with what the store holds:

* ``unseen``: numbers missing from what the observer got (``1 … max`` per robot and boot): the
  broker or the observer lost them, so ``lost`` cannot be trusted past this;
* ``lost``: published messages of a stored channel (telemetry, event, truth) not in the store;
* ``extra``: stored messages nobody published (should never happen);
* ``duplicated``: reading rows stored more than once for one ``(robot, boot, seq, idx)``.

Pure functions plus two read-only queries that work on ``sqlite3`` and ``psycopg`` connections
alike (no parameters): ``tests/test_bench_seq_audit.py`` checks the counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Channels the store keeps one row (or message key) per published message of.
STORED_CHANNELS = frozenset({"telemetry", "event", "truth"})
Key = tuple[str, str]  # (robot, boot)


def audit(
    published: Mapping[Key, Mapping[int, str]],
    stored: Iterable[tuple[str, str, int]],
    duplicated_rows: int,
) -> dict[str, int]:
    """``published``: per (robot, boot), seq → channel; ``stored``: (robot, boot, seq) keys."""
    stored_keys = set(stored)
    unseen = lost = wanted = 0
    expected: set[tuple[str, str, int]] = set()
    for (robot, boot), by_seq in published.items():
        if by_seq:
            unseen += max(by_seq) - len(by_seq)
        for seq, channel in by_seq.items():
            if channel in STORED_CHANNELS:
                wanted += 1
                expected.add((robot, boot, seq))
                if (robot, boot, seq) not in stored_keys:
                    lost += 1
    return {
        "published_messages": sum(len(s) for s in published.values()),
        "stored_channel_messages": wanted,
        "unseen": unseen,
        "lost": lost,
        "extra": len(stored_keys - expected),
        "duplicated": duplicated_rows,
    }


STORED_KEYS_SQL = (
    "SELECT robot, boot, seq FROM telemetry_messages "
    "UNION ALL SELECT robot, boot, seq FROM events "
    "UNION ALL SELECT robot, boot, seq FROM truth"
)
DUPLICATED_SQL = (
    "SELECT coalesce(sum(n - 1), 0) FROM "
    "(SELECT count(*) AS n FROM telemetry GROUP BY robot, boot, seq, idx) AS per_reading"
)


def stored_keys(conn: Any) -> list[tuple[str, str, int]]:
    """Every stored message key (a connection of either store, searching the right schema)."""
    return [(str(r), str(b), int(s)) for r, b, s in conn.execute(STORED_KEYS_SQL).fetchall()]


def duplicated_rows(conn: Any) -> int:
    row = conn.execute(DUPLICATED_SQL).fetchone()
    return int(row[0]) if row else 0


def percentile(values: list[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``; ``None`` when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
