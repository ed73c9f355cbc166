#!/usr/bin/env python3
"""The project's two commands, runnable on a fresh clone with nothing but Python 3.11+.

    python3 dev.py demo [factory up options]   # run the whole demo locally
    python3 dev.py test [pytest options]       # lint, type-check and run the test suite

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
    return subprocess.call([str(a) for a in args], cwd=ROOT, env=env)


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


def test(args: list[str]) -> int:
    """Lint, type-check, then run pytest; stop at the first failing stage."""
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
