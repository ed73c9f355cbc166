"""``factory experiment``: check the options, run with a progress bar, write and show results.

Every mistake a user can make in the options is refused before anything runs, in one line that
says what to do instead (exit status 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from engine import POLICIES
from experiment.driver import Experiment, resolve_jobs, run_experiment, write_outputs
from experiment.runs import RunResult, cached_scenario
from simulator.model.scenario import ScenarioError

#: Simulated days are capped so a typo (9000 for 90) does not run for hours.
MAX_DAYS = 3650.0
MAX_SEEDS = 10_000


class UsageError(ValueError):
    """An option the experiment cannot run with; the message says what to do."""


def parse_policies(text: str) -> list[str]:
    """``"reactive,predictive"`` → the list, in the given order, without repeats."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--policies is empty; give some of: {', '.join(POLICIES)}")
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        raise UsageError(
            f"unknown policy {unknown[0]!r} in --policies; choose from {', '.join(POLICIES)}"
        )
    return list(dict.fromkeys(names))


def check_numbers(seeds: int, days: float, jobs: int) -> None:
    if seeds < 1:
        raise UsageError(f"--seeds must be at least 1 (got {seeds}); e.g. --seeds 10")
    if seeds > MAX_SEEDS:
        raise UsageError(f"--seeds {seeds} is more than {MAX_SEEDS}; run fewer seeds")
    if not days > 0:
        raise UsageError(f"--days must be more than 0 (got {days:g}); e.g. --days 90")
    if days > MAX_DAYS:
        raise UsageError(f"--days {days:g} is more than {MAX_DAYS:g} (ten years); use fewer days")
    if jobs < 0:
        raise UsageError(f"--jobs must be 0 (one per core) or more (got {jobs})")


def prepare_out(out: Path) -> None:
    """Create ``out`` if needed and prove it is writable, before hours of work go into it."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory; choose a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UsageError(
            f"cannot write to --out {out}: {reason}; choose another directory"
        ) from None


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def run_experiment_cli(
    *,
    scenario: str | None,
    policies: str,
    seeds: int,
    days: float,
    out: Path,
    jobs: int,
    export: Path | None = None,
    export_csv: bool = False,
) -> None:
    """The ``factory experiment`` command (see ``factory experiment --help``)."""
    try:
        policy_list = parse_policies(policies)
        check_numbers(seeds, days, jobs)
        model = cached_scenario(scenario)
        prepare_out(out)
        if export is not None:
            prepare_out(export)
    except UsageError as exc:
        _fail(str(exc))
    except ScenarioError as exc:
        _fail(f"{exc}\n(give --scenario a valid TOML file or a bundled name such as 'default')")
    experiment = Experiment(
        scenario,
        policy_list,
        list(range(1, seeds + 1)),
        days,
        export=None if export is None else str(export),
        export_csv=export_csv,
    )
    runs = len(policy_list) * seeds
    workers = resolve_jobs(jobs, runs)
    console = Console(stderr=True)
    writing = False
    try:  # Ctrl-C from here on: a one-line message, exit 130
        console.print(
            f"{runs} runs ({', '.join(policy_list)} × {seeds} seed(s)) of {days:g} days on "
            f"scenario {model.name!r}, {len(model.robots)} robots, {workers} worker process(es)"
        )
        columns = (
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("experiment", total=runs)

            def advance(result: RunResult) -> None:
                progress.update(
                    task, advance=1, description=f"{result.policy} seed {result.seed} done"
                )

            run_experiment(experiment, jobs, advance)
        writing = True
        written = write_outputs(experiment, out, jobs)
    except KeyboardInterrupt:
        what = f"the files in {out} may be incomplete" if writing else "no results written"
        typer.echo(f"interrupted: {what}", err=True)
        raise typer.Exit(130) from None
    typer.echo((out / "results.md").read_text(encoding="utf-8"))
    console.print(
        f"{runs} runs in {experiment.wall_s:.1f} s wall, {experiment.cpu_s:.1f} s CPU; wrote "
        + ", ".join(str(p) for p in written)
    )
    if export is not None:
        console.print(f"dataset of every run in {export}/<policy>/seed-<n>/ (docs/dataset.md)")


def run_export_cli(*, db: Path, out: Path, csv: bool) -> None:
    """The ``factory export`` command: a service database's dataset as Parquet (and CSV)."""
    from experiment.service_db import ServiceDbError, load_service_db

    try:
        prepare_out(out)
        dataset = load_service_db(db)
    except UsageError as exc:
        _fail(str(exc))
    except ServiceDbError as exc:
        _fail(str(exc))
    written = dataset.write(out, csv=csv)
    counts = {name: table.num_rows for name, table in dataset.tables().items()}
    typer.echo(
        ", ".join(f"{n:,} {name}" for name, n in counts.items())
        + f" rows from {db}; wrote "
        + ", ".join(str(p) for p in written)
    )
