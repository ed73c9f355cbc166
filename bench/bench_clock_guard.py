"""What the clock guard costs per message, beside decoding it: prints JSON.

Telemetry messages of ``--readings`` readings from ``--robots`` robots, in time order (the
common case: every message trusted, the leader moving on); each is decoded against the contract,
then checked by a :class:`~api.ingest.clock_guard.ClockGuard`. CPU time of this process
(``time.process_time``), so other work on a shared machine disturbs it less than wall time.

    .venv/bin/python bench/bench_clock_guard.py [--messages 50000] [--robots 60] [--readings 10]
"""

from __future__ import annotations

import argparse
import json
import time

from api.ingest.clock_guard import ClockGuard, ClockRule
from contract.codec import decode_message, encode
from contract.payloads import Reading, Telemetry
from contract.topics import Channel

T0 = 1_767_592_800.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--robots", type=int, default=60)
    parser.add_argument("--readings", type=int, default=10)
    args = parser.parse_args()
    robots = [f"r-{i}" for i in range(args.robots)]
    raw = []
    for i in range(args.messages):
        robot, ts = robots[i % args.robots], T0 + i
        readings = [
            Reading(ts=ts + k * 0.01, temperature_c=40.0, vibration_rms_mm_s=0.5)
            for k in range(args.readings)
        ]
        message = Telemetry(v=1, robot=robot, ts=ts, boot="boot-1", seq=i + 1, readings=readings)
        raw.append((f"factory/s/a/l/{robot}/telemetry", encode(message)))
    started = time.process_time()
    decoded = [decode_message(topic, data)[1] for topic, data in raw]
    decode_s = time.process_time() - started
    guard = ClockGuard.resumed(ClockRule(), [(r, T0, 300.0) for r in robots])
    started = time.process_time()
    refused = sum(guard.check(Channel.TELEMETRY, payload) is not None for payload in decoded)
    guard_s = time.process_time() - started
    print(
        json.dumps(
            {
                "messages": args.messages,
                "readings_per_message": args.readings,
                "refused": refused,
                "decode_us_per_message": round(decode_s / args.messages * 1e6, 2),
                "guard_us_per_message": round(guard_s / args.messages * 1e6, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
