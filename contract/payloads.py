"""Strict payload models for every channel, shared by robots and the service.

Strict means: a string is not a number, ``true`` is not ``1``, NaN and infinities are refused,
unknown fields are refused, and every name that reaches a topic follows :mod:`contract.topics`.

Every payload carries the envelope ``v`` (schema version), ``robot``, ``ts`` (simulated time,
Unix epoch seconds), ``boot`` (the sender's boot id) and ``seq``. For a robot, ``seq`` counts from
1 over everything it publishes in one boot, so ``(robot, boot, seq)`` identifies a message and makes
ingestion idempotent. ``seq = 0`` is reserved for the last will, which the broker publishes on the
robot's behalf (:data:`WILL_SEQ`). For a command, ``boot``/``seq`` are the sender's (the service's).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

SCHEMA_VERSION = 1
#: ``seq`` of a last-will message; robots' own messages count from 1.
WILL_SEQ = 0
SEQ_MAX = 2**63 - 1
#: Sensible outer bounds; a reading past them is a broken sensor or a hostile sender.
TS_MAX = 32503680000.0  # year 3000, in Unix seconds

Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"),
]
BootId = Annotated[str, StringConstraints(min_length=4, max_length=40, pattern=r"^[a-z0-9-]+$")]
CommandId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
]
Text = Annotated[str, StringConstraints(max_length=200)]
Seq = Annotated[int, Field(ge=0, le=SEQ_MAX)]
Timestamp = Annotated[float, Field(ge=0.0, le=TS_MAX)]
Duration = Annotated[float, Field(ge=0.0, le=365 * 86400.0)]
Money = Annotated[float, Field(ge=0.0, le=1e9)]
Horizon = Annotated[float, Field(ge=0.0, le=1e10)]

RobotStateName = Literal["RUNNING", "IDLE", "MAINTENANCE", "BROKEN", "OFFLINE"]
FaultKind = Literal[
    "accelerated_wear", "sensor_drift", "spike", "stuck", "dropout", "overheat", "network_drop"
]
MetricName = Literal["vibration_rms_mm_s", "temperature_c", "motor_current_a", "cycle_time_s"]
#: ISO 10816-1 machine classes (I small machines … IV large flexible foundations).
VibrationClass = Literal["I", "II", "III", "IV"]
#: The metrics a reading may carry, with their units and the outer bounds a value must lie in.
METRICS: dict[str, tuple[str, float, float]] = {
    "vibration_rms_mm_s": ("mm/s", 0.0, 1000.0),
    "temperature_c": ("°C", -50.0, 500.0),
    "motor_current_a": ("A", 0.0, 1000.0),
    "cycle_time_s": ("s", 0.0, 86400.0),
}


class _Strict(BaseModel):
    model_config = ConfigDict(
        strict=True, extra="forbid", allow_inf_nan=False, frozen=True, populate_by_name=False
    )


class Envelope(_Strict):
    """Fields every payload carries."""

    v: Literal[1] = Field(description="Schema version.")
    robot: Name = Field(description="Robot id; equals the robot level of the topic.")
    ts: Timestamp = Field(description="Simulated time of the message, Unix epoch seconds.")
    boot: BootId = Field(description="Id of the sender's current boot (process start).")
    seq: Seq = Field(description="Per-boot sequence number; 0 is reserved for the last will.")


# --- birth -----------------------------------------------------------------------------------


class ComponentInfo(_Strict):
    name: Name
    kind: Name = Field(description="e.g. reducer, servo, gripper")


class SensorInfo(_Strict):
    name: MetricName
    unit: Text
    min: float
    max: float


class Birth(Envelope):
    """Retained metadata, published on every (re)connect."""

    kind: Name = Field(description="Robot kind from the scenario, e.g. welder.")
    model: Text
    site: Name
    area: Name
    line: Name
    components: list[ComponentInfo] = Field(min_length=1, max_length=16)
    sensors: list[SensorInfo] = Field(min_length=1, max_length=16)
    sample_interval_s: float = Field(gt=0.0, le=86400.0)
    vibration_class: VibrationClass = Field(
        description="ISO 10816-1 machine class whose zone limits are the vibration scale."
    )


# --- state -----------------------------------------------------------------------------------


class State(Envelope):
    """Retained robot state; the MQTT last will publishes ``OFFLINE`` with ``seq = 0``."""

    state: RobotStateName
    since: Timestamp = Field(description="Simulated time the robot entered this state.")
    reason: Text | None = None


# --- telemetry -------------------------------------------------------------------------------


class Reading(_Strict):
    """One sample of a robot's sensors. A sensor that gave no value is absent."""

    ts: Timestamp
    vibration_rms_mm_s: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    temperature_c: Annotated[float, Field(ge=-50.0, le=500.0)] | None = None
    motor_current_a: Annotated[float, Field(ge=0.0, le=1000.0)] | None = None
    cycle_time_s: Annotated[float, Field(ge=0.0, le=86400.0)] | None = None

    # Both methods below run for every reading the service ingests, so they name each metric
    # instead of looping over METRICS with getattr (that loop was the largest single cost of
    # validating a batch); the check after the class keeps the two lists in step.

    @model_validator(mode="after")
    def _has_a_value(self) -> Reading:
        if (
            self.vibration_rms_mm_s is None
            and self.temperature_c is None
            and self.motor_current_a is None
            and self.cycle_time_s is None
        ):
            raise ValueError("a reading needs at least one metric")
        return self

    def values(self) -> dict[str, float]:
        """The metrics present in this reading, in the order of ``METRICS``."""
        found: dict[str, float] = {}
        if (v := self.vibration_rms_mm_s) is not None:
            found["vibration_rms_mm_s"] = v
        if (v := self.temperature_c) is not None:
            found["temperature_c"] = v
        if (v := self.motor_current_a) is not None:
            found["motor_current_a"] = v
        if (v := self.cycle_time_s) is not None:
            found["cycle_time_s"] = v
        return found


