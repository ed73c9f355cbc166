"""The robots' store-and-forward spool: order, spill to disk and back, the disk bound, cleanup."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from simulator.devices.spool import Spool


def spool(directory: Path | None, **bounds: Any) -> Spool[dict[str, Any]]:
    return Spool(lambda item: item, lambda row: row, directory=directory, **bounds)


def drain(queue: Spool[dict[str, Any]]) -> list[int]:
    out = []
    while queue:
        out.append(queue.popleft()["seq"])
    return out


def test_order_is_kept_in_memory_and_through_segments_on_disk(tmp_path: Path) -> None:
    queue = spool(tmp_path / "s", memory_items=5, segment_items=3)
    for seq in range(1, 21):
        assert queue.append({"seq": seq, "fields": {"x": seq / 3}}) == 0
    assert len(queue) == 20
    assert queue.files == 5  # 15 past the memory bound, 3 a file
    assert sorted(p.name for p in (tmp_path / "s").iterdir())[0] == "00000000.jsonl"
    taken = [queue.popleft()["seq"] for _ in range(7)]
    for seq in range(21, 26):  # more while it drains: still behind everything older
        queue.append({"seq": seq})
    assert taken + drain(queue) == list(range(1, 26))
    assert not list((tmp_path / "s").iterdir())  # every segment read back is deleted


def test_a_segment_comes_back_exactly_as_it_was_spilled(tmp_path: Path) -> None:
    queue = spool(tmp_path, memory_items=1, segment_items=2)
    items = [{"seq": 1}, {"seq": 2, "readings": [{"ts": 1.5, "v": 0.1}]}, {"seq": 3, "n": None}]
    for item in items:
        queue.append(item)
    assert queue.files == 1
    assert [queue.popleft() for _ in range(3)] == items


def test_past_the_disk_bound_the_oldest_segment_is_dropped_and_counted(tmp_path: Path) -> None:
    queue = spool(tmp_path, memory_items=2, segment_items=2, disk_bytes=60)
    dropped = sum(queue.append({"seq": seq}) for seq in range(1, 13))
    # 2 in memory; each segment of two is 24 bytes, so two fit on disk; the rest were dropped
    # oldest first, the memory head (the very oldest, next to go out) kept.
    assert dropped == queue.dropped == 6
    assert queue.disk_used <= 60
    assert drain(queue) == [1, 2, 9, 10, 11, 12]


def test_a_disk_bound_too_small_for_one_segment_keeps_memory_only(tmp_path: Path) -> None:
    queue = spool(tmp_path, memory_items=2, segment_items=2, disk_bytes=0)
    dropped = sum(queue.append({"seq": seq}) for seq in range(1, 7))
    assert dropped == 4
    assert drain(queue) == [1, 2]
    assert not list(tmp_path.iterdir())


def test_a_refused_send_goes_back_to_the_front(tmp_path: Path) -> None:
    queue = spool(tmp_path, memory_items=1, segment_items=1)
    for seq in (1, 2, 3):
        queue.append({"seq": seq})
    first = queue.popleft()
    queue.putback(first)
    assert drain(queue) == [1, 2, 3]


def test_close_removes_the_files_and_a_directory_made_for_them(tmp_path: Path) -> None:
    given = tmp_path / "robot"
    queue = spool(given, memory_items=1, segment_items=1)
    for seq in range(5):
        queue.append({"seq": seq})
    assert given.is_dir()
    assert queue.files == 4
    queue.close()
    assert not given.exists()
    assert len(queue) == 0
    private = spool(None, memory_items=1, segment_items=1)
    private.append({"seq": 1})
    private.append({"seq": 2})
    made = private._made_directory
    assert made is not None
    assert made.is_dir()
    private.close()
    assert not made.exists()


def test_no_file_is_made_while_memory_suffices(tmp_path: Path) -> None:
    queue = spool(tmp_path / "never", memory_items=10)
    for seq in range(10):
        queue.append({"seq": seq})
    queue.close()
    assert not (tmp_path / "never").exists()


def test_bounds_must_leave_room() -> None:
    with pytest.raises(ValueError, match="room for at least one"):
        spool(None, memory_items=0)
