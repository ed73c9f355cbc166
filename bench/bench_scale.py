"""What the pieces past one process carry on this machine: prints JSON.

* ``store``: readings/s committed by the store itself (no broker, no HTTP), batches of
  ``--batch`` telemetry messages of 10 readings each, as the ingest consumer writes them: SQLite
  (one writer, the embedded default), PostgreSQL with one writer, and PostgreSQL with two
  writers in parallel processes (two ingest workers) on the same schema. Every run ends by
  counting the rows: ``lost`` and ``duplicated`` must be 0.
* ``failover``: the engine lock (``api.maintenance.leadership``) between two candidates on the
  machine's PostgreSQL; the leader's session ends (as when its process is killed) and the time
  until the other is elected is taken, ``--failovers`` times, at the service's default poll.
  The whole take-over of a killed ``factory serve`` adds the restore and warm-up from the store;
  ``tests/test_workers.py`` holds it under 20 s on a loaded CI box.
* ``ingest`` (:mod:`scale_ingest`): readings/s end to end, Mosquitto → ``factory serve``, with
  1 worker on SQLite, 1 and 2 workers on PostgreSQL, each against the raw paho subscriber
  ceiling on the same broker in the same run, with readings per service CPU-second; lost and
  duplicated counted from ``seq``.
* ``robots`` (:mod:`bench_fleet`, not in the default set: it takes minutes): ``--robots N`` at
  1 Hz, factor 1, for ``--duration-s`` with Mosquitto, ``factory serve`` and ``factory
  simulate``: time until all are online, lost / duplicated, ingest lag p50/p99, simulator RSS
  and threads. The issue's acceptance run is ``robots --robots 1000 --duration-s 300``.

The figures and what they say at 100 k robots: ``docs/scale.md``.

    .venv/bin/python bench/bench_scale.py [store failover ingest robots] [--batches 40]
        [--batch 500] [--failovers 5] [--messages 20000] [--robots 1000] [--duration-s 300]
        [--processes P]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_fleet import run_fleet  # noqa: E402
from scale_ingest import ingest_rates  # noqa: E402

from api.maintenance.leadership import DEFAULT_POLL_S, Leadership  # noqa: E402
from api.store import Accepted, Store  # noqa: E402
from api.store.postgres import PostgresStore  # noqa: E402
from api.store.sqlite import SqliteStore  # noqa: E402
from contract.payloads import Reading, Telemetry  # noqa: E402
from contract.topics import Channel, Topic  # noqa: E402

URLS = ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://root@127.0.0.1:5432/test")
T0 = 1_767_592_800.0
READINGS = 10


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def postgres_url() -> str:
    for url in (os.environ.get("FACTORY_TEST_POSTGRES_URL"), *URLS):
        if not url:
            continue
        try:
            with psycopg.connect(url, connect_timeout=3):
                return url
        except psycopg.Error:
            continue
    sys.exit("no PostgreSQL at 127.0.0.1:5432 (database test); set FACTORY_TEST_POSTGRES_URL")


def batches(worker: int, count: int, size: int) -> list[list[Accepted]]:
    """``count`` batches of ``size`` messages from 20 robots of worker ``worker``."""
    out, seq = [], 0
    for _ in range(count):
        batch = []
        for _ in range(size):
            seq += 1
            robot = f"w{worker}-r{seq % 20:02d}"
            ts = T0 + seq
            readings = [
                Reading(ts=ts + i / READINGS, vibration_rms_mm_s=0.5, temperature_c=40.0)
                for i in range(READINGS)
            ]
            payload = Telemetry(v=1, robot=robot, ts=ts, boot="boot-1", seq=seq, readings=readings)
            topic = Topic("site", "area", "line", robot, Channel.TELEMETRY)
            batch.append(Accepted(topic, payload, time.time()))
        out.append(batch)
    return out


def write_all(store: Store, work: list[list[Accepted]]) -> float:
    began = time.perf_counter()
    for batch in work:
        store.write(batch, [])
    return time.perf_counter() - began


def pg_writer(
    url: str, schema: str, worker: int, count: int, size: int, start: Any, out: Any
) -> None:
    store = PostgresStore(url, schema=schema)
    work = batches(worker, count, size)  # built before the clock starts
    start.wait()
    out.put(write_all(store, work))
    store.close()


def count_rows(url: str, schema: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        messages = conn.execute("SELECT count(*) FROM telemetry_messages").fetchone()
        readings = conn.execute("SELECT count(*) FROM telemetry").fetchone()
    return int(messages[0]) if messages else 0, int(readings[0]) if readings else 0


def store_rates(url: str, count: int, size: int) -> dict[str, Any]:
    expected = count * size * READINGS
    report: dict[str, Any] = {"batch_messages": size, "readings_per_message": READINGS}
    with TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        seconds = write_all(store, batches(0, count, size))
        (stored,) = store._reader().execute("SELECT count(*) FROM telemetry").fetchone()
        store.close()
    report["sqlite_1_writer"] = {
        "readings_per_s": round(expected / seconds),
        "lost": expected - stored,
    }
    for writers in (1, 2):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        PostgresStore(url, schema=schema).close()  # schema first: no race on CREATE
        results: mp.Queue[float] = mp.Queue()
        start = mp.Barrier(writers)
        processes = [
            mp.Process(target=pg_writer, args=(url, schema, w, count, size, start, results))
            for w in range(writers)
        ]
        for p in processes:
            p.start()
        wall_s = max(results.get() for _ in processes)  # they start together (the barrier)
        for p in processes:
            p.join()
        messages, readings = count_rows(url, schema)
        total = expected * writers
        report[f"postgres_{writers}_writer{'s' if writers > 1 else ''}"] = {
            "readings_per_s": round(total / wall_s),
            "lost": total - readings,
            "duplicated": max(0, readings - total),
            "messages": messages,
        }
        with psycopg.connect(url, autocommit=True) as conn:
            drop = sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
            conn.execute(drop)
    return report


async def one_failover(url: str, poll_s: float) -> float:
    elected: dict[str, float] = {}

    def seat(name: str) -> Any:
        async def on_elected() -> None:
            elected[name] = time.perf_counter()

        async def on_lost() -> None:
            return None

        return Leadership(url, name, on_elected, on_lost, poll_s=poll_s)

    first, second = seat("a"), seat("b")
    task_a = asyncio.create_task(first.run())
    while "a" not in elected:
        await asyncio.sleep(0.005)
    task_b = asyncio.create_task(second.run())
    await asyncio.sleep(poll_s * 1.5)  # b is polling and losing
    ended = time.perf_counter()
    task_a.cancel()  # its session ends: the lock is released by PostgreSQL
    await asyncio.gather(task_a, return_exceptions=True)
    while "b" not in elected:
        await asyncio.sleep(0.005)
    task_b.cancel()
    await asyncio.gather(task_b, return_exceptions=True)
    return elected["b"] - ended


def failover(url: str, runs: int) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        scoped = f"{url}?options=-csearch_path%3D{schema}"
        times = [asyncio.run(one_failover(scoped, DEFAULT_POLL_S)) for _ in range(runs)]
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return {
        "poll_s": DEFAULT_POLL_S,
        "lock_takeover_s_median": round(statistics.median(times), 3),
        "lock_takeover_s_max": round(max(times), 3),
        "runs": runs,
    }


SECTIONS = ("store", "failover", "ingest", "robots")
DEFAULT_SECTIONS = ("store", "failover", "ingest")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sections",
        nargs="*",
        help=f"what to measure (default: {' '.join(DEFAULT_SECTIONS)}; robots takes minutes)",
    )
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--failovers", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20_000, help="ingest: per run")
    parser.add_argument("--robots", type=int, default=1_000)
    parser.add_argument("--duration-s", type=float, default=300.0, help="robots: wall seconds")
    parser.add_argument("--warmup-s", type=float, default=60.0, help="robots: RSS after this")
    parser.add_argument(
        "--processes", type=int, default=None, help="robots: factory simulate --processes P"
    )
    args = parser.parse_args()
    sections = args.sections or DEFAULT_SECTIONS
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; use {', '.join(SECTIONS)}")
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
    }
    if {"store", "failover", "ingest"} & set(sections):
        url = postgres_url()
    if "store" in sections:
        say("store write rates …")
        report["store"] = store_rates(url, args.batches, args.batch)
    if "failover" in sections:
        say("engine lock failover …")
        report["failover"] = failover(url, args.failovers)
    if "ingest" in sections:
        say("end-to-end ingest …")
        report["ingest"] = ingest_rates(url, args.messages)
    if "robots" in sections:
        report["robots"] = run_fleet(args.robots, args.duration_s, args.warmup_s, args.processes)
    report["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
