"""Overload without loss: robots as fast as possible against one service; prints JSON.

Runs the three commands a user would, each in its own process group on this machine: ``factory
broker`` (Mosquitto with the project's config: ``max_queued_messages 100000``), ``factory serve``
(SQLite in a fresh state dir) and ``factory simulate --factor 0`` for ``--seconds`` of wall time
(default 6 minutes), then Ctrl-C (SIGINT) to the simulator and waits until the service has stored
what it will store. Reported:

* ``readings_made`` (the simulator's own count of sensor readings, its last line) and
  ``readings_stored`` (rows in the service's database), ``lost`` (made − stored distinct) and
  ``duplicated`` (rows − distinct ``(robot, boot, seq, idx)``): both must be 0;
* ``max_not_stored``: the most messages the simulator had made and the service had not yet
  reported stored (the flow-control backlog), and ``held_s``, how long the robots waited;
* ``broker_drop_warnings``: Mosquitto's "Outgoing messages are being dropped" lines;
* ``refused_by_service``: messages the service refused, by reason (``clock``: the clock guard);
* wall time of the run and of the drain after it, CPU seconds of the three processes, load.

``--flow-window 0`` runs the simulator without flow control (the run before issue 15's fix).

    .venv/bin/python bench/bench_overload.py [--seconds 360] [--flow-window N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from broker_config.embedded import free_port  # noqa: E402

FACTORY = str(Path(sys.executable).with_name("factory"))
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 120.0
#: The drain ends when the stored count has not moved for this long (or all are stored).
QUIET_S = 20.0
DRAIN_TIMEOUT_S = 3600.0
POLL_S = 1.0
DONE = re.compile(
    r"done: (\d+) messages sent, (\d+) readings made"
    r"(?:; flow control held the robots ([\d,.]+) s, at most ([\d,]+) messages)?"
)
DROPPED = "Outgoing messages are being dropped"


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [FACTORY, *args], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def cpu_s(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU seconds of a process and its children, while it still runs."""
    try:
        proc = psutil.Process(process.pid)
        total = sum(proc.cpu_times()[:2])
        for child in proc.children(recursive=True):
            total += sum(child.cpu_times()[:2])
        return round(total, 1)
    except psutil.Error:
        return float("nan")


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the service exited ({process.returncode}) before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(POLL_S)
    sys.exit("the service was not ready within 60 s")


def stored(db: Path) -> tuple[int, int]:
    """Rows of readings and distinct readings in the service's database (read-only)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        rows = con.execute("SELECT count(*) FROM telemetry").fetchone()[0]
        distinct = con.execute(
            "SELECT count(*) FROM (SELECT DISTINCT robot, boot, seq, idx FROM telemetry)"
        ).fetchone()[0]
    return int(rows), int(distinct)


def refused(db: Path) -> dict[str, int]:
    """The service's rejected messages by reason (``clock``: the clock guard's)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        return dict(con.execute("SELECT reason, count FROM reject_counts").fetchall())


def run(seconds: float, flow_window: int | None, state: Path) -> dict[str, Any]:
    port, http = free_port(), free_port()
    broker_url = f"mqtt://127.0.0.1:{port}"
    base = ["--state-dir", str(state)]
    broker = spawn(["broker", *base, "--port", str(port), "--impl", "mosquitto"], state / "b.log")
    processes = [broker]
    try:
        serve_args = ["serve", *base, "--broker", broker_url, "--port", str(http)]
        serve = spawn(serve_args, state / "s.log")
        processes.append(serve)
        wait_ready(f"http://127.0.0.1:{http}", serve)
        flow = [] if flow_window is None else ["--flow-window", str(flow_window)]
        sim_args = ["simulate", *base, "--broker", broker_url, "--factor", "0", *flow]
        started = time.monotonic()
        simulate = spawn(sim_args, state / "sim.log")
        processes.append(simulate)
        deadline = started + seconds
        while time.monotonic() < deadline and simulate.poll() is None:
            time.sleep(POLL_S)
        sim_cpu = cpu_s(simulate)
        stop(simulate, signal.SIGINT)
        run_s = time.monotonic() - started
        say(f"simulator stopped after {run_s:.0f} s; waiting for the service to store the rest")
        match = DONE.search((state / "sim.log").read_text(errors="replace"))
        if match is None:
            sys.exit(f"no summary from the simulator; see {state / 'sim.log'}")
        made = int(match[2])
        drain_start = time.monotonic()
        last, last_change = -1, drain_start
        while time.monotonic() - drain_start < DRAIN_TIMEOUT_S:
            _, distinct = stored(state / "factory.db")
            now = time.monotonic()
            if distinct != last:
                last, last_change = distinct, now
            if distinct >= made or now - last_change > QUIET_S:
                break
            time.sleep(POLL_S)
        drain_s = time.monotonic() - drain_start
        rows, distinct = stored(state / "factory.db")
        serve_cpu, broker_cpu = cpu_s(serve), cpu_s(broker)
        broker_log = (state / "b.log").read_text(errors="replace")
        return {
            "seconds_asked": seconds,
            "flow_window": flow_window,
            "messages_sent": int(match[1]),
            "readings_made": made,
            "readings_stored": distinct,
            "lost": made - distinct,
            "duplicated": rows - distinct,
            "max_not_stored": int(match[4].replace(",", "")) if match[4] else None,
            "held_s": float(match[3].replace(",", "")) if match[3] else None,
            "broker_drop_warnings": broker_log.count(DROPPED),
            "refused_by_service": refused(state / "factory.db"),
            "run_wall_s": round(run_s, 1),
            "drain_wall_s": round(drain_s, 1),
            "readings_per_wall_s": round(distinct / (run_s + drain_s), 1),
            "cpu_s": {"simulate": sim_cpu, "serve": serve_cpu, "broker": broker_cpu},
        }
    finally:
        for process in reversed(processes):
            stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=360.0, help="wall seconds of simulating")
    parser.add_argument("--flow-window", type=int, default=None, help="0: no flow control")
    parser.add_argument("--keep", action="store_true", help="keep the state dir (logs, db)")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-overload-"))
    try:
        result = run(args.seconds, args.flow_window, state)
    finally:
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    result |= {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.keep:
        result["state_dir"] = str(state)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
