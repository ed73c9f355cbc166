"""The weekly shift calendar: windows, breaks, planned downtime, advancing through production."""

import random
from datetime import datetime

import pytest

from plant.calendar import (
    WEEK_S,
    ShiftCalendar,
    WeeklySet,
    Window,
    parse_days,
    parse_hhmm,
    weekly_intervals,
)
from simulator.model.scenario import load_scenario

HOUR_S = 3600.0


def at(day: str, hhmm: str) -> float:
    """Unix seconds of ``hhmm`` on a date of January 2026 (``"05"`` is Monday the 5th)."""
    return datetime.fromisoformat(f"2026-01-{day}T{hhmm}:00+00:00").timestamp()


Spec = list[tuple[str, str, str]]  # (days, start, end)


def calendar_of(
    shifts: Spec, breaks: Spec | None = None, downtime: Spec | None = None
) -> ShiftCalendar:
    def weekly(specs: Spec | None) -> WeeklySet:
        return WeeklySet(
            i
            for days, start, end in specs or []
            for i in weekly_intervals(parse_days(days), parse_hhmm(start), parse_hhmm(end))
        )

    return ShiftCalendar(weekly(shifts), weekly(breaks), weekly(downtime))


@pytest.fixture(scope="module")
def default_calendar() -> ShiftCalendar:
    return load_scenario().shift_calendar


def test_production_windows_leave_out_breaks(default_calendar: ShiftCalendar) -> None:
    windows = default_calendar.production_windows(at("05", "00:00"), at("06", "00:00"))
    assert windows == [
        Window(at("05", "06:00"), at("05", "12:00")),
        Window(at("05", "12:30"), at("05", "18:00")),
        Window(at("05", "18:30"), at("05", "22:00")),
    ]
    assert default_calendar.production_seconds(at("05", "00:00"), at("12", "00:00")) == (
        5 * 15 * HOUR_S
    )
    assert default_calendar.is_production(at("05", "06:00"))  # windows are half-open
    assert not default_calendar.is_production(at("05", "12:00"))
    assert not default_calendar.is_production(at("05", "12:15"))
    assert not default_calendar.is_production(at("10", "10:00"))  # Saturday
    assert not default_calendar.is_production(at("11", "10:00"))  # Sunday


def test_downtime_windows_are_nightly_and_saturday(default_calendar: ShiftCalendar) -> None:
    windows = default_calendar.downtime_windows(at("08", "00:00"), at("12", "00:00"))
    assert windows == [
        Window(at("08", "22:00"), at("09", "00:00")),
        Window(at("09", "22:00"), at("10", "00:00")),
        Window(at("10", "06:00"), at("10", "14:00")),
    ]
    # Clipped to the asked range.
    assert default_calendar.downtime_windows(at("08", "23:00"), at("09", "01:00")) == [
        Window(at("08", "23:00"), at("09", "00:00"))
    ]


def test_downtime_is_taken_out_of_overlapping_shifts() -> None:
    calendar = calendar_of([("mon-fri", "06:00", "22:00")], downtime=[("mon", "10:00", "11:00")])
    assert calendar.production_windows(at("05", "00:00"), at("06", "00:00")) == [
        Window(at("05", "06:00"), at("05", "10:00")),
        Window(at("05", "11:00"), at("05", "22:00")),
    ]


def test_next_change(default_calendar: ShiftCalendar) -> None:
    assert default_calendar.next_change(at("05", "06:00")) == at("05", "12:00")
    assert default_calendar.next_change(at("05", "12:00")) == at("05", "12:30")
    assert default_calendar.next_change(at("09", "21:00")) == at("09", "22:00")
    assert default_calendar.next_change(at("09", "22:00")) == at("12", "06:00")  # over the weekend


def test_advance_production(default_calendar: ShiftCalendar) -> None:
    advance = default_calendar.advance_production
    assert advance(at("05", "06:00"), 0.0) == at("05", "06:00")
    assert advance(at("05", "06:00"), 6 * HOUR_S) == at("05", "12:00")  # earliest: window end
    assert advance(at("05", "06:00"), 6 * HOUR_S + 1.0) == at("05", "12:30") + 1.0
    assert advance(at("05", "11:00"), 2 * HOUR_S) == at("05", "13:30")  # skips the break
    assert advance(at("05", "23:00"), 1.0) == at("06", "06:00") + 1.0  # starts in a gap
    assert advance(at("09", "21:00"), 2 * HOUR_S) == at("12", "07:00")  # over the weekend
    # Whole weeks: 75 production hours a week; exactly one week's worth ends on Friday 22:00.
    assert advance(at("05", "06:00"), 75 * HOUR_S) == at("09", "22:00")
    assert advance(at("05", "06:00"), 3 * 75 * HOUR_S + 1.0) == at("26", "06:00") + 1.0


