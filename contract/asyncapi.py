"""A machine-readable description of the contract, generated from the models.

``factory contract --schema`` prints :func:`schema_document`; ``docs/contract.schema.json`` is the
checked-in copy, and a test keeps the two equal.
"""

from __future__ import annotations

from typing import Any

from contract.codec import MAX_PAYLOAD_BYTES, json_schemas
from contract.ingest import INGEST_LEVEL, IngestProgress
from contract.pace import PACE_LEVEL, Pace
from contract.payloads import SCHEMA_VERSION
from contract.topics import DEFAULT_QOS, RETAINED_CHANNELS, ROOT, Channel

_DIRECTION = dict.fromkeys(Channel, "send") | {Channel.CMD: "receive"}
_SUMMARY = {
    Channel.BIRTH: "Robot metadata: kind, components, sensors with units, sample interval.",
    Channel.STATE: "RUNNING / IDLE / MAINTENANCE / BROKEN / OFFLINE; the last will sets OFFLINE.",
    Channel.TELEMETRY: "Sensor readings, one or a batch; historical=true when replayed late.",
    Channel.EVENT: "Failures, repairs, maintenance, part counts and command acknowledgements.",
    Channel.CMD: "Commands to the robot: schedule/cancel maintenance, inject a fault.",
    Channel.TRUTH: "Hidden ground truth (wear, true time to failure) for scoring only.",
}


_PACE_SUMMARY = (
    "The fleet's pace, set by the service (POST /api/clock): paused or running, and how many "
    "simulated seconds pass per wall second. Retained; robots only read it."
)

_INGEST_SUMMARY = (
    "The service's ingest progress: the newest simulated time it committed and how much waits. "
    "Retained, a few times a second; publishers keep within a window of it (flow control)."
)


def schema_document() -> dict[str, Any]:
    """An AsyncAPI 3.0 document of the robot's side of the contract."""
    payloads = json_schemas()
    address = f"{ROOT}/{{site}}/{{area}}/{{line}}/{{robot}}/"
    params = {
        level: {"description": f"{level} name, [a-z0-9-]"}
        for level in ("site", "area", "line", "robot")
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel in Channel:
        name = channel.value
        messages[name] = {
            "name": name,
            "contentType": "application/json",
            "payload": payloads[name],
            "bindings": {
                "mqtt": {
                    "qos": DEFAULT_QOS[channel],
                    "retain": channel in RETAINED_CHANNELS,
                    "bindingVersion": "0.2.0",
                }
            },
        }
        channels[name] = {
            "address": address + name,
            "parameters": params,
            "description": _SUMMARY[channel],
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        operations[name] = {
            "action": _DIRECTION[channel],
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": _SUMMARY[channel],
        }
    messages["pace"] = {
        "name": "pace",
        "contentType": "application/json",
        "payload": Pace.model_json_schema(mode="validation"),
        "bindings": {"mqtt": {"qos": 1, "retain": True, "bindingVersion": "0.2.0"}},
    }
    channels["pace"] = {
        "address": f"{ROOT}/{{site}}/{PACE_LEVEL}",
        "parameters": {"site": params["site"]},
        "description": _PACE_SUMMARY,
        "messages": {"pace": {"$ref": "#/components/messages/pace"}},
    }
    operations["pace"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/pace"},
        "summary": _PACE_SUMMARY,
    }
    messages["ingest"] = {
        "name": "ingest",
        "contentType": "application/json",
        "payload": IngestProgress.model_json_schema(mode="validation"),
        "bindings": {"mqtt": {"qos": 0, "retain": True, "bindingVersion": "0.2.0"}},
    }
    channels["ingest"] = {
        "address": f"{ROOT}/{{site}}/{INGEST_LEVEL}",
        "parameters": {"site": params["site"]},
        "description": _INGEST_SUMMARY,
        "messages": {"ingest": {"$ref": "#/components/messages/ingest"}},
    }
    operations["ingest"] = {
        "action": "receive",
        "channel": {"$ref": "#/channels/ingest"},
        "summary": _INGEST_SUMMARY,
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Smart-factory M2M contract",
            "version": str(SCHEMA_VERSION),
            "description": (
                "Topics, payloads, QoS and retain flags between robots and the service, "
                "seen from a robot. Payloads are JSON objects of at most "
                f"{MAX_PAYLOAD_BYTES} bytes; NaN and infinities are refused."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
