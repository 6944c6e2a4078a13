"""The sweep: resumable proxy runs (the grid of languages × sizes × seeds, and mixture runs) whose ledger is
an optuna study. docs/sweep.md states every guarantee and why it holds.

Modules: `identity` (points, settings hash), `storage` (resolving and opening storages, the preparation
lock), `ledger` (the study: prepare, queue, fail lost runs), `state` and `progress` (pure status and ETA
rules), `export` (runs.csv), `worker` (the worker loop and process), `orchestrate` (one `planner sweep`
invocation, and `planner status`'s view). The package's API is the orchestrator's two entry points.
"""

from planner.sweep.orchestrate import StatusView, SweepReport, run_sweep, sweep_status

__all__ = ["StatusView", "SweepReport", "run_sweep", "sweep_status"]
