"""A worker's view of every message (``api/ingest/view.py``): its in-memory dedupe, pure."""

from __future__ import annotations

from test_store_sqlite import T0, tele

from api.ingest.view import RecentKeys
from api.store import Accepted
from contract.payloads import State
from contract.topics import Channel, Topic


def test_the_view_drops_redeliveries_but_not_a_will_that_fires_again() -> None:
    def state(seq: int, name: str) -> Accepted:
        payload = State(v=1, robot="r-1", ts=T0, boot="boot-1", seq=seq, state=name, since=T0)  # type: ignore[arg-type]
        return Accepted(Topic("s", "a", "l", "r-1", Channel.STATE), payload, 1.0)

    seen = RecentKeys(size=3)
    reading = tele("r-1", 5, (T0, 0.5))
    assert seen.first_time(reading)
    assert not seen.first_time(reading)  # a QoS 1 redelivery
    assert [seen.first_time(s) for s in (state(10, "RUNNING"), state(10, "RUNNING"))] == [
        True,
        False,  # the retained state re-sent on reconnect
    ]
    assert seen.first_time(state(0, "OFFLINE"))  # the will
    assert seen.first_time(state(11, "RUNNING"))  # back
    assert seen.first_time(state(0, "OFFLINE"))  # the will again, same boot: still news
    for seq in range(6, 10):  # the window forgets the oldest identities
        seen.first_time(tele("r-1", seq, (T0 + seq, 0.5)))
    assert seen.first_time(reading)
