"""Reading the workshop's labs (``docs/workshop/NN-*.md``) the way a participant does, for tests.

A lab's commands are its fenced ``sh`` blocks, in order; they run as one bash script (so a
variable or a file one block makes is there for the next) with the environment a participant
sets up in the index: ``HOST``, ``MQTT_PORT``, ``API`` and ``KEY``. What the lab promises is the
fenced ``text`` block under the heading "What you should see": one pattern per line, where ``…``
stands for any text. The observation holds when every pattern matches some line the commands
printed (stdout and stderr) *and* every printed line matches some pattern — so a line deleted
from the expected output, or a line the product starts printing, fails the lab.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

LABS_DIR = Path(__file__).resolve().parents[1] / "docs" / "workshop"
_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```\s*$", re.M | re.S)
_EXPECT_HEADING = "## What you should see"


@dataclass(frozen=True)
class Lab:
    path: Path
    commands: list[str]
    expected: list[str]

    @property
    def name(self) -> str:
        return self.path.stem


def read_lab(path: Path) -> Lab:
    text = path.read_text(encoding="utf-8")
    commands = [m["body"] for m in _FENCE.finditer(text) if m["info"].strip() == "sh"]
    start = text.find(_EXPECT_HEADING)
    expected: list[str] = []
    if start >= 0:
        block = _FENCE.search(text, start)
        if block is not None and block["info"].strip() == "text":
            expected = [line for line in block["body"].splitlines() if line.strip()]
    return Lab(path, commands, expected)


def labs() -> list[Lab]:
    return [read_lab(p) for p in sorted(LABS_DIR.glob("[0-9][0-9]-*.md"))]


def _pattern(line: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in line.strip().split("…")))


def mismatch(expected: list[str], printed: list[str]) -> str | None:
    """Why ``printed`` is not what ``expected`` promises (None when it is)."""
    patterns = [_pattern(e) for e in expected]
    lines = [line.strip() for line in printed if line.strip()]
    missing = [
        e for e, p in zip(expected, patterns, strict=True) if not any(p.fullmatch(x) for x in lines)
    ]
    unexpected = [x for x in lines if not any(p.fullmatch(x) for p in patterns)]
    if not missing and not unexpected:
        return None
    return f"expected but not printed: {missing}; printed but not expected: {unexpected}"
