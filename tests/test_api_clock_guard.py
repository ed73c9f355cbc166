"""The clock guard's rule, without I/O: what time the service trusts (docs/contract.md)."""

from __future__ import annotations

from api.ingest.clock_guard import ClockGuard, ClockRule, trusted_clock
from api.settings import Settings
from contract.payloads import Reading, State, Telemetry
from contract.topics import Channel

T0 = 1_767_592_800.0
YEAR_S = 365 * 86400.0
RULE = ClockRule(lead_intervals=4.0, lead_min_s=60.0, lead_wall_s=5.0, replay_window_s=3600.0)


class Wall:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def tele(robot: str, ts: float, seq: int = 1, *, first_ts: float | None = None) -> Telemetry:
    readings = [Reading(ts=t, temperature_c=40.0) for t in sorted({first_ts or ts, ts})]
    return Telemetry(v=1, robot=robot, ts=ts, boot="boot-1", seq=seq, readings=readings)


def guard(*robots: tuple[str, float], interval_s: float | None = 10.0) -> ClockGuard:
    g = ClockGuard.resumed(RULE, [(r, ts, interval_s) for r, ts in robots])
    g.wall = Wall()
    return g


def test_the_first_message_of_an_empty_fleet_is_trusted() -> None:
    assert guard().check(Channel.TELEMETRY, tele("a", T0)) is None


def test_a_year_ahead_is_refused_and_the_robot_keeps_its_true_time() -> None:
    g = guard(("a", T0), ("b", T0))
    why = g.check(Channel.TELEMETRY, tele("a", T0 + YEAR_S))
    assert why is not None
    assert why.ahead
    assert "ahead" in why.detail
    assert g.newest["a"] == T0
    assert g.check(Channel.TELEMETRY, tele("a", T0 + 10)) is None  # a genuine one still lands


def test_the_lead_is_a_few_sample_intervals_or_the_floor() -> None:
    g = guard(("a", T0), ("b", T0), interval_s=30.0)
    assert g.lead_s("a") == 120.0  # 4 × 30 s, over the 60 s floor
    assert g.check(Channel.TELEMETRY, tele("a", T0 + 120)) is None
    assert g.check(Channel.TELEMETRY, tele("b", T0 + 241)) is not None  # 121 s past a
    assert guard(("a", T0), interval_s=1.0).lead_s("a") == 60.0


def test_one_robot_cannot_walk_the_clock_by_small_steps() -> None:
    g = guard(("a", T0), ("b", T0))
    accepted = [
        g.check(Channel.TELEMETRY, tele("a", T0 + 50.0 * step, seq=step)) is None
        for step in range(1, 20)
    ]
    assert accepted[:1] == [True]
    assert not any(accepted[2:])
    assert g.newest["a"] <= T0 + g.lead_s("a")


def test_a_fleet_wide_jump_is_followed_once_a_second_robot_confirms_it() -> None:
    """A simulator started a day later: the first robot is refused, the second confirms it."""
    g = guard(("a", T0), ("b", T0), ("c", T0))
    later = T0 + 86400.0
    assert g.check(Channel.TELEMETRY, tele("a", later)) is not None
    assert g.check(Channel.TELEMETRY, tele("b", later + 1)) is None
    assert g.check(Channel.TELEMETRY, tele("a", later + 2)) is None
    assert g.check(Channel.TELEMETRY, tele("c", later + 3)) is None


def test_a_claim_expires_so_a_later_second_paste_is_refused_too() -> None:
    g = guard(("a", T0), ("b", T0))
    wall = g.wall
    assert isinstance(wall, Wall)
    assert g.check(Channel.TELEMETRY, tele("a", T0 + YEAR_S)) is not None
    wall.now += RULE.claim_ttl_s + 1
    assert g.check(Channel.TELEMETRY, tele("b", T0 + YEAR_S)) is not None


def test_store_and_forward_within_the_replay_window_lands_older_is_refused() -> None:
    g = guard(("a", T0 + 7200), ("b", T0 + 7200))
    replay = tele("a", T0 + 3700, seq=2)
    replay = replay.model_copy(update={"historical": True})
    assert g.check(Channel.TELEMETRY, replay) is None
    why = g.check(Channel.TELEMETRY, tele("a", T0 + 7200, seq=3, first_ts=T0 + 3000))
    assert why is not None
    assert not why.ahead
    assert "behind" in why.detail


def test_a_late_state_is_not_refused_for_being_behind() -> None:
    """A last will carries its connect time; retained state is ordered by seq, not by ts."""
    g = guard(("a", T0 + YEAR_S / 2), ("b", T0 + YEAR_S / 2))
    will = State(v=1, robot="a", ts=T0, boot="boot-1", seq=0, state="OFFLINE", since=T0)
    assert g.check(Channel.STATE, will) is None


def test_a_state_since_far_ahead_is_refused() -> None:
    g = guard(("a", T0), ("b", T0))
    state = State(v=1, robot="a", ts=T0, boot="boot-1", seq=5, state="IDLE", since=T0 + YEAR_S)
    assert g.check(Channel.STATE, state) is not None


def test_the_pace_widens_the_lead_at_a_high_factor() -> None:
    g = guard(("a", T0), ("b", T0))
    wall = g.wall
    assert isinstance(wall, Wall)
    assert g.lead_s("a") == 60.0
    for step in range(1, 200):  # 50 simulated seconds a step, 600 per wall second
        wall.now = step * 50.0 / 600.0
        assert g.check(Channel.TELEMETRY, tele("a", T0 + 50.0 * step, seq=step)) is None
        assert g.check(Channel.TELEMETRY, tele("b", T0 + 50.0 * step, seq=step)) is None
    assert 2000.0 < g.lead_s("a") <= 3000.0  # about 600 × 5 s once the pace is known


def test_an_explicit_lead_wins() -> None:
    g = ClockGuard.resumed(ClockRule(lead_s=5.0), [("a", T0, 300.0), ("b", T0, 300.0)])
    assert g.check(Channel.TELEMETRY, tele("a", T0 + 6)) is not None


def test_a_resume_repairs_a_clock_one_robot_poisoned() -> None:
    lead = {"a": 60.0, "b": 60.0, "c": 60.0}.__getitem__
    clock, poisoned = trusted_clock([("a", T0 + YEAR_S), ("b", T0), ("c", T0 + 30)], lead)
    assert (clock, poisoned) == (T0 + 30, ["a"])
    assert trusted_clock([("a", T0 + YEAR_S)], lead) == (T0 + YEAR_S, [])
    assert trusted_clock([], lead) == (None, [])


def test_held_messages_leave_the_broker_room_to_deliver_the_rest() -> None:
    assert ClockRule.of(Settings(mqtt_receive_maximum=1000)).hold_max == 500
    assert ClockRule.of(Settings(mqtt_receive_maximum=100)).hold_max == 50
    assert ClockRule.of(Settings(mqtt_protocol="mqtt311")).hold_max == 10  # Mosquitto's 20
    assert ClockRule.of(Settings(clock_hold_max=7)).hold_max == 7
