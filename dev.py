#!/usr/bin/env python3
"""The project's two commands, runnable on a fresh clone with nothing but Python 3.11+.

    python3 dev.py demo [factory up options]   # run the whole demo locally
    python3 dev.py test [pytest options]       # lint, type-check and run the test suite
    python3 dev.py test --under-load [...]     # the same while two busy loops hog two cores

Both create ``.venv`` on first use (and refresh it when ``pyproject.toml`` changes), so there is
nothing to install by hand. ``python3 dev.py shell`` prints how to activate that environment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed-from"
SOURCE_PACKAGES = [
    "contract",
    "plant",
    "simulator",
    "engine",
    "experiment",
    "api",
    "broker_config",
    "dashboards",
    "factory",
]


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


def run(*args: str | Path, env: dict[str, str] | None = None) -> int:
    """Run a command and wait for it. On Ctrl-C keep waiting: the child got the same SIGINT
    (same process group) and is stopping in order — pytest tearing down its fixtures, stopping
    what the tests started. (``subprocess.call`` would SIGKILL it 0.25 s after the Ctrl-C and
    leave whatever it had started running.)"""
    with subprocess.Popen([str(a) for a in args], cwd=ROOT, env=env) as process:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                say("interrupted; waiting for it to stop what it started …")


def ensure_environment() -> None:
    """Create .venv and install the project with its test extras when missing or stale."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script may be run by an older python3
        sys.exit(f"Python 3.11+ is needed; this is {sys.version.split()[0]}.")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not (BIN / "python").exists():
        say(f"creating a virtual environment in {VENV.relative_to(ROOT)}/ …")
        try:
            venv.EnvBuilder(with_pip=True).create(VENV)
        except (subprocess.CalledProcessError, OSError) as exc:
            shutil.rmtree(VENV, ignore_errors=True)  # a half-made .venv would fool the next run
            sys.exit(
                f"[dev] could not create {VENV.name}/ ({exc}). On Debian or Ubuntu install the "
                "venv module first: sudo apt install python3-venv"
            )
    say("installing the project and its test tools (first run takes a minute or two) …")
    steps: list[list[str | Path]] = [
        [BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[test]"],
    ]
    for step in steps:
        if run(*step) != 0:
            sys.exit("[dev] installation failed; see the pip output above.")
    STAMP.write_text(wanted + "\n")


def demo(args: list[str]) -> int:
    command = [str(BIN / "factory"), "up", *args]
    if os.name == "posix":
        # Become `factory up`: Ctrl-C then reaches it alone, and it stops its parts in order
        # (a parent waiting in subprocess.call would kill it 0.25 s after the interrupt).
        os.chdir(ROOT)
        os.execv(command[0], command)
    return run(*command)


#: ``--under-load``: how many busy processes run beside the tests (the laptop of issue 11 had
#: a load of 3–7 on two cores; two hogs on top of the tests themselves gives that).
HOGS = 2


#: A busy loop that dies with its parent (Linux: PR_SET_PDEATHSIG), however dev.py ends.
HOG = """
import ctypes, signal, sys
if sys.platform.startswith("linux"):
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)
while True:
    pass
"""


def _hogs(count: int) -> list[subprocess.Popen[bytes]]:
    """``count`` CPU-bound busy loops, each in a process group of its own."""
    return [
        subprocess.Popen([sys.executable, "-c", HOG], start_new_session=True) for _ in range(count)
    ]


def test(args: list[str]) -> int:
    """Lint, type-check, then run pytest; stop at the first failing stage. With
    ``--under-load`` all of it runs while busy loops hog the cores, stopped however it ends."""
    if "--under-load" not in args:
        return _test(args)
    hogs = _hogs(HOGS)
    say(f"under load: {HOGS} busy loops running (pids {', '.join(str(h.pid) for h in hogs)})")
    try:
        return _test([a for a in args if a != "--under-load"])
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
        say("busy loops stopped.")


def _test(args: list[str]) -> int:
    stages: list[tuple[str, list[str | Path]]] = [
        ("ruff check", [BIN / "ruff", "check", "."]),
        ("ruff format --check", [BIN / "ruff", "format", "--check", "."]),
        ("mypy", [BIN / "mypy"]),
        ("layer contracts (lint-imports)", [BIN / "lint-imports"]),
        ("pytest", [BIN / "python", "-m", "pytest", *args]),
    ]
    for name, command in stages:
        say(f"{name} …")
        code = run(*command)
        if code != 0:
            say(f"{name} failed (exit code {code}).")
            return code
    say("all checks passed.")
    return 0


def main(argv: list[str]) -> int:
    commands = {"demo": demo, "test": test}
    if not argv or argv[0] not in (*commands, "shell"):
        print(__doc__)
        return 2
    ensure_environment()
    if argv[0] == "shell":
        print(f"source {BIN / 'activate'}")
        return 0
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
