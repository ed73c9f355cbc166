"""Readiness says why the service is not ingesting, including a consumer that has died."""

from __future__ import annotations

import asyncio

from api.app import _consumer_ended
from api.live import LiveState


def _ended(coroutine_raises: BaseException | None, cancel: bool = False) -> LiveState:
    live = LiveState()
    live.broker_problem = None

    async def body() -> None:
        if coroutine_raises is not None:
            raise coroutine_raises
        await asyncio.sleep(10)

    async def main() -> None:
        task = asyncio.create_task(body())
        task.add_done_callback(lambda t: _consumer_ended(t, live))
        if cancel:
            await asyncio.sleep(0)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # done callbacks run on the next turn

    asyncio.run(main())
    return live


def test_a_consumer_that_died_makes_the_service_not_ready() -> None:
    live = _ended(RuntimeError("disk on fire"))
    assert live.problems() == [
        "the ingest consumer stopped (RuntimeError: disk on fire); restart the service"
    ]


def test_a_consumer_cancelled_at_shutdown_is_not_a_problem() -> None:
    assert _ended(None, cancel=True).problems() == []
