"""Which parameters each ``inject_fault`` command needs: the rule the robot applies when it
receives one and the service applies before it sends one, so both refuse the same requests with
the same words."""

from __future__ import annotations

from contract.payloads import METRICS

SENSOR_FAULTS = frozenset({"sensor_drift", "spike", "stuck", "dropout"})
#: The reading an ``overheat`` raises.
TEMPERATURE = "temperature_c"


def fault_problem(
    fault: str, component: str | None, sensor: str | None, components: list[str]
) -> str | None:
    """Why an ``inject_fault`` cannot be applied to this robot, or ``None`` if it can."""
    if component is not None and component not in components:
        return f"unknown component {component!r}; this robot has {', '.join(components)}"
    if fault == "accelerated_wear" and component is None:
        return f"accelerated_wear needs a component (one of {', '.join(components)})"
    if fault in SENSOR_FAULTS and sensor is None:
        return f"{fault} needs a sensor (one of {', '.join(METRICS)})"
    if fault == "overheat" and sensor not in (None, TEMPERATURE):
        return f"overheat acts on {TEMPERATURE}, not {sensor}"
    return None
