"""Shared helpers for the simulator's tests: small scenarios, seeded runs, contract commands."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import simpy

from contract.payloads import CancelMaintenance, InjectFault, ScheduleMaintenance
from plant.calendar import DAY_S
from simulator.model.factory import Factory
from simulator.model.records import EventRecord, Record, Sample, StateChange, TruthRecord
from simulator.model.scenario import Scenario, load_scenario, parse_scenario

HOUR_S = 3600.0
BOOT = "test-boot"


def default() -> Scenario:
    return load_scenario()


def variant(**changes: Any) -> Scenario:
    """The default scenario with top-level sections replaced (e.g. ``lines=[...]``)."""
    data = load_scenario().model_dump()
    data.update(changes)
    return parse_scenario(data, "test variant")


def one_robot(kind: str = "welder", robot_id: str = "r-1", **kind_fields: Any) -> Scenario:
    """One robot of a default kind on one line, with optional kind field overrides."""
    data = load_scenario().model_dump()
    data["kinds"] = {kind: {**data["kinds"][kind], **kind_fields}}
    data["lines"] = [{"id": "line-1", "area": "cell", "robots": [{"id": robot_id, "kind": kind}]}]
    return parse_scenario(data, "one-robot test scenario")


Action = tuple[float, Callable[[Factory], Any]]


def run(
    scenario: Scenario,
    seed: int,
    days: float,
    actions: Iterable[Action] = (),
) -> tuple[list[Record], Factory]:
    """Run offline, calling each ``(env_time_s, action(factory))`` at its simulated time."""
    records: list[Record] = []
    env = simpy.Environment()
    factory = Factory(env, scenario, seed, records.append)
    factory.start()

    def at(delay_s: float, action: Callable[[Factory], Any]) -> Any:
        yield env.timeout(delay_s)
        action(factory)

    for delay_s, action in actions:
        env.process(at(delay_s, action))
    env.run(until=days * DAY_S)
    return records, factory


def envelope(robot: str, ts: float) -> dict[str, Any]:
    return {"v": 1, "robot": robot, "ts": ts, "boot": BOOT, "seq": 1}


def schedule(
    robot: str,
    command_id: str,
    component: str,
    start_ts: float,
    duration_s: float = 2 * HOUR_S,
    issued_ts: float | None = None,
    expires_ts: float | None = None,
) -> ScheduleMaintenance:
    issued = start_ts - HOUR_S if issued_ts is None else issued_ts
    return ScheduleMaintenance(
        **envelope(robot, issued),
        id=command_id,
        type="schedule_maintenance",
        expires_ts=start_ts + HOUR_S if expires_ts is None else expires_ts,
        component=component,
        start_ts=start_ts,
        duration_s=duration_s,
    )


def cancel(robot: str, command_id: str, target: str, ts: float) -> CancelMaintenance:
    return CancelMaintenance(
        **envelope(robot, ts),
        id=command_id,
        type="cancel_maintenance",
        expires_ts=ts + HOUR_S,
        target=target,
    )


def fault(robot: str, command_id: str, ts: float, fault: str, **fields: Any) -> InjectFault:
    return InjectFault(
        **envelope(robot, ts),
        id=command_id,
        type="inject_fault",
        expires_ts=ts + HOUR_S,
        fault=fault,
        **fields,
    )


def events(records: Iterable[Record], kind: str | None = None) -> list[EventRecord]:
    return [
        r
        for r in records
        if isinstance(r, EventRecord) and (kind is None or r.body["kind"] == kind)
    ]


def samples(records: Iterable[Record]) -> list[Sample]:
    return [r for r in records if isinstance(r, Sample)]


def truths(records: Iterable[Record]) -> list[TruthRecord]:
    return [r for r in records if isinstance(r, TruthRecord)]


def states(records: Iterable[Record]) -> list[StateChange]:
    return [r for r in records if isinstance(r, StateChange)]


def acks(records: Iterable[Record], command_id: str) -> list[tuple[str, str | None]]:
    return [
        (r.body["status"], r.body["reason"])
        for r in events(records, "ack")
        if r.body["command_id"] == command_id
    ]
