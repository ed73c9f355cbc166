"""Injected faults for workshops: what each one does, to which signal, and for how long.

| fault            | target        | effect (``magnitude`` = m)                                |
|------------------|---------------|-----------------------------------------------------------|
| accelerated_wear | ``component`` | its wear age runs m × faster (onset and gamma path alike) |
| sensor_drift     | ``sensor``    | + m sensor units per hour since the fault started         |
| spike            | ``sensor``    | 5 % of samples jump by m × (danger limit − healthy base)  |
| stuck            | ``sensor``    | the first value after the start is repeated               |
| dropout          | ``sensor``    | the sensor is absent from the readings                    |
| overheat         | temperature_c | + 15 °C × m                                               |
| network_drop     | connection    | a :class:`~simulator.model.records.NetworkDrop` record    |

``duration_s`` is simulated calendar time. Without it, accelerated wear lasts until the component
is replaced, a sensor fault or overheat until the robot's next maintenance or repair (the
technician fixes it), and a network drop 60 s. Each fault touches only its target: spike draws
come from their own random stream, so the other signals stay identical to a run without it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from simulator.model.physics import TEMPERATURE, clamp_to_contract

SPIKE_PROBABILITY = 0.05
OVERHEAT_C_PER_MAGNITUDE = 15.0
NETWORK_DROP_DEFAULT_S = 60.0
HOUR_S = 3600.0


@dataclass(slots=True)
class ActiveFault:
    """A fault in force on one robot."""

    command_id: str
    fault: str
    component: str | None
    sensor: str | None
    magnitude: float
    start_ts: float
    end_ts: float  # inf: until maintenance, repair or replacement (see module docstring)
    frozen: float | None = None  # the value a stuck sensor repeats

    @property
    def target_sensor(self) -> str | None:
        return TEMPERATURE if self.fault == "overheat" else self.sensor

    def event_body(self, kind: str) -> dict[str, object]:
        """Body of the ``fault_started`` / ``fault_cleared`` event."""
        return {
            "kind": kind,
            "fault": self.fault,
            "component": self.component,
            "sensor": self.target_sensor if self.fault != "accelerated_wear" else None,
            "command_id": self.command_id,
        }


def apply_sensor_faults(
    values: dict[str, float],
    faults: list[ActiveFault],
    ts: float,
    spans: dict[str, float],
    rng: random.Random,
) -> None:
    """Change ``values`` in place as the active sensor faults (and overheat) dictate."""
    for fault in faults:
        sensor = fault.target_sensor
        if sensor is None or sensor not in values:
            continue
        kind = fault.fault
        if kind == "overheat":
            values[sensor] += OVERHEAT_C_PER_MAGNITUDE * fault.magnitude
        elif kind == "sensor_drift":
            values[sensor] += fault.magnitude * (ts - fault.start_ts) / HOUR_S
        elif kind == "spike":
            if rng.random() < SPIKE_PROBABILITY:
                values[sensor] += fault.magnitude * spans[sensor]
        elif kind == "stuck":
            if fault.frozen is None:
                fault.frozen = values[sensor]
            values[sensor] = fault.frozen
        elif kind == "dropout":
            del values[sensor]
    clamp_to_contract(values)
