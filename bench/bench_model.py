"""Samples per second of the pure SimPy factory model at factor 0 (no MQTT, no I/O). Prints JSON.

Runs the default scenario's 12 robots as fast as possible with a counting sink. The default
scenario samples every 300 s, so 30 days is only ~40k samples: to measure the per-sample cost
the sample interval is overridden (1 s by default). ``samples_per_s`` is per wall second of one
process on one core; ``samples_per_cpu_s`` divides by the process's CPU time instead, which is
the fairer number on a shared machine. Best of ``--repeat`` runs.

    python bench/bench_model.py [--days 30] [--sample-s 1] [--seed 1] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from typing import Any

from simulator.model.factory import run_offline
from simulator.model.records import Record
from simulator.model.scenario import load_scenario


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def one_run(days: float, sample_s: float, seed: int) -> dict[str, Any]:
    scenario = load_scenario().with_kind_overrides(sample_interval_s=sample_s)
    counts: Counter[type] = Counter()
    emit = counts.update  # counts.update((record,)) would count by value: count types instead

    def sink(record: Record) -> None:
        emit((type(record),))

    wall0, cpu0 = time.perf_counter(), time.process_time()
    summary = run_offline(scenario, seed, days, sink)
    wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
    samples = summary["totals"]["samples"]
    records = sum(counts.values())
    return {
        "samples": samples,
        "records": records,
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "samples_per_s": round(samples / wall_s),
        "samples_per_cpu_s": round(samples / cpu_s),
        "records_per_s": round(records / wall_s),
        "records_by_type": {t.__name__: n for t, n in sorted(counts.items(), key=str)},
        "breakdowns": summary["totals"]["breakdowns"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="simulated days")
    parser.add_argument("--sample-s", type=float, default=1.0, help="sample interval override")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs; the fastest is reported")
    args = parser.parse_args()
    runs = []
    for i in range(args.repeat):
        print(f"[bench_model] run {i + 1}/{args.repeat} …", file=sys.stderr, flush=True)
        runs.append(one_run(args.days, args.sample_s, args.seed))
    best = max(runs, key=lambda r: r["samples_per_s"])
    result = {
        "bench": "model",
        "scenario": "default",
        "robots": len(load_scenario().robots),
        "days": args.days,
        "sample_interval_s": args.sample_s,
        "seed": args.seed,
        **best,
        "runs_samples_per_s": [r["samples_per_s"] for r in runs],
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
