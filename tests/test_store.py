"""The store's pure rules: which retained message wins, and which history queries are served."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.store import Outcome, QueryRefused, plan_query, supersedes

CAPS = {"default_window_s": 3600.0, "max_range_s": 86400.0, "max_points": 100}


def plan(since: float | None, until: float | None, every: float | None = None, clock=None):
    return plan_query("r-1", None, since, until, every, clock=clock, max_scan_rows=1000, **CAPS)


def test_first_message_is_new() -> None:
    assert supersedes(None, ("boot-a", 5)) is Outcome.NEW


def test_same_identity_is_a_duplicate() -> None:
    assert supersedes(("boot-a", 5), ("boot-a", 5)) is Outcome.DUPLICATE


def test_within_a_boot_higher_seq_wins_and_lower_is_stale() -> None:
    assert supersedes(("boot-a", 5), ("boot-a", 6)) is Outcome.NEW
    assert supersedes(("boot-a", 5), ("boot-a", 4)) is Outcome.STALE


def test_the_will_is_the_last_word_of_its_boot() -> None:
    # The will's payload is fixed at connect time, so its seq (0) is below everything after it.
    assert supersedes(("boot-a", 900), ("boot-a", 0)) is Outcome.NEW
    # The same robot process reconnecting after its will fired.
    assert supersedes(("boot-a", 0), ("boot-a", 901)) is Outcome.NEW


def test_a_new_boot_wins_in_arrival_order() -> None:
    assert supersedes(("boot-b", 900), ("boot-a", 1)) is Outcome.NEW


@given(
    st.tuples(st.sampled_from(["boot-a", "boot-b"]), st.integers(0, 50)),
    st.tuples(st.sampled_from(["boot-a", "boot-b"]), st.integers(0, 50)),
)
def test_only_an_identical_key_is_a_duplicate(held: tuple[str, int], new: tuple[str, int]) -> None:
    outcome = supersedes(held, new)
    assert (outcome is Outcome.DUPLICATE) == (held == new)
    if outcome is Outcome.STALE:
        assert held[0] == new[0]
        assert 0 < new[1] < held[1]


def test_defaults_end_at_the_simulated_clock() -> None:
    query = plan(None, None, clock=10_000.0)
    assert (query.since, query.until) == (10_000.0 - 3600.0, 10_000.0)


def test_a_range_over_the_cap_is_refused_saying_the_cap() -> None:
    with pytest.raises(QueryRefused, match=r"cap of 86400 s; narrow since/until"):
        plan(0.0, 86401.0)
    assert plan(0.0, 86400.0).until == 86400.0


def test_too_many_buckets_are_refused_saying_the_smallest_bucket() -> None:
    with pytest.raises(QueryRefused, match=r"cap of 100 points; use every > 36"):
        plan(0.0, 3600.0, every=36.0)
    assert plan(0.0, 3600.0, every=36.5).every == 36.5


@pytest.mark.parametrize(
    ("since", "until", "every", "message"),
    [
        (10.0, 5.0, None, "before since"),
        (math.nan, 5.0, None, "finite"),
        (0.0, math.inf, None, "finite"),
        (0.0, 5.0, 0.0, "positive"),
        (0.0, 5.0, 1e-300, "buckets"),
    ],
)
def test_nonsense_is_refused(since: float, until: float, every: float | None, message: str) -> None:
    with pytest.raises(QueryRefused, match=message) as refused:
        plan(since, until, every)
    assert len(str(refused.value)) < 160  # a sentence, not a 300-digit number
