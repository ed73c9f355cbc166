"""What a robot's helpers see of the robot: the command desk (:mod:`~simulator.model.commands`)
and the repairs (:mod:`~simulator.model.repairs`) act on a :class:`RobotHost`, which
:class:`~simulator.model.robot.RobotModel` is. Defining it here, below all three, keeps the
model's imports one way: the robot imports its helpers, never the reverse.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, Protocol

import simpy

from contract.payloads import CancelMaintenance, InjectFault, ScheduleMaintenance
from plant.description import MaintenanceSpec
from simulator.model.degradation import ComponentState
from simulator.model.faults import ActiveFault
from simulator.model.records import TruthRecord
from simulator.model.stats import RobotStats

Command = ScheduleMaintenance | CancelMaintenance | InjectFault
#: A SimPy process body.
Steps = Generator[simpy.Event, Any, Any]


class Desk(Protocol):
    """What repairs tell the command desk."""

    def ack(self, command_id: str, status: str, reason: str | None) -> str: ...

    def clear_fault(self, fault: ActiveFault) -> None: ...


class RobotHost(Protocol):
    """The parts of a robot its command desk and repairs read and drive."""

    env: simpy.Environment
    id: str
    state: str | None
    components: dict[str, ComponentState]
    faults: list[ActiveFault]
    sensor_faults: list[ActiveFault]
    counters: RobotStats
    maintenance: MaintenanceSpec
    technicians: simpy.PriorityResource

    @property
    def desk(self) -> Desk: ...

    @property
    def now_ts(self) -> float: ...

    def event(self, body: dict[str, Any]) -> None: ...

    def emit(self, record: Any) -> None: ...

    def account(self) -> None: ...

    def wake(self) -> None: ...

    def set_state(self, state: str, reason: str) -> None: ...

    def truth(self) -> TruthRecord: ...
