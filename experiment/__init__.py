"""The maintenance-policy experiment: the same seeded factory under each policy, offline.

``factory experiment`` runs the pure SimPy factory (:mod:`simulator.model.factory`) in a closed loop
with the maintenance engine the live service uses (:mod:`engine`) — no broker, no shortcut
detector — once per (policy, seed), in parallel, and compares breakdowns, downtime, availability,
OEE, parts, cost, MTBF/MTTR and the accuracy of the engine's RUL predictions against the
simulator's hidden ground truth. Modules:

====================  ========================================================================
:mod:`.loop`          one closed loop: record router, planning tick, command delivery
:mod:`.runs`          one (policy, seed) run and its plant metrics
:mod:`.rul_scoring`   predictions paired with the truth, per component life; RUL metrics
:mod:`.state_log`     stops, their causes and repairs, from states and events
:mod:`.trace`         one robot's trajectory for the figure
:mod:`.aggregate`     mean and Student-t 95 % interval over seeds
:mod:`.driver`        all runs in parallel, deterministic aggregation, output files
:mod:`.outputs`       results.json / .csv / .md
:mod:`.plots`         the figures
:mod:`.cli`           ``factory experiment``: option checks, progress bar
====================  ========================================================================

docs/maintenance.md ("Experiment") defines every metric and reads the default experiment.
"""

from engine.config import PLAN_INTERVAL_S
from experiment.cli import run_experiment_cli
from experiment.driver import Experiment, run_experiment, write_outputs
from experiment.loop import ClosedLoop
from experiment.runs import RunResult, RunSpec, run_one

__all__ = [
    "PLAN_INTERVAL_S",
    "ClosedLoop",
    "Experiment",
    "RunResult",
    "RunSpec",
    "run_experiment",
    "run_experiment_cli",
    "run_one",
    "write_outputs",
]
