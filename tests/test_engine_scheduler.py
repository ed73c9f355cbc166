"""The scheduler: downtime windows before the deadline, technicians, lines, fallback, late."""

from typing import Literal

import pytest
from test_engine_factory import DAY, HOUR, START_TS, make_scenario

from engine.config import PlanningConfig
from engine.scheduler import Booking, Scheduler, SlotRequest, SlotUnavailable, max_overlap

MONDAY = START_TS - 6 * HOUR  # 2026-01-05 00:00 UTC


def at(day: int, hour: float) -> float:
    """Monday = day 0."""
    return MONDAY + day * DAY + hour * HOUR


def scheduler(technicians: int = 2, line_limit: int = 1) -> Scheduler:
    scenario = make_scenario(robots=3, lines=2, line_limit=line_limit, technicians=technicians)
    return Scheduler.for_scenario(scenario, PlanningConfig())


def job(
    robot: str = "r11",
    line: str = "line-1",
    hours: float = 2.0,
    now: float = at(0, 8),
    deadline: float | None = at(3, 12),
    limit: float | None = None,
    prefer: Literal["earliest", "latest"] = "earliest",
) -> SlotRequest:
    return SlotRequest(robot, line, hours * HOUR, now, deadline, limit, prefer)


def booked(robot: str, line: str, start: float, hours: float, **kw: bool) -> Booking:
    return Booking(robot, line, start, start + hours * HOUR, f"job-{robot}", **kw)


def test_earliest_downtime_window_before_the_deadline() -> None:
    placement = scheduler().place(job(), [])
    assert placement is not None
    assert (placement.start_ts, placement.end_ts) == (at(0, 22), at(0, 24))
    assert placement.mode == "window"
    assert placement.lost_production_s == 0.0
    assert placement.reason == (
        "placed in Mon 22:00–24:00 downtime window, 2 of 2 technicians free"
    )


def test_the_job_must_end_by_the_deadline_not_just_start() -> None:
    # Monday's window opens before the deadline (23:00) but a 2 h job would end at 24:00.
    placement = scheduler().place(job(deadline=at(0, 23), limit=at(2, 12)), [])
    assert placement is not None
    assert placement.mode == "fallback"
    # Tuesday's window would end after the deadline too, so the fallback takes the slot that
    # loses no production before the failure: Monday 22:00 is the earliest of those.
    assert placement.start_ts == at(0, 22)
    assert placement.lost_production_s == 0.0
    assert "no downtime window fits before the deadline 2026-01-05 23:00" in placement.reason
    assert "ends before the predicted failure 2026-01-07 12:00" in placement.reason
    # A 1 h job fits the window before the deadline.
    short = scheduler().place(job(hours=1.0, deadline=at(0, 23)), [])
    assert short is not None
    assert short.mode == "window"
    assert short.start_ts == at(0, 22)


def test_technician_capacity_pushes_the_job_to_the_next_window() -> None:
    busy = [booked("r12", "line-1", at(0, 22), 2), booked("r21", "line-2", at(0, 22), 2)]
    placement = scheduler(line_limit=2).place(job(), busy)
    assert placement is not None
    assert placement.start_ts == at(1, 22)
    assert "skipped Mon 22:00–24:00: all 2 technicians busy" in placement.reason
    # One technician, busy Mon 22–23: a 1 h job goes right after.
    one = scheduler(technicians=1).place(job(hours=1), [booked("r21", "line-2", at(0, 22), 1)])
    assert one is not None
    assert one.start_ts == at(0, 23)
    assert one.reason.endswith("1 of 1 technicians free")


def test_line_limit_keeps_other_robots_of_the_line_running() -> None:
    same_line = [booked("r12", "line-1", at(0, 22), 2)]
    placement = scheduler(line_limit=1).place(job(), same_line)
    assert placement is not None
    assert placement.start_ts == at(1, 22)
    assert "line-1 already has 1 of 1 robots stopped" in placement.reason
    other_line = [booked("r21", "line-2", at(0, 22), 2)]
    placement = scheduler(line_limit=1).place(job(), other_line)
    assert placement is not None
    assert placement.start_ts == at(0, 22)
    assert placement.reason.endswith("1 of 2 technicians free")
    # Two allowed at once on the line: both fit Monday.
    placement = scheduler(line_limit=2).place(job(), same_line)
    assert placement is not None
    assert placement.start_ts == at(0, 22)


