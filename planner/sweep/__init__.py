"""The sweep: resumable proxy runs (the grid of languages × sizes × seeds, and mixture runs) whose ledger is
an optuna study. docs/sweep.md states every guarantee and why it holds.

Modules: `identity` (points, settings hash, data fingerprints), `storage` (resolving and opening
storages), `ledger` (the trial state machine on a storage), `state` and `progress` (pure status, retry
and ETA rules), `export` (runs.csv), `worker` (the worker loop and process), `orchestrate` (one
`planner sweep` invocation, and `planner status`'s view), `devices` (each worker's GPUs).
"""

from types import ModuleType as _Module

from planner.sweep.export import PREFERRED_METRICS, RUNS_CSV, export_runs, runs_table, write_csv_atomic
from planner.sweep.identity import (
    A_DATA, A_DEVICES, A_ERROR, A_EVAL_S, A_INTERRUPTED, A_LANGUAGE, A_METRICS, A_PAIRS, A_POINT,
    A_RUN_DIR, A_SEED, A_SESSION, A_STEPS, A_TOKENS, A_TRACEBACK, A_TRAIN_S, A_WORKER, S_RUN_HASH,
    DataFingerprints, GridPoint, data_fingerprints, grid_points, mixture_name, mixture_points, point_fingerprint,
    run_config_hash, run_dir_for, sweep_points,
)
from planner.sweep.ledger import Ledger, open_ledger, prepare
from planner.sweep.orchestrate import (
    StatusView, SweepReport, available_cores, preflight_data, run_sweep, stale_notices, sweep_status,
    threads_per_worker,
)
from planner.sweep.progress import Progress, format_duration, predict_seconds, run_seconds, summarize
from planner.sweep.state import (
    MAX_LOST_PER_SESSION, PointState, PointStatus, is_outdated, point_status, point_statuses, points_to_enqueue,
    session_failures, stale_by_language,
)
from planner.sweep.storage import DEFAULT_DB_NAME, StorageSpec, exclusive, open_storage, resolve_storage
from planner.sweep.worker import (
    DEFAULT_MIXTURE_RUNNER, DEFAULT_RUNNER, Runner, WorkerSettings, resolve_runner, run_next, worker_loop,
)

# The package's API: every name imported above (the submodules are reached by their own paths).
__all__ = sorted(n for n, v in globals().items() if not n.startswith("_") and not isinstance(v, _Module))
