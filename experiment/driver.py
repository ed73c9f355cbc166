"""Running every (policy, seed) of an experiment, in parallel, and writing what it found.

Runs are independent and each is deterministic (same scenario + seed + policy → same run), so
they can go to any number of worker processes in any order: results are gathered by key and
aggregated in (policy, seed) order, and the files come out byte-identical whatever ``jobs`` is.
One run — the first seed of the predictive policy (or of the first policy) — also records the
trajectory of the scenario's first robot for the figure.
"""

from __future__ import annotations

import functools
import gc
import multiprocessing
import os
import platform
import resource
import shlex
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from experiment.aggregate import MeanCI, summarise
from experiment.oracle import oracle_table
from experiment.outputs import (
    results_csv,
    results_document,
    results_json,
    results_markdown,
    write_text,
)
from experiment.plots import (
    FOCUS_AFTER_S,
    FOCUS_BEFORE_S,
    plot_availability_downtime,
    plot_trajectory,
)
from experiment.runs import RunResult, RunSpec, cached_scenario, run_one
from experiment.trace import REPRESENTATIVE_RULE
from simulator.model.scenario import Scenario

TRACE_POLICY = "predictive"
Key = tuple[str, int]


@dataclass(slots=True)
class Experiment:
    """What to run. ``scenario`` is an object, or a file / bundled name (None: the default)."""

    scenario: Scenario | str | None
    policies: Sequence[str]
    seeds: Sequence[int]
    days: float
    #: Write each run's dataset under ``export/<policy>/seed-<n>/`` (None: no dataset).
    export: str | None = None
    export_csv: bool = False
    results: dict[Key, RunResult] = field(default_factory=dict)
    wall_s: float = 0.0
    cpu_s: float = 0.0

    @property
    def model(self) -> Scenario:
        if isinstance(self.scenario, Scenario):
            return self.scenario
        return cached_scenario(self.scenario)

    def specs(self) -> list[RunSpec]:
        trace_policy = TRACE_POLICY if TRACE_POLICY in self.policies else self.policies[0]
        trace_robot = self.model.robots[0].id
        return [
            RunSpec(
                policy,
                seed,
                self.days,
                trace_robot=trace_robot
                if (policy, seed) == (trace_policy, self.seeds[0])
                else None,
                export_dir=None
                if self.export is None
                else str(Path(self.export) / policy / f"seed-{seed}"),
                export_csv=self.export_csv,
            )
            for policy in self.policies
            for seed in self.seeds
        ]

    def summary(self) -> dict[str, dict[str, MeanCI]]:
        per_run = {key: result.metrics for key, result in self.results.items()}
        return summarise(per_run, self.policies, self.seeds)


def resolve_jobs(jobs: int, runs: int) -> int:
    """Worker processes to use: ``jobs``, or one per core for 0; never more than the runs."""
    wanted = jobs if jobs > 0 else os.cpu_count() or 1
    return max(1, min(wanted, runs))


def run_experiment(
    experiment: Experiment, jobs: int = 1, on_done: Callable[[RunResult], None] | None = None
) -> Experiment:
    """Run every (policy, seed) of ``experiment`` and fill in its results."""
    specs = experiment.specs()
    workers = resolve_jobs(jobs, len(specs))
    wall0, cpu0 = time.perf_counter(), _cpu_s()
    results: dict[Key, RunResult] = {}

    def keep(result: RunResult) -> None:
        results[(result.policy, result.seed)] = result
        if on_done is not None:
            on_done(result)

    if workers == 1:
        for spec in specs:
            keep(run_one(experiment.scenario, spec))
    else:
        # Ctrl-C reaches the whole process group; the workers ignore it and the parent, leaving
        # the `with`, terminates them at once (a 90-day run under way is not waited for).
        work = functools.partial(run_one, experiment.scenario)
        # The oracle's table is built once here, before the workers fork, so they share it
        # rather than each spending ~0.7 s on it (a spawned worker builds its own, same values).
        oracle_table()
        # Everything built so far (modules, the scenario, the table) lives as long as the
        # workers: keep the collector from walking it again in every worker's full collections
        # (and from touching, hence copying, every page the workers share with this process).
        gc.freeze()
        try:
            with multiprocessing.Pool(workers, initializer=_leave_signals_to_the_parent) as pool:
                for result in pool.imap_unordered(work, specs):
                    keep(result)
                pool.close()
                pool.join()
        finally:
            gc.unfreeze()  # this process goes on (a test may run many experiments)
    experiment.results = {(s.policy, s.seed): results[(s.policy, s.seed)] for s in specs}
    experiment.wall_s = time.perf_counter() - wall0
    experiment.cpu_s = _cpu_s() - cpu0
    return experiment


