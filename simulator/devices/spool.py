"""A robot's store-and-forward buffer: first in, first out, in memory up to a bound, then on disk.

The oldest messages wait in memory (``head``, at most ``memory_items``); once that is full, new
ones collect in a small ``tail`` that is written to a segment file of ``segment_items`` lines
when full (one JSON array per line, :func:`orjson.dumps`), and segments are read back, oldest
first, when the head is empty. So memory stays bounded whatever the length of a disconnection,
and what was made is sent in the order it was made.

Past ``disk_bytes`` the oldest segment on disk is deleted and its messages counted as dropped
(:attr:`Spool.dropped`): a bound the run states, never an unbounded disk. Segment files live in
``directory`` (made on the first spill; a private temporary directory if none is given) and
:meth:`Spool.close` removes them and the directory.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson

T = TypeVar("T")

DEFAULT_MEMORY_ITEMS = 1_000
DEFAULT_SEGMENT_ITEMS = 1_000
#: Per robot: about 350,000 messages (one reading is ~190 bytes on disk).
DEFAULT_DISK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Segment:
    path: Path
    items: int
    size: int


class Spool(Generic[T]):
    """A bounded-memory FIFO that spills to disk; see the module docstring."""

    def __init__(
        self,
        encode: Callable[[T], Any],
        decode: Callable[[Any], T],
        *,
        directory: Path | None = None,
        memory_items: int = DEFAULT_MEMORY_ITEMS,
        segment_items: int = DEFAULT_SEGMENT_ITEMS,
        disk_bytes: int = DEFAULT_DISK_BYTES,
    ) -> None:
        if memory_items < 1 or segment_items < 1 or disk_bytes < 0:
            raise ValueError("a spool needs room for at least one item in memory and on disk")
        self._encode, self._decode = encode, decode
        self._directory = directory
        self._made_directory: Path | None = None
        self.memory_items, self.segment_items, self.disk_bytes = (
            memory_items,
            segment_items,
            disk_bytes,
        )
        self._head: deque[T] = deque()
        self._segments: deque[_Segment] = deque()
        self._tail: list[T] = []
        self._on_disk_items = 0
        self.disk_used = 0
        self._next_file = 0
        #: Items deleted unsent because the disk bound was reached.
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._head) + self._on_disk_items + len(self._tail)

    def __bool__(self) -> bool:
        return bool(self._head or self._segments or self._tail)

    @property
    def files(self) -> int:
        return len(self._segments)

    def append(self, item: T) -> int:
        """Keep ``item`` after all the others; return how many old ones that dropped."""
        if not self._segments and not self._tail and len(self._head) < self.memory_items:
            self._head.append(item)
            return 0
        self._tail.append(item)
        if len(self._tail) < self.segment_items:
            return 0
        return self._spill()

    def popleft(self) -> T:
        """The oldest item (``IndexError`` if empty)."""
        if not self._head:
            if self._segments:
                self._load(self._segments.popleft())
            else:
                self._head.extend(self._tail)
                self._tail.clear()
        return self._head.popleft()

    def putback(self, item: T) -> None:
        """Return the item just taken to the front (its send was refused)."""
        self._head.appendleft(item)

    def close(self) -> None:
        """Forget everything and remove the files and the directory made for them."""
        self._head.clear()
        self._tail.clear()
        for segment in self._segments:
            segment.path.unlink(missing_ok=True)
        self._segments.clear()
        self._on_disk_items = self.disk_used = 0
        if self._made_directory is not None:
            shutil.rmtree(self._made_directory, ignore_errors=True)
            self._made_directory = None

    # --- internals ------------------------------------------------------------------------

    def _spill(self) -> int:
        data = b"".join(orjson.dumps(self._encode(item)) + b"\n" for item in self._tail)
        dropped = 0
        while self._segments and self.disk_used + len(data) > self.disk_bytes:
            dropped += self._forget(self._segments.popleft())
        if len(data) > self.disk_bytes:  # not even one segment fits: these are the oldest now
            dropped += len(self._tail)
            self._tail.clear()
            self.dropped += dropped
            return dropped
        path = self._where() / f"{self._next_file:08d}.jsonl"
        self._next_file += 1
        path.write_bytes(data)
        self._segments.append(_Segment(path, len(self._tail), len(data)))
        self._on_disk_items += len(self._tail)
        self.disk_used += len(data)
        self._tail.clear()
        self.dropped += dropped
        return dropped

    def _forget(self, segment: _Segment) -> int:
        segment.path.unlink(missing_ok=True)
        self._on_disk_items -= segment.items
        self.disk_used -= segment.size
        return segment.items

    def _load(self, segment: _Segment) -> None:
        lines = segment.path.read_bytes().splitlines()
        self._forget(segment)
        self._head.extend(self._decode(orjson.loads(line)) for line in lines)

    def _where(self) -> Path:
        if self._made_directory is None:
            if self._directory is None:
                self._made_directory = Path(tempfile.mkdtemp(prefix="factory-spool-"))
            else:
                self._directory.mkdir(parents=True, exist_ok=True)
                self._made_directory = self._directory
        return self._made_directory
