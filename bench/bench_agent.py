"""Messages per second the device agents publish through a real Mosquitto, end to end.

Starts Mosquitto with our config on an ephemeral port, runs the default scenario's 12 robots as
MQTT devices as fast as possible (factor 0) for a span of simulated time, and counts what a QoS 1
subscriber (``mosquitto_sub`` with the service account) receives. ``published_per_s`` is how
fast the agents make QoS 1 messages (``publish`` calls into paho's queue);
``delivered_per_s`` is end to end, until the subscriber has them all. Prints JSON.

    python bench/bench_agent.py [--days 2] [--sample-s 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from broker_config.credentials import load_credentials
from broker_config.embedded import free_port, start_broker
from simulator.devices.run import LiveFactory
from simulator.model.scenario import load_scenario, parse_scenario


def count_lines(stream: IO[bytes], counter: list[int]) -> None:
    for _ in stream:
        counter[0] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0, help="simulated days")
    parser.add_argument("--sample-s", type=float, default=10.0, help="sample interval override")
    args = parser.parse_args()

    data = load_scenario().model_dump()
    for kind in data["kinds"].values():
        kind["sample_interval_s"] = args.sample_s
    scenario = parse_scenario(data, "bench scenario")

    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        broker = start_broker(impl="mosquitto", port=free_port(), state_dir=state_dir)
        try:
            credentials = load_credentials(state_dir)
            assert credentials is not None
            username, password = credentials.get("service")
            # The subscriber is Mosquitto's own C client in its own process, so the count is
            # not limited by the robots' Python threads it would otherwise share a GIL with.
            sub = subprocess.Popen(
                [
                    "mosquitto_sub",
                    "-h",
                    broker.host,
                    "-p",
                    str(broker.port),
                    "-u",
                    username,
                    "-P",
                    password,
                    "-q",
                    "1",
                    "-t",
                    "factory/#",
                    "-F",
                    "%t",
                ],
                stdout=subprocess.PIPE,
            )
            assert sub.stdout is not None
            received = [0]
            reader = threading.Thread(target=count_lines, args=(sub.stdout, received), daemon=True)
            reader.start()
            time.sleep(0.5)  # subscribed; a bench, not a test

            live = LiveFactory(
                scenario,
                seed=1,
                factor=0.0,
                host=broker.host,
                port=broker.port,
                state_dir=state_dir,
            )
            started = time.perf_counter()
            live.start(duration_s=args.days * 86400.0)
            live.wait()
            made_s = time.perf_counter() - started
            published = live.published()
            while received[0] < published and time.perf_counter() - started < 300.0:
                time.sleep(0.01)
            delivered_s = time.perf_counter() - started
            delivered = received[0]  # before the stop: its OFFLINE states are not in `published`
            live.stop()
            sub.terminate()
            sub.wait()
        finally:
            broker.stop()

    print(
        json.dumps(
            {
                "bench": "agents_through_mosquitto",
                "robots": len(scenario.robots),
                "simulated_days": args.days,
                "sample_interval_s": args.sample_s,
                "published_qos1": published,
                "delivered": delivered,
                "lost": published - min(delivered, published),
                "publish_wall_s": round(made_s, 3),
                "deliver_wall_s": round(delivered_s, 3),
                "published_per_s": round(published / made_s),
                "delivered_per_s": round(delivered / delivered_s),
                "python": platform.python_version(),
                "machine": platform.machine(),
                "load_average_1m": os.getloadavg()[0],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