def _leave_signals_to_the_parent() -> None:
    """In a worker: ignore Ctrl-C and die quietly on the parent's SIGTERM (``Pool.terminate``);
    the handlers inherited from the ``factory`` command would raise a traceback instead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _cpu_s() -> float:
    """CPU time of this process and of its finished children (the workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def reproduce_command(experiment: Experiment) -> str:
    scenario = experiment.scenario
    name = scenario.name if isinstance(scenario, Scenario) else scenario or "default"
    return shlex.join(
        [
            "factory",
            "experiment",
            "--scenario",
            name,
            "--policies",
            ",".join(experiment.policies),
            "--seeds",
            str(len(experiment.seeds)),
            "--days",
            f"{experiment.days:g}",
        ]
    )


def write_outputs(experiment: Experiment, out: Path, jobs: int) -> list[Path]:
    """Write results.json/.csv/.md, run-info.json and the figures into ``out``."""
    model = experiment.model
    summary = experiment.summary()
    seeds, days = list(experiment.seeds), experiment.days
    document = results_document(model.name, seeds, days, summary)
    per_run = {key: r.metrics for key, r in experiment.results.items()}
    command = reproduce_command(experiment)
    files = {
        "results.json": results_json(document),
        "results.csv": results_csv(per_run, experiment.policies, seeds),
        "results.md": results_markdown(
            model.name, seeds, days, summary, command, model.maintenance.currency
        ),
        "run-info.json": results_json(run_info(experiment, jobs)),
    }
    written = []
    for name, text in files.items():
        write_text(out / name, text)
        written.append(out / name)
    figure = out / "availability_downtime.png"
    plot_availability_downtime(
        summary,
        figure,
        f"scenario {model.name}, {len(seeds)} seed(s)",
        model.maintenance.currency,
    )
    written.append(figure)
    traced = [r for r in experiment.results.values() if r.trace is not None]
    if traced and traced[0].trace is not None:
        run = traced[0]
        trace = run.trace
        assert trace is not None
        life = trace.representative_life()
        figure = out / "trajectory.png"
        where = f"{run.policy} policy, seed {run.seed}"
        if life is not None:
            title = (
                f"{trace.robot} {life.component} — {where}; "
                f"{REPRESENTATIVE_RULE} (RMSE {life.rmse_h:.0f} h)"
            )
            window = life.window(FOCUS_BEFORE_S, FOCUS_AFTER_S)
            plot_trajectory(trace, life.component, model.start_ts, figure, title, window)
            written.append(figure)
        elif trace.points:
            component = sorted(trace.points)[0]
            title = f"{trace.robot} {component} — {where}; no life with scored predictions"
            plot_trajectory(trace, component, model.start_ts, figure, title)
            written.append(figure)
    return written


def run_info(experiment: Experiment, jobs: int) -> dict[str, Any]:
    """How the run went (not results): wall and CPU time, machine, per-run counters."""
    readings = sum(r.readings for r in experiment.results.values())
    runs = len(experiment.results)
    return {
        "command": reproduce_command(experiment),
        "jobs": resolve_jobs(jobs, runs),
        "runs": runs,
        "readings": readings,
        "wall_s": round(experiment.wall_s, 2),
        "cpu_s": round(experiment.cpu_s, 2),
        "readings_per_wall_s": round(readings / experiment.wall_s) if experiment.wall_s else None,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "per_run": [
            {
                "policy": r.policy,
                "seed": r.seed,
                "readings": r.readings,
                "engine_stats": r.engine_stats,
                "work_orders": r.work_orders,
            }
            for r in experiment.results.values()
        ],
    }
