"""The engine lock on a real PostgreSQL: one leader at a time, the next one takes over when the
leader's session ends, and the lock is per schema (two plants in one database do not contend)."""

from __future__ import annotations

import asyncio
import time

import psycopg
from store_backends import PostgresSchema

from api.maintenance.leadership import Leadership


class Seat:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def elected(self) -> None:
        self.events.append("elected")

    async def lost(self) -> None:
        self.events.append("lost")


async def until(probe, timeout_s: float = 10.0) -> float:  # type: ignore[no-untyped-def]
    began = time.monotonic()
    while not probe():
        assert time.monotonic() - began < timeout_s, "condition not met in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - began


def test_one_leader_and_a_take_over_when_its_session_ends(postgres_schema: PostgresSchema) -> None:
    async def scenario() -> None:
        seats = [Seat(), Seat()]
        candidates = [
            Leadership(postgres_schema.store_url, f"w{k}", s.elected, s.lost, poll_s=0.05)
            for k, s in enumerate(seats)
        ]
        first = asyncio.create_task(candidates[0].run())
        await until(lambda: candidates[0].leader)
        second = asyncio.create_task(candidates[1].run())
        await asyncio.sleep(0.3)  # several polls: the lock is taken
        assert not candidates[1].leader
        # The leader's session ends (as when its process is killed): the other takes over.
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        took_s = await until(lambda: candidates[1].leader)
        assert took_s < 2.0
        assert seats[1].events == ["elected"]
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)

    asyncio.run(scenario())


def test_a_leader_whose_connection_breaks_steps_down(postgres_schema: PostgresSchema) -> None:
    async def scenario() -> None:
        seat = Seat()
        leadership = Leadership(
            postgres_schema.store_url, "w0", seat.elected, seat.lost, poll_s=0.05
        )
        task = asyncio.create_task(leadership.run())
        await until(lambda: leadership.leader)
        with psycopg.connect(postgres_schema.url, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'factory-engine-lock w0'"
            )
        await until(lambda: "lost" in seat.events)
        await until(lambda: leadership.leader)  # and competes again, winning the free lock
        assert seat.events == ["elected", "lost", "elected"]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(scenario())


def test_plants_in_other_schemas_do_not_contend(postgres_schema: PostgresSchema) -> None:
    other = PostgresSchema()
    try:

        async def scenario() -> None:
            seats = [Seat(), Seat()]
            both = [
                Leadership(schema.store_url, "w", s.elected, s.lost, poll_s=0.05)
                for schema, s in zip((postgres_schema, other), seats, strict=True)
            ]
            tasks = [asyncio.create_task(c.run()) for c in both]
            await until(lambda: all(c.leader for c in both))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run(scenario())
    finally:
        other.drop()
