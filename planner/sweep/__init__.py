"""The sweep: resumable proxy runs (the grid of languages × sizes × seeds, and mixture runs) whose ledger is
an optuna study. docs/sweep.md states every guarantee and why it holds.

Modules: `identity` (points, settings hash, data fingerprints), `storage` (resolving and opening
storages), `ledger` (the trial state machine on a storage), `state` and `progress` (pure status, retry
and ETA rules), `export` (runs.csv), `worker` (the worker loop and process), `orchestrate` (one
`planner sweep` invocation, and `planner status`'s view), `devices` (each worker's GPUs).
"""

from planner.sweep.export import PREFERRED_METRICS, RUNS_CSV, export_runs, runs_table, write_csv_atomic
from planner.sweep.identity import (
    A_DATA, A_DEVICES, A_ERROR, A_EVAL_S, A_HEARTBEAT, A_INTERRUPTED, A_LANGUAGE, A_METRICS, A_PAIRS, A_POINT,
    A_RUN_DIR, A_SEED, A_SESSION, A_STEPS, A_SUPERSEDED, A_TOKENS, A_TRACEBACK, A_TRAIN_S, A_WORKER, S_RUN_HASH,
    DataFingerprints, GridPoint, data_fingerprints, grid_points, mixture_name, mixture_points, point_fingerprint,
    run_config_hash, run_dir_for, sweep_points,
)
from planner.sweep.ledger import Ledger, check_run_hash, open_ledger
from planner.sweep.orchestrate import (
    StatusView, SweepReport, available_cores, preflight_data, run_sweep, stale_notices, sweep_status,
    threads_per_worker,
)
from planner.sweep.progress import Progress, format_duration, predict_seconds, run_seconds, summarize
from planner.sweep.state import (
    MAX_LOST_PER_SESSION, PointState, PointStatus, is_outdated, is_silent, point_status, point_statuses,
    points_to_enqueue, session_failures, stale_by_language,
)
from planner.sweep.storage import (
    DEFAULT_DB_NAME, StorageSpec, is_creation_race, open_storage, resolve_storage, retry_creation_race,
)
from planner.sweep.worker import DEFAULT_MIXTURE_RUNNER, DEFAULT_RUNNER, Runner, WorkerSettings, resolve_runner, run_claimed, worker_loop

__all__ = [
    "A_DATA",
    "A_DEVICES",
    "A_ERROR",
    "A_EVAL_S",
    "A_HEARTBEAT",
    "A_INTERRUPTED",
    "A_LANGUAGE",
    "A_METRICS",
    "A_PAIRS",
    "A_POINT",
    "A_RUN_DIR",
    "A_SEED",
    "A_SESSION",
    "A_STEPS",
    "A_SUPERSEDED",
    "A_TOKENS",
    "A_TRACEBACK",
    "A_TRAIN_S",
    "A_WORKER",
    "available_cores",
    "check_run_hash",
    "data_fingerprints",
    "DataFingerprints",
    "DEFAULT_DB_NAME",
    "DEFAULT_MIXTURE_RUNNER",
    "DEFAULT_RUNNER",
    "export_runs",
    "format_duration",
    "grid_points",
    "mixture_name",
    "mixture_points",
    "GridPoint",
    "is_creation_race",
    "is_outdated",
    "is_silent",
    "Ledger",
    "MAX_LOST_PER_SESSION",
    "open_ledger",
    "open_storage",
    "point_fingerprint",
    "point_status",
    "point_statuses",
    "sweep_points",
    "points_to_enqueue",
    "PointState",
    "PointStatus",
    "predict_seconds",
    "PREFERRED_METRICS",
    "preflight_data",
    "Progress",
    "resolve_runner",
    "resolve_storage",
    "retry_creation_race",
    "run_claimed",
    "run_config_hash",
    "run_dir_for",
    "run_seconds",
    "run_sweep",
    "Runner",
    "RUNS_CSV",
    "runs_table",
    "S_RUN_HASH",
    "session_failures",
    "stale_by_language",
    "stale_notices",
    "StatusView",
    "StorageSpec",
    "summarize",
    "sweep_status",
    "SweepReport",
    "threads_per_worker",
    "worker_loop",
    "WorkerSettings",
    "write_csv_atomic",
]
