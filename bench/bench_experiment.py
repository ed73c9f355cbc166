"""Wall time of the policy experiment, run as a user runs it. Prints JSON.

Runs the real command — ``factory experiment`` on the default scenario, 10 seeds × 90 days ×
3 policies, ``--jobs 2`` by default — in a subprocess and reports:

* ``wall_s``: wall time of the whole command (imports, 30 runs, files and figures);
* ``cpu_s``: CPU time of the command and its worker processes (user + system). On a shared
  machine wall time depends on the neighbours; CPU time much less so. ``cpu_s / jobs`` is the
  wall time the same work would take on ``jobs`` idle cores;
* ``core_share``: ``cpu_s / (wall_s × jobs)``, the fraction of the cores the run actually got
  (≈ 1 on an idle machine), with the 1-minute load average before and after;
* ``runs``, ``readings`` and ``readings_per_s`` (per wall second), from the run's run-info.json.

Target: ≤ 60 s wall on 2 cores.

    .venv/bin/python bench/bench_experiment.py [--seeds 10] [--days 90] [--jobs 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def factory_command() -> list[str]:
    script = Path(sys.executable).with_name("factory")
    return [str(script)] if script.exists() else [sys.executable, "-m", "factory.cli"]


def bench(seeds: int, days: float, jobs: int, policies: str, out: Path) -> dict[str, Any]:
    command = [
        *factory_command(),
        "experiment",
        "--policies",
        policies,
        "--seeds",
        str(seeds),
        "--days",
        f"{days:g}",
        "--jobs",
        str(jobs),
        "--out",
        str(out),
    ]
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall_s = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    info = json.loads((out / "run-info.json").read_text(encoding="utf-8"))
    used_jobs = int(info["jobs"])
    return {
        "bench": "experiment",
        "scenario": "default",
        "seeds": seeds,
        "days": days,
        "policies": policies,
        "jobs": used_jobs,
        "runs": info["runs"],
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "cpu_s_per_run": round(cpu_s / info["runs"], 3),
        "idle_estimate_s": round(cpu_s / used_jobs, 1),
        "core_share": round(cpu_s / (wall_s * used_jobs), 3),
        "load_average_1m_before": round(load_before, 2),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "readings": info["readings"],
        "readings_per_s": round(info["readings"] / wall_s),
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--days", type=float, default=90.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--policies", default="reactive,preventive,predictive")
    parser.add_argument("--out", type=Path, default=None, help="keep the results here")
    args = parser.parse_args()
    print(
        f"factory experiment: {args.seeds} seeds × {args.days:g} days, --jobs {args.jobs}…",
        file=sys.stderr,
    )
    if args.out is not None:
        result = bench(args.seeds, args.days, args.jobs, args.policies, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-experiment-") as tmp:
            result = bench(args.seeds, args.days, args.jobs, args.policies, Path(tmp))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
