"""The sweep: resumable proxy runs whose ledger is an optuna study — the grid (languages × sizes × seeds)
or an adaptive sweep that adds the runs worth most to the plan (7).

The study's storage is the only shared state. Any number of `planner sweep` processes, on one machine
(`--workers N`) or many (all pointed at one PostgreSQL/MySQL URL or one journal file), cooperate through
it; there is no scheduler. Each grid point is a trial identified by its user attrs (`point`, `language`,
`n_pairs`, `seed`); a trial's life is WAITING (queued) → RUNNING (claimed by one worker) → COMPLETE
(metrics recorded) or FAIL (the run raised, or its worker was lost) or PRUNED (a duplicate that never ran).

Why enqueued trials and not `GridSampler`: `GridSampler` lets each worker pick an unvisited point on its own,
so two workers can pick the same one, and its search space is fixed when the sampler is built. Here one
WAITING trial per missing point is enqueued, workers pop them, and the grid may grow (a size added to the
config runs just the new points).

Guarantees and the argument for each:

1. *Two workers never run the same point at the same time.* Two mechanisms, both on storage primitives:

   a. Popping is a compare-and-set WAITING → RUNNING (`BaseStorage.set_trial_state_values` returns False
      unless the trial was WAITING). That is atomic on PostgreSQL/MySQL (`SELECT … FOR UPDATE` inside the
      transaction) and on the journal (appends are serialised by a file lock and replayed in order; only the
      first RUNNING record of a trial takes effect). On SQLite it is *not* atomic by default: Python's
      sqlite3 driver starts a transaction only at the first write, so two processes can both read
      WAITING and both write RUNNING (measured: 16 of 300 trials popped twice by three processes).
      `storage._serialize_sqlite` makes every transaction `BEGIN IMMEDIATE`, which takes SQLite's write lock
      before the read, so the read-check-write is serialised (0 duplicates; see tests).

   b. The same point may be enqueued twice (two sweeps reconciling the grid at the same moment). After
      its pop commits, a worker reads the point's other trials and backs off (PRUNED, `superseded`) if any
      is RUNNING or COMPLETE. Each worker writes (RUNNING) before it reads, so of two workers claiming one
      point the later reader always sees the other: at most one proceeds (both may back off; the point is
      then re-enqueued by the next reconciliation, so nothing is lost).

2. *A finished point is never rerun* (while its data is unchanged, 6): reconciliation enqueues only
   points without a current COMPLETE trial, and a claim backs off if one exists (1b).

3. *A killed worker's point is retried*: a running trial records a heartbeat (user attr, every
   `sweep.heartbeat_seconds`). Any worker that finds a RUNNING trial silent for `grace_seconds` fails it
   (FAIL without an `error` attr, i.e. "lost"); finishing is first-writer-wins in every storage, so the
   owner (if it was merely slow) gets `UpdateFinishedTrialError` and discards its result. A lost point
   is re-enqueued (at most `MAX_LOST_PER_SESSION` times per sweep invocation, so a run that always kills
   its worker, e.g. out of memory, does not loop). A sweep waits for RUNNING trials of other workers to
   finish or fall silent before it exits, so one `planner sweep` completes the grid even if another dies.
   The heartbeat is our own rather than optuna's because optuna's `JournalStorage` has none; it uses the
   workers' clocks, so machines sharing a study need synchronised clocks (NTP) and a grace well above
   any skew.

4. *A run that raises* is FAIL with its error text (`error`, `traceback` attrs) and is not retried by the
   same invocation (a deterministic bug would loop); a later `planner sweep` retries it. `max_failures`
   stops an invocation after that many such failures.

5. *Any number of sweeps may start at once on a new storage.* Creating the schema, the study and the
   study's settings record races between them; the errors a concurrent creator causes (a unique key
   taken, a table that already exists, SQLite's "database is locked") are retried with a short backoff,
   re-opening from scratch, and any other error stays a user error (`storage`). Only the sweep that
   created the study records its settings hash; the others wait for it and compare, so of two
   different configs started together the creator's stands and the other is refused (`ledger`).

6. *Results follow the data.* Each trial records a fingerprint of its language's training pool and test
   split (`data_fingerprint`, taken by the orchestrator from `data`). A COMPLETE trial whose fingerprint
   differs from the current data is outdated: its point is STALE, left out of runs.csv, and re-run by
   the next sweep (once per invocation, so machines that disagree about the data cannot re-run each
   other's results forever). A language the data loader cannot read (a plug-in runner's own data) has
   no fingerprint and its results are never judged outdated.

7. *An adaptive sweep (`sweep.strategy: adaptive`) keeps every guarantee above.* Its runs are ordinary
   grid-point trials, queued, claimed, heartbeaten, retried and exported by the same code; only *which*
   points exist differs: the start design (a function of the config) followed by the batches recorded on
   the study's decision trials, in order (`chosen`). A decision is made by one `planner sweep`
   orchestrator at a time (a decision trial claimed by the same compare-and-set and back-off as a run,
   under the same heartbeat, failed by the same `fail_silent` when its decider dies), recorded before its
   runs are queued (a decider killed in between leaves recorded points that any worker's reconciliation
   queues), and never applied by a decider declared lost (finishing is first-writer-wins). Its budget
   counts every chosen run, finished, running, queued or failed, so it is never exceeded. `rounds` argues
   each step.

Modules: `identity` (grid points, settings hash, data fingerprints), `storage` (resolving and opening
storages), `ledger` (the trial state machine on a storage), `state` and `progress` (pure status, retry
and ETA rules), `export` (runs.csv), `worker` (the worker loop and process), `orchestrate` (one
`planner sweep` invocation, and `planner status`'s view); for the adaptive sweep, `design` (start design,
decision records), `voi` (the value of a run, pure array math), `adaptive` (the decisions, storage-free),
`chosen` (the chosen points and sweep_choices.csv from the study's trials) and `rounds` (who decides, on
the ledger).

`runs.csv` is a pure function of the storage (one row per grid point with a current result, its latest
COMPLETE trial), rewritten atomically under a file lock after every finished run, so the file is always
whole and the last writer has seen the newest state.
"""

from planner.sweep.chosen import CHOICES_CSV, adaptive_points, choices_table, points_source
from planner.sweep.export import PREFERRED_METRICS, RUNS_CSV, export_runs, runs_table, write_csv_atomic
from planner.sweep.identity import (
    A_DATA, A_DEVICES, A_ERROR, A_EVAL_S, A_HEARTBEAT, A_INTERRUPTED, A_LANGUAGE, A_METRICS, A_PAIRS, A_POINT,
    A_RUN_DIR, A_SEED, A_SESSION, A_STEPS, A_SUPERSEDED, A_TOKENS, A_TRACEBACK, A_TRAIN_S, A_WORKER, S_RUN_HASH,
    DataFingerprints, GridPoint, data_fingerprints, grid_points, mixture_name, mixture_points, point_fingerprint,
    run_config_hash, run_dir_for,
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
    "adaptive_points",
    "available_cores",
    "CHOICES_CSV",
    "choices_table",
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
    "points_source",
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
