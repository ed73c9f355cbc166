"""``factory experiment`` end to end through the real command: files, shape, determinism, errors.

The bundled default factory for two or three simulated days per run keeps each invocation well
under a few seconds while every policy still has readings, states and events to work with.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from experiment.aggregate import MeanCI
from experiment.outputs import results_document, results_json, results_markdown, rounded
from factory.cli import app

POLICIES = ("reactive", "preventive", "predictive")
REQUIRED = {
    "breakdowns",
    "unplanned_downtime_h",
    "planned_downtime_h",
    "availability",
    "oee",
    "parts",
    "maintenance_cost",
    "mtbf_h",
    "mttr_h",
}
RUL = {
    "rul_rmse_h",
    "rul_phm08_score",
    "rul_alpha_lambda",
    "rul_oracle_rmse_h",
    "rul_rmse_ratio",
    "rul_alpha_lambda_ratio",
    "rul_lives_cut_short",
    # per component kind of the default scenario
    "rul_rmse_ratio.reducer",
    "rul_oracle_rmse_h.servo",
    "rul_lives.gripper",
}


def experiment(out: Path, *args: str, days: str = "2", seeds: str = "2") -> Any:
    runner = CliRunner()
    return runner.invoke(
        app,
        ["experiment", "--seeds", seeds, "--days", days, "--out", str(out), *args],
        catch_exceptions=False,
    )


def no_nan(text: str) -> Any:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in results.json")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("experiment") / "out"  # does not exist yet: created
    result = experiment(out, "--jobs", "1", days="3")
    assert result.exit_code == 0, result.output
    return out


def test_results_json_has_exactly_the_documented_shape(first_run: Path) -> None:
    document = no_nan((first_run / "results.json").read_text(encoding="utf-8"))
    assert set(document) == {"scenario", "seeds", "days", "policies"}
    assert document["scenario"] == "default"
    assert document["seeds"] == [1, 2]
    assert document["days"] == 3.0
    assert list(document["policies"]) == sorted(POLICIES)
    for policy, metrics in document["policies"].items():
        assert set(metrics) >= REQUIRED, policy
        for name, value in metrics.items():
            assert set(value) == {"mean", "ci95"}, name
            low, high = value["ci95"]
            if value["mean"] is None:
                assert low is None
                assert high is None
            else:
                assert low <= value["mean"] <= high, (policy, name)
    assert set(document["policies"]["predictive"]) >= RUL
    reactive = document["policies"]["reactive"]
    assert reactive["planned_downtime_h"]["mean"] == 0.0
    assert 0.5 < reactive["availability"]["mean"] <= 1.0


def test_the_other_files(first_run: Path) -> None:
    text = (first_run / "results.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert [(r["policy"], r["seed"]) for r in rows] == [(p, s) for p in POLICIES for s in "12"]
    document = json.loads((first_run / "results.json").read_text(encoding="utf-8"))
    # The JSON mean is the mean of the CSV's per-run values.
    parts = [float(r["parts"]) for r in rows if r["policy"] == "predictive"]
    assert document["policies"]["predictive"]["parts"]["mean"] == sum(parts) / 2
    table = (first_run / "results.md").read_text(encoding="utf-8")
    assert "| metric | reactive | preventive | predictive |" in table
    assert "| availability |" in table
    assert "factory experiment --scenario default" in table
    info = json.loads((first_run / "run-info.json").read_text(encoding="utf-8"))
    assert info["runs"] == 6
    assert info["readings"] > 0
    for figure in ("availability_downtime.png", "trajectory.png"):
        assert (first_run / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_same_command_same_bytes_whatever_the_job_count(first_run: Path, tmp_path: Path) -> None:
    again, parallel = tmp_path / "again", tmp_path / "parallel"
    assert experiment(again, "--jobs", "1", days="3").exit_code == 0
    assert experiment(parallel, "--jobs", "2", days="3").exit_code == 0
    for name in ("results.json", "results.csv", "results.md"):
        expected = (first_run / name).read_bytes()
        assert (again / name).read_bytes() == expected, name
        assert (parallel / name).read_bytes() == expected, name


def test_a_subset_of_policies_in_the_given_order(tmp_path: Path) -> None:
    result = experiment(tmp_path, "--policies", "predictive, reactive,predictive", seeds="1")
    assert result.exit_code == 0, result.output
    document = no_nan((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert set(document["policies"]) == {"predictive", "reactive"}
    assert "| metric | predictive | reactive |" in (tmp_path / "results.md").read_text("utf-8")
    # One seed: the interval is the point.
    availability = document["policies"]["reactive"]["availability"]
    assert availability["ci95"] == [availability["mean"], availability["mean"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policies", "reactive,magic"], "unknown policy 'magic'"),
        (["--policies", " , "], "--policies is empty"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--days", "0"], "--days must be more than 0"),
        (["--days", "-3"], "--days must be more than 0"),
        (["--jobs", "-1"], "--jobs must be 0"),
        (["--scenario", "no-such-scenario"], "no bundled scenario named 'no-such-scenario'"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["experiment", "--out", str(out), *args])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert not out.exists()  # refused before anything was written


def test_unwritable_out_dir_is_refused_before_running(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory", encoding="utf-8")
    for out, message in (
        (blocker, "is a file, not a directory"),
        (blocker / "sub", "cannot write to --out"),
    ):
        result = CliRunner().invoke(app, ["experiment", "--out", str(out), "--seeds", "1"])
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert message in lines[0]
        assert "choose" in lines[0]


def test_markdown_cells_show_the_interval_and_partial_seeds() -> None:
    summary = {
        "reactive": {
            "availability": MeanCI(0.98, 0.97, 0.99, 2),
            "mttr_h": MeanCI(5.0, 5.0, 5.0, 1),
            "rul_rmse_h": MeanCI(None, None, None, 0),
        }
    }
    table = results_markdown("default", [1, 2], 90.0, summary)
    assert "| availability | 0.9800 ± 0.0100 |" in table
    assert "| MTTR, h (failure → back in service) | 5.00 (n = 1) |" in table
    assert "| RUL RMSE, operating h | — |" in table
    assert "breakdowns" not in table  # only the metrics given


def test_json_numbers_are_rounded_and_never_nan() -> None:
    summary = {
        "reactive": {"oee": MeanCI(1 / 3, 0.0, 2 / 3, 3), "mtbf_h": MeanCI(None, None, None, 0)}
    }
    text = results_json(results_document("default", [1, 2, 3], 90.0, summary))
    policy = no_nan(text)["policies"]["reactive"]
    assert policy["oee"] == {"mean": 0.3333, "ci95": [0.0, 0.6667]}
    assert policy["mtbf_h"] == {"mean": None, "ci95": [None, None]}
    assert rounded(float("inf")) is None
    assert rounded(-0.00001) == 0.0
    assert str(rounded(-0.00001)) == "0.0"


def test_ctrl_c_stops_at_once_and_writes_nothing(tmp_path: Path) -> None:
    factory = Path(sys.executable).with_name("factory")
    out = tmp_path / "out"
    # A process group of its own, as a terminal's Ctrl-C reaches it; `with` closes the pipe
    # however the test ends, and the group is killed in `finally` if anything is left.
    with subprocess.Popen(
        [*(str(factory), "experiment", "--seeds", "6", "--days", "90"), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            assert process.stderr is not None
            ready, _, _ = select.select([process.stderr], [], [], 120.0)
            assert ready, "the command printed nothing within 120 s"
            assert "18 runs" in process.stderr.readline()
            os.killpg(process.pid, signal.SIGINT)
            # At once: the runs under way are not waited for (one takes ~10 s on a busy core).
            _, stderr = process.communicate(timeout=60.0)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130
    assert "interrupted: no results written" in stderr
    assert "Traceback" not in stderr
    assert not (out / "results.json").exists()
