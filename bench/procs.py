"""Processes for the scale benches: start ``factory`` commands, stop them, watch their cost.

Every process gets a process group of its own and is stopped by it (SIGTERM, then SIGKILL), so
a bench never leaves a service or a simulator behind; CPU and memory are read with psutil for
the process and its children.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

STARTUP_S = 60.0


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def spawn(
    command: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``factory COMMAND …`` in a process group of its own, output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "factory.cli", *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=None if env is None else os.environ | env,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait_s: float = 60) -> float:
    """Signal the process group; the seconds until it exited."""
    began = time.monotonic()
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=wait_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    return time.monotonic() - began


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``/readyz`` answers 200; a service that exits or takes too long is stopped."""
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"factory serve did not get ready; see {log}")


def tree_usage(pid: int) -> tuple[float, int, float]:
    """RSS (MiB), threads and CPU seconds (user + system) of a process and its children."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0, 0.0
    rss, threads, cpu = 0, 0, 0.0
    for process in processes:
        try:
            rss += process.memory_info().rss
            threads += process.num_threads()
            times = process.cpu_times()
            cpu += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return rss / 2**20, threads, cpu


def cpu_share(samples: list[tuple[float, float]]) -> float | None:
    """CPU seconds per wall second between the first and the last ``(t, cpu_s)`` sample."""
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return None
    return round((samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0]), 3)