def test_a_robot_has_one_job_at_a_time_and_repairs_take_technicians() -> None:
    own = [booked("r11", "line-1", at(0, 22), 1)]
    placement = scheduler().place(job(hours=1), own)
    assert placement is not None
    assert placement.start_ts == at(0, 23)
    # An unplanned repair holds a technician but does not count as a planned stop of the line.
    repair = booked("r12", "line-1", at(0, 20), 5, stops_robot=False)
    placement = scheduler(technicians=2, line_limit=1).place(job(), [repair])
    assert placement is not None
    assert placement.start_ts == at(0, 22)
    assert placement.reason.endswith("1 of 2 technicians free")


def test_fallback_takes_the_least_lost_production_before_the_failure() -> None:
    # Deadline before any window; failure Monday 20:00: no window-like slot before it.
    placement = scheduler().place(job(hours=1, deadline=at(0, 10), limit=at(0, 20)), [])
    assert placement is not None
    assert placement.mode == "fallback"
    # 11:30–12:30 and 12:00–13:00 each lose 30 min (the lunch break); the earlier wins.
    assert placement.start_ts == at(0, 11.5)
    assert placement.lost_production_s == 1800.0
    assert "(30 min of production lost)" in placement.reason


def test_late_when_nothing_ends_before_the_failure() -> None:
    placement = scheduler().place(job(hours=1, deadline=at(0, 8), limit=at(0, 8.5)), [])
    assert placement is not None
    assert placement.mode == "late"
    assert placement.start_ts == at(0, 8)  # now
    assert placement.lost_production_s == 3600.0
    assert "no free slot ends before 2026-01-05 08:30: late" in placement.reason


def test_a_passed_deadline_is_called_overdue_and_never_contradicted() -> None:
    # Now Monday 08:00; the deadline (failure − margin) passed at 07:00, the failure is due
    # Tuesday 10:00. The reason says "overdue" and holds the slot to the failure, not the
    # passed deadline; it never says a past deadline and a later "ends by" in one breath.
    placement = scheduler().place(job(hours=1, deadline=at(0, 7), limit=at(1, 10)), [])
    assert placement is not None
    assert placement.mode == "fallback"
    assert placement.start_ts == at(0, 22)  # Monday's window: no production lost
    assert placement.reason.startswith("overdue: the deadline 2026-01-05 07:00 has passed")
    assert "ends before the predicted failure 2026-01-06 10:00" in placement.reason
    assert "already past" not in placement.reason


def test_latest_window_before_the_due_time_for_preventive_work() -> None:
    placement = scheduler().place(job(prefer="latest"), [])
    assert placement is not None
    assert placement.start_ts == at(2, 22)  # Wed; Thursday's window opens after Thu 12:00
    short = scheduler().place(job(hours=1, prefer="latest"), [])
    assert short is not None
    assert short.start_ts == at(2, 23)
    crowded = [booked("r12", "line-1", at(2, 23), 1)]
    placement = scheduler().place(job(hours=1, prefer="latest"), crowded)
    assert placement is not None
    assert placement.start_ts == at(2, 22)


def test_requested_start_is_checked() -> None:
    s = scheduler()
    placement = s.place_at(job(hours=1), at(1, 9), [])
    assert placement.mode == "requested"
    assert placement.lost_production_s == 3600.0
    with pytest.raises(SlotUnavailable, match="already has 1 of 1 robots stopped; choose another"):
        s.place_at(job(hours=1), at(1, 9), [booked("r12", "line-1", at(1, 8.5), 1)])
    with pytest.raises(SlotUnavailable, match="in the past"):
        s.place_at(job(hours=1), at(0, 7), [])


def test_max_overlap_counts_simultaneous_bookings() -> None:
    b = [booked("a", "l", 0.0, 1), booked("b", "l", HOUR, 1), booked("c", "l", 0.5 * HOUR, 1)]
    assert max_overlap(b, 0.0, 3 * HOUR) == 2
    assert max_overlap(b[:2], 0.0, 3 * HOUR) == 1  # touching intervals do not overlap
    assert max_overlap(b, 2 * HOUR, 3 * HOUR) == 0
