"""Determinism: a seeded 14-day run of the default scenario against a checked-in summary.

The golden file holds the run's summary (per-robot counters), the number of records of each
type and a SHA-256 digest of the whole record stream, so any change in what the model emits
shows up here. After an *intended* change to the model, regenerate it and review the diff:

    FACTORY_REGEN_GOLDEN=1 .venv/bin/pytest tests/test_model_golden.py
"""

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from simulator.model.factory import run_offline
from simulator.model.records import Record
from simulator.model.scenario import load_scenario

GOLDEN = Path(__file__).parent / "golden" / "model_default_seed7_14d.json"
SEED, DAYS = 7, 14


def seeded_run() -> dict[str, Any]:
    digest = hashlib.sha256()
    counts: Counter[str] = Counter()

    def emit(record: Record) -> None:
        digest.update(repr(record).encode())
        counts[type(record).__name__] += 1

    summary = run_offline(load_scenario(), SEED, DAYS, emit)
    return {
        "summary": summary,
        "record_counts": dict(sorted(counts.items())),
        "records_sha256": digest.hexdigest(),
    }


def test_seeded_run_matches_the_golden_summary() -> None:
    result = json.loads(json.dumps(seeded_run()))  # as JSON would hold it
    if os.environ.get("FACTORY_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    expected = json.loads(GOLDEN.read_text())
    assert result["summary"] == expected["summary"]
    assert result["record_counts"] == expected["record_counts"]
    assert result["records_sha256"] == expected["records_sha256"]
    assert expected["summary"]["totals"]["breakdowns"] > 0  # the golden run exercises failures
