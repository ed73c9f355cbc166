"""The plant: what a real plant's systems know of the factory — sites, areas and lines, robots
and their components with their specs, the shift calendar and its downtime windows, technicians
and costs — with its loader and validation.

It imports no other project package. The service and the maintenance engine read it; the
simulator extends it with the simulation's own parameters (:mod:`simulator.model.scenario`).
"""

from plant.calendar import DAY_S, ShiftCalendar, Window
from plant.description import (
    CalendarSpec,
    LineSpec,
    MaintenanceSpec,
    Plant,
    Robot,
    RobotSpec,
    WindowSpec,
)
from plant.loader import (
    DEFAULT_SCENARIO,
    SIMULATION_KEYS,
    PlantError,
    load_plant,
    parse_plant,
)
from plant.spec import ComponentSpec, KindSpec, SensorSpec, SensorsSpec

__all__ = [
    "DAY_S",
    "DEFAULT_SCENARIO",
    "SIMULATION_KEYS",
    "CalendarSpec",
    "ComponentSpec",
    "KindSpec",
    "LineSpec",
    "MaintenanceSpec",
    "Plant",
    "PlantError",
    "Robot",
    "RobotSpec",
    "SensorSpec",
    "SensorsSpec",
    "ShiftCalendar",
    "Window",
    "WindowSpec",
    "load_plant",
    "parse_plant",
]
