"""The service's ingest progress (flow control): what a committed batch moves, per site."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from api.inbound import Inbound
from api.ingest.pipeline import BatchResult, classify
from api.ingest.progress import ProgressReport
from api.lag import IngestLag
from api.store import Accepted, Refused
from contract.codec import encode
from contract.ingest import decode_progress
from contract.payloads import Reading, Telemetry
from contract.topics import Channel, Topic

T0 = 1_767_592_800.0


def message(site: str, robot: str, seq: int, ts: float) -> Accepted:
    topic = Topic(site, "area-1", "line-1", robot, Channel.TELEMETRY)
    payload = Telemetry(
        v=1,
        robot=robot,
        ts=ts,
        boot="boot-1",
        seq=seq,
        readings=[Reading(ts=ts, temperature_c=40.0)],
    )
    return Accepted(topic, payload, 0.0)


def test_a_batch_moves_its_sites_through_and_counts() -> None:
    waiting = [7]
    report = ProgressReport(
        "factory-service",
        ["plant-1", "plant-2"],
        lambda *published: True,
        IngestLag(),
        lambda: waiting[0],
    )
    before = dict(report.reports(100.0))
    assert before["factory/plant-1/ingest"].through is None
    report.committed(
        BatchResult(
            new=[message("plant-1", "weld-01", 1, T0 + 60), message("plant-1", "weld-02", 1, T0)],
            duplicates=[message("plant-2", "weld-03", 4, T0 + 30)],
            refused=[Refused.of("factory/plant-2/a/l/weld-03/event", "invalid", "x", b"", 0.0)],
        )
    )
    report.committed(BatchResult(new=[message("plant-1", "weld-01", 2, T0 + 10)]))
    now = dict(report.reports(200.0))
    one, two = now["factory/plant-1/ingest"], now["factory/plant-2/ingest"]
    # The newest time of the newest batch, not the newest ever: a later, earlier run is not "in".
    assert one.through == T0 + 10
    assert one.committed == 3
    assert two.through == T0 + 30
    assert two.committed == 2  # the duplicate and the refused one left the broker too
    assert one.waiting == 7
    assert one.worker == "factory-service"
    assert one.ts == 200.0


def test_what_is_published_is_a_valid_report_no_robot_topic_matches() -> None:
    report = ProgressReport("factory-service", ["plant-1"], lambda *a: True, IngestLag(), int)
    ((topic, progress),) = report.reports(100.0)
    assert decode_progress(encode(progress)) == progress
    assert topic == "factory/plant-1/ingest"
    # The service's own copy, heard back through factory/#, is ignored by ingest.
    assert classify(Inbound(topic, encode(progress), 0.0, qos=0, retain=True)) is None


def test_reports_go_out_while_batches_come_and_rarely_when_idle() -> None:
    asyncio.run(reports_while_batches_come())


async def reports_while_batches_come() -> None:
    published: list[str] = []
    report = ProgressReport(
        "factory-service",
        ["plant-1"],
        lambda t, *rest: published.append(t) is None,
        IngestLag(),
        int,
    )
    task = asyncio.create_task(report.run(0.001))
    try:
        await wait_for(lambda: len(published) == 1)  # the first report at once
        report.committed(BatchResult(ignored=[Inbound("factory/plant-1/ingest", b"{}", 0.0)]))
        report.committed(BatchResult(new=[message("plant-1", "weld-01", 1, T0)]))
        await wait_for(lambda: len(published) == 2)
        for _ in range(50):  # our own report heard back changes nothing: no second one
            report.committed(BatchResult(ignored=[Inbound("factory/plant-1/ingest", b"{}", 0.0)]))
            await asyncio.sleep(0.002)
        assert len(published) == 2
    finally:
        task.cancel()


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.001)
