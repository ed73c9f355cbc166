"""The scheduler at the contract's last time (year 3000): nothing is placed past it, no crash."""

from __future__ import annotations

import pytest
from test_engine_scheduler import scheduler

from contract.payloads import TS_MAX
from engine.scheduler import SlotRequest, SlotUnavailable

HOUR = 3600.0


def test_no_slot_ends_after_the_last_time_the_contract_carries() -> None:
    request = SlotRequest("r11", "line-1", 2 * HOUR, TS_MAX - HOUR)
    assert scheduler().place(request, []) is None
    with pytest.raises(SlotUnavailable, match="year 3000"):
        scheduler().place_at(request, TS_MAX - HOUR, [])


def test_a_slot_that_ends_in_time_is_still_placed() -> None:
    request = SlotRequest("r11", "line-1", 2 * HOUR, TS_MAX - 30 * 24 * HOUR)
    placed = scheduler().place(request, [])
    assert placed is not None
    assert placed.end_ts <= TS_MAX