if tuple(Reading.model_fields) != ("ts", *METRICS):
    raise RuntimeError("Reading's metric fields must be METRICS, in order, after ts")


#: Readings per telemetry message: 80 readings with every metric at full float precision still
#: encode within the 16 KiB payload limit (a test pins it).
MAX_BATCH = 80


class Telemetry(Envelope):
    """One reading, or a batch of readings taken in order."""

    historical: bool = Field(
        default=False,
        description="True when sent late from the store-and-forward buffer after a reconnect.",
    )
    readings: list[Reading] = Field(min_length=1, max_length=MAX_BATCH)


# --- event -----------------------------------------------------------------------------------


class Failure(Envelope):
    kind: Literal["failure"]
    component: Name
    mode: Text = "wear-out"


class RepairStarted(Envelope):
    kind: Literal["repair_started"]
    component: Name


class RepairFinished(Envelope):
    kind: Literal["repair_finished"]
    component: Name
    duration_s: Duration
    cost: Money


class MaintenanceStarted(Envelope):
    kind: Literal["maintenance_started"]
    command_id: CommandId
    component: Name


class MaintenanceFinished(Envelope):
    kind: Literal["maintenance_finished"]
    command_id: CommandId
    component: Name
    duration_s: Duration
    cost: Money


class Parts(Envelope):
    """Parts made since the robot's previous ``parts`` event."""

    kind: Literal["parts"]
    good: Annotated[int, Field(ge=0, le=10**9)]
    scrap: Annotated[int, Field(ge=0, le=10**9)]


class Ack(Envelope):
    """A robot's answer to a command: accepted, rejected (with a reason) or done."""

    kind: Literal["ack"]
    command_id: CommandId
    status: Literal["accepted", "rejected", "done"]
    reason: Text | None = None


class FaultChanged(Envelope):
    kind: Literal["fault_started", "fault_cleared"]
    fault: FaultKind
    component: Name | None = None
    sensor: MetricName | None = None
    command_id: CommandId | None = None


Event = Annotated[
    Failure
    | RepairStarted
    | RepairFinished
    | MaintenanceStarted
    | MaintenanceFinished
    | Parts
    | Ack
    | FaultChanged,
    Field(discriminator="kind"),
]


# --- cmd -------------------------------------------------------------------------------------


class _Command(Envelope):
    id: CommandId = Field(description="Command id; a robot executes a given id at most once.")
    expires_ts: Timestamp = Field(description="Simulated time after which it must not run.")

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> _Command:
        if self.expires_ts < self.ts:
            raise ValueError("expires_ts is before ts")
        return self


class ScheduleMaintenance(_Command):
    type: Literal["schedule_maintenance"]
    component: Name
    start_ts: Timestamp
    duration_s: Annotated[float, Field(gt=0.0, le=7 * 86400.0)]
    work_order: CommandId | None = None


class CancelMaintenance(_Command):
    type: Literal["cancel_maintenance"]
    target: CommandId = Field(description="Id of the schedule_maintenance command to cancel.")


class InjectFault(_Command):
    type: Literal["inject_fault"]
    fault: FaultKind
    component: Name | None = None
    sensor: MetricName | None = None
    magnitude: Annotated[float, Field(gt=0.0, le=1000.0)] = 1.0
    duration_s: Annotated[float, Field(gt=0.0, le=365 * 86400.0)] | None = None


Command = Annotated[
    ScheduleMaintenance | CancelMaintenance | InjectFault, Field(discriminator="type")
]


# --- truth -----------------------------------------------------------------------------------


class ComponentTruth(_Strict):
    name: Name
    wear: Annotated[float, Field(ge=0.0, le=1e6)]
    threshold: Annotated[float, Field(gt=0.0, le=1e6)]
    rul_s: Horizon | None = Field(
        default=None,
        description="True remaining calendar time to failure if nothing intervenes; "
        "None when it lies past the horizon the simulator drew.",
    )
    rul_op_s: Horizon | None = Field(
        default=None, description="True remaining operating time to failure."
    )


class Truth(Envelope):
    """Hidden ground truth for scoring and dataset export; the detector never reads it."""

    components: list[ComponentTruth] = Field(min_length=1, max_length=16)
