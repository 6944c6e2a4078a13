"""The sweep: resumable proxy runs (languages × sizes × seeds, and mixture runs) whose ledger is an optuna
study; docs/sweep.md states every guarantee and why it holds. The API is the orchestrator's two entry points.
"""

from planner.sweep.orchestrate import StatusView, SweepReport, run_sweep, sweep_status

__all__ = ["StatusView", "SweepReport", "run_sweep", "sweep_status"]
