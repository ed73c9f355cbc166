"""Per-robot counters that the policy experiment and the summaries read (no I/O).

Time in each state is simulated seconds; ``operating_s`` is time RUNNING, planned downtime is
time in MAINTENANCE (waiting for a technician included), unplanned downtime time BROKEN
(technician response included). Costs are the scenario's per-job costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

STATES = ("RUNNING", "IDLE", "MAINTENANCE", "BROKEN")


@dataclass(slots=True)
class RobotStats:
    parts_good: int = 0
    parts_scrap: int = 0
    breakdowns: int = 0
    maintenance_jobs: int = 0
    maintenance_cost: float = 0.0
    repair_cost: float = 0.0
    samples: int = 0
    state_s: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATES, 0.0))
    failures: dict[str, int] = field(default_factory=dict)  # per component
    replacements: dict[str, int] = field(default_factory=dict)  # planned, per component

    @property
    def operating_s(self) -> float:
        return self.state_s["RUNNING"]

    @property
    def downtime_planned_s(self) -> float:
        return self.state_s["MAINTENANCE"]

    @property
    def downtime_unplanned_s(self) -> float:
        return self.state_s["BROKEN"]

    @property
    def total_cost(self) -> float:
        return self.maintenance_cost + self.repair_cost

    def with_time_in(self, state: str | None, extra_s: float) -> RobotStats:
        """A copy with ``extra_s`` more seconds in ``state`` (the state the robot is still in)."""
        snapshot = replace(
            self,
            state_s=dict(self.state_s),
            failures=dict(self.failures),
            replacements=dict(self.replacements),
        )
        if state is not None:
            snapshot.state_s[state] += extra_s
        return snapshot

    def as_dict(self) -> dict[str, Any]:
        return {
            "parts_good": self.parts_good,
            "parts_scrap": self.parts_scrap,
            "breakdowns": self.breakdowns,
            "maintenance_jobs": self.maintenance_jobs,
            "maintenance_cost": self.maintenance_cost,
            "repair_cost": self.repair_cost,
            "total_cost": self.total_cost,
            "operating_s": self.operating_s,
            "downtime_planned_s": self.downtime_planned_s,
            "downtime_unplanned_s": self.downtime_unplanned_s,
            "samples": self.samples,
            "state_s": dict(self.state_s),
            "failures": dict(sorted(self.failures.items())),
            "replacements": dict(sorted(self.replacements.items())),
        }
