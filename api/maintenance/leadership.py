"""Which ingest worker runs the maintenance engine: a PostgreSQL advisory lock, with failover.

Several ``factory serve`` workers on one PostgreSQL all ingest and serve the API, but exactly one
may plan work orders and send commands. Each worker tries ``pg_try_advisory_lock`` every
``poll_s`` on a connection of its own that does nothing else; the one that gets it is the
leader for as long as that connection lives. The lock is session-level: when the leader dies —
even by SIGKILL — the kernel closes its socket, PostgreSQL ends the session and releases the
lock, and the next worker to poll takes it. A leader that hung without dying is caught by TCP
keepalives on that connection (``keepalives_*`` below: about ``KEEPALIVE_S`` + 3 probes). So a
take-over happens within ``poll_s`` of the leader's connection ending, plus the new leader's
restore and warm-up from the store (``api.warmup``).

A leader that loses its connection (PostgreSQL restarted, network cut) can no longer be sure it
is alone, so it steps down at once (``on_lost``) and competes again like any worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

log = logging.getLogger(__name__)

#: The advisory lock of the engine leader is (this, hash of the schema the store lives in):
#: one engine per plant, and plants in different schemas of one database do not contend.
LEADER_LOCK_CLASS = 0x656E676E  # "engn"
DEFAULT_POLL_S = 1.0
KEEPALIVE_S = 5


class Leadership:
    """Compete for the engine lock; call ``on_elected`` when won and ``on_lost`` when the lock
    connection breaks. ``run`` loops until cancelled (then releases the lock)."""

    def __init__(
        self,
        url: str,
        worker: str,
        on_elected: Callable[[], Awaitable[None]],
        on_lost: Callable[[], Awaitable[None]],
        *,
        poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        self.url = url
        self.worker = worker
        self.poll_s = poll_s
        self._on_elected = on_elected
        self._on_lost = on_lost
        self._conn: psycopg.Connection[Any] | None = None
        self.leader = False
        #: What stands in the way right now (no database, …), for logs and /readyz.
        self.problem: str | None = None
        self.elections = 0

    async def run(self) -> None:
        try:
            while True:
                await self._step()
                await asyncio.sleep(self.poll_s)
        finally:
            await asyncio.to_thread(self._close)

    async def _step(self) -> None:
        try:
            if self.leader:
                await asyncio.to_thread(self._check)
            else:
                won = await asyncio.to_thread(self._try_lock)
                self.problem = None
                if won:
                    self.leader = True
                    self.elections += 1
                    log.info("worker %s leads the maintenance engine", self.worker)
                    await self._on_elected()
        except psycopg.Error as exc:
            self.problem = f"cannot reach the database for the engine lock: {exc}"
            await asyncio.to_thread(self._close)
            if self.leader:
                self.leader = False
                log.warning("worker %s lost the engine lock (%s); stepping down", self.worker, exc)
                await self._on_lost()

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=10,
                keepalives=1,
                keepalives_idle=KEEPALIVE_S,
                keepalives_interval=KEEPALIVE_S,
                keepalives_count=3,
                application_name=f"factory-engine-lock {self.worker}"[:63],
            )
        return self._conn

    def _try_lock(self) -> bool:
        row = self._connection().execute(
            "SELECT pg_try_advisory_lock(%s, hashtext(current_schema()))", (LEADER_LOCK_CLASS,)
        )
        got = row.fetchone()
        return bool(got and got[0])

    def _check(self) -> None:
        """The lock lives as long as its session: a round trip proves the session does."""
        conn = self._conn
        if conn is None or conn.closed:
            raise psycopg.OperationalError("the lock connection is gone")
        conn.execute("SELECT 1")

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()  # ends the session: the lock is released
            self._conn = None
