"""The store's part in the clock guard, on both stores (a SQLite file, a PostgreSQL schema): the
previous run's pace, and the repair of a robot poisoned before the guard existed."""

from __future__ import annotations

from store_backends import Backend

from api.store import Accepted
from contract.payloads import Parts, Reading, Telemetry
from contract.topics import Channel, Topic

T0 = 1_767_592_800.0
YEAR_S = 365 * 86400.0


def topic(robot: str, channel: Channel) -> Topic:
    return Topic("plant-1", "body-shop", "line-1", robot, channel)


def parts(robot: str, seq: int, ts: float, received_at: float) -> Accepted:
    payload = Parts(v=1, robot=robot, ts=ts, boot="boot-1", seq=seq, kind="parts", good=1, scrap=0)
    return Accepted(topic(robot, Channel.EVENT), payload, received_at)


def reading(robot: str, seq: int, ts: float) -> Accepted:
    r = Reading(ts=ts, temperature_c=40.0 + seq)
    payload = Telemetry(v=1, robot=robot, ts=ts, boot="boot-1", seq=seq, readings=[r])
    return Accepted(topic(robot, Channel.TELEMETRY), payload, 1.0)


def test_the_previous_runs_pace_comes_from_the_newest_events(store_backend: Backend) -> None:
    store = store_backend.open()
    try:
        assert store.recent_pace() is None  # nothing yet
        store.write([parts("r-1", 1, T0, 1000.0)], [])
        assert store.recent_pace() is None  # one event spans no wall time
        store.write([parts("r-1", s, T0 + 600.0 * s, 1000.0 + s) for s in range(2, 12)], [])
        assert store.recent_pace() == 600.0  # 6,600 simulated s over 11 wall s
    finally:
        store.close()


def test_a_repair_drops_what_is_past_the_bound_and_recomputes_the_robot(
    store_backend: Backend,
) -> None:
    store = store_backend.open()
    try:
        store.write(
            [
                reading("r-1", 1, T0),
                reading("r-1", 2, T0 + 60),
                reading("r-1", 3, T0 + YEAR_S),
                parts("r-1", 4, T0 + YEAR_S, 1.0),
            ],
            [],
        )
        assert store.repair_clock("r-1", T0 + 300) == 2
        robot = store.robot("r-1")
        assert robot is not None
        assert robot.last_seen == T0 + 60
        assert robot.latest is not None
        assert robot.latest.ts == T0 + 60
        assert robot.latest.values == {"temperature_c": 42.0}
        assert store.clock() == T0 + 60
        assert store.reject_counts() == {"clock": 2}
    finally:
        store.close()