def test_shift_past_midnight_wraps() -> None:
    calendar = calendar_of([("mon-fri", "22:00", "06:00")], breaks=[("tue", "02:00", "02:30")])
    assert calendar.is_production(at("05", "23:00"))  # Monday night
    assert calendar.is_production(at("06", "01:59"))  # Tuesday early morning
    assert not calendar.is_production(at("06", "02:15"))  # the break
    assert not calendar.is_production(at("06", "06:00"))
    assert not calendar.is_production(at("05", "21:59"))
    # Friday night runs into Saturday; Sunday night has no shift.
    assert calendar.is_production(at("10", "05:00"))
    assert not calendar.is_production(at("12", "01:00"))
    assert calendar.production_windows(at("05", "20:00"), at("06", "12:00")) == [
        Window(at("05", "22:00"), at("06", "02:00")),
        Window(at("06", "02:30"), at("06", "06:00")),
    ]
    assert calendar.advance_production(at("05", "23:00"), 4 * HOUR_S) == at("06", "03:30")


def test_shift_across_the_week_boundary() -> None:
    calendar = calendar_of([("sun", "20:00", "04:00")])  # Sunday night into Monday
    assert calendar.is_production(at("11", "23:00"))
    assert calendar.is_production(at("12", "03:00"))
    assert calendar.production_windows(at("11", "00:00"), at("13", "00:00")) == [
        Window(at("11", "20:00"), at("12", "04:00"))
    ]
    assert calendar.advance_production(at("11", "21:00"), 5 * HOUR_S) == at("12", "02:00")


def test_position_agrees_with_walking_the_windows() -> None:
    calendar = calendar_of(
        [("mon-fri", "06:00", "22:00"), ("sat", "22:00", "02:00")],
        breaks=[("mon-fri", "12:00", "12:30")],
        downtime=[("wed", "09:00", "10:15")],
    )
    rng = random.Random(3)
    origin = at("05", "00:00")
    for _ in range(300):
        t0 = origin + rng.uniform(0, 5 * WEEK_S)
        t1 = t0 + rng.uniform(0, 3 * WEEK_S)
        walked = sum(w.duration_s for w in calendar.production_windows(t0, t1))
        assert calendar.production_seconds(t0, t1) == pytest.approx(walked, abs=1e-5)
        work_s = rng.uniform(0, 2 * WEEK_S * 0.4)
        done = calendar.advance_production(t0, work_s)
        assert calendar.is_production(done - 1e-3) or done == t0
        assert calendar.production_seconds(t0, done) == pytest.approx(work_s, abs=1e-5)


def test_calendar_without_production_never_advances() -> None:
    calendar = calendar_of([("mon", "06:00", "08:00")], downtime=[("mon", "00:00", "24:00")])
    assert calendar.production_windows(at("05", "00:00"), at("20", "00:00")) == []
    assert calendar.advance_production(at("05", "00:00"), 1.0) == float("inf")
    assert calendar.next_change(at("05", "00:00")) == float("inf")


@pytest.mark.parametrize(
    ("text", "seconds"), [("00:00", 0.0), ("06:30", 23400.0), ("24:00", 86400.0)]
)
def test_parse_hhmm(text: str, seconds: float) -> None:
    assert parse_hhmm(text) == seconds


@pytest.mark.parametrize("text", ["25:00", "12:60", "24:30", "noon", "6", "-1:00", "12:5"])
def test_parse_hhmm_refuses_bad_times(text: str) -> None:
    with pytest.raises(ValueError, match="not a time of day"):
        parse_hhmm(text)


def test_parse_days() -> None:
    assert parse_days("mon-fri") == [0, 1, 2, 3, 4]
    assert parse_days("sat-mon") == [5, 6, 0]
    assert parse_days("daily") == list(range(7))
    assert parse_days(["Tue", "thu"]) == [1, 3]
    with pytest.raises(ValueError, match="'funday' is not a day"):
        parse_days("funday")
    with pytest.raises(ValueError, match="no days"):
        parse_days([])
