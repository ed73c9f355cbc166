"""Every workshop lab, run as written against a live ``factory up --workshop``.

The commands come from the lab's Markdown (``tests/workshop_labs.py``), never from this file;
the demo runs on free ports in a state dir of its own, in its own process group, stopped however
the test ends. Each lab must print what it promises, and only that; and the check is shown to
bite: with any one expected line deleted, the same output fails it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from workshop_labs import Lab, labs, mismatch

from broker_config.embedded import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_TIMEOUT_S = 90.0
LAB_TIMEOUT_S = 150.0


@dataclass(frozen=True)
class Demo:
    env: dict[str, str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("workshop")
    state = root / "state"
    mqtt_port = free_port()
    while (http_port := free_port()) == mqtt_port:
        pass
    log = root / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "factory.cli", "up", "--workshop", "--bind", "127.0.0.1",
             "--state-dir", str(state),
             "--mqtt-port", str(mqtt_port), "--http-port", str(http_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "Workshop mode" not in log.read_text(errors="replace"):
            assert process.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "MQTT_PORT": str(mqtt_port),
            "API": f"http://127.0.0.1:{http_port}",
            "KEY": (state / "api-key").read_text().strip(),
            "TMPDIR": str(root),
        }
        yield Demo(env)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(60.0)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


ALL_LABS = labs()


def test_workshop_has_at_least_ten_labs_each_with_commands_and_a_promise() -> None:
    assert len(ALL_LABS) >= 10
    for lab in ALL_LABS:
        assert lab.commands, f"{lab.name} has no ```sh block"
        assert len(lab.expected) >= 1, f"{lab.name} promises nothing under 'What you should see'"
    index = (ALL_LABS[0].path.parent / "index.md").read_text(encoding="utf-8")
    for lab in ALL_LABS:
        assert lab.path.name in index, f"the index does not list {lab.path.name}"


@pytest.mark.parametrize("lab", ALL_LABS, ids=[lab.name for lab in ALL_LABS])
def test_workshop_lab(demo: Demo, lab: Lab, tmp_path: Path) -> None:
    script = "\n".join(lab.commands)
    result = subprocess.run(
        ["bash", "-c", script],
        env=demo.env,
        capture_output=True,
        text=True,
        timeout=LAB_TIMEOUT_S,
        start_new_session=True,
        check=False,
    )
    printed = (result.stdout + result.stderr).splitlines()
    problem = mismatch(lab.expected, printed)
    assert problem is None, f"{lab.name}: {problem}\n--- script ---\n{script}"
    # The promise is tight: without any one of its lines, this very output no longer matches.
    for i in range(len(lab.expected)):
        fewer = lab.expected[:i] + lab.expected[i + 1 :]
        assert mismatch(fewer, printed) is not None, (
            f"{lab.name}: deleting expected line {lab.expected[i]!r} still passes"
        )
