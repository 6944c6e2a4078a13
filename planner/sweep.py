"""The sweep: a resumable grid of proxy runs (languages × sizes × seeds) whose ledger is an optuna study.

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
      `_serialize_sqlite` makes every transaction `BEGIN IMMEDIATE`, which takes SQLite's write lock
      before the read, so the read-check-write is serialised (0 duplicates; see tests).

   b. The same point may be enqueued twice (two sweeps reconciling the grid at the same moment). After
      its pop commits, a worker reads the point's other trials and backs off (PRUNED, `superseded`) if any
      is RUNNING or COMPLETE. Each worker writes (RUNNING) before it reads, so of two workers claiming one
      point the later reader always sees the other: at most one proceeds (both may back off; the point is
      then re-enqueued by the next reconciliation, so nothing is lost).

2. *A finished point is never rerun*: reconciliation enqueues only points without a COMPLETE trial, and
   a claim backs off if a COMPLETE trial exists (1b).

3. *A killed worker's point is retried*: a running trial records a heartbeat (user attr, every
   `sweep.heartbeat_seconds`). Any worker that finds a RUNNING trial silent for `grace_seconds` fails it
   (FAIL without an `error` attr, i.e. "lost"); finishing is first-writer-wins in every storage, so the
   owner (if it was merely slow) gets `UpdateFinishedTrialError` and discards its result. A lost point
   is re-enqueued (at most `MAX_LOST_PER_SESSION` times per sweep invocation, so a run that always kills
   its worker, e.g. out of memory, does not loop). A sweep waits for RUNNING trials of other workers to
   finish or go stale before it exits, so one `planner sweep` completes the grid even if another dies.
   The heartbeat is our own rather than optuna's because optuna's `JournalStorage` has none; it uses the
   workers' clocks, so machines sharing a study need synchronised clocks (NTP) and a grace well above
   any skew.

4. *A run that raises* is FAIL with its error text (`error`, `traceback` attrs) and is not retried by the
   same invocation (a deterministic bug would loop); a later `planner sweep` retries it. `max_failures`
   stops an invocation after that many such failures.

`runs.csv` is a pure function of the storage (one row per completed grid point, its latest COMPLETE trial),
rewritten atomically under a file lock after every finished run, so the file is always whole and the last
writer has seen the newest state.
"""

from __future__ import annotations

import csv
import fcntl
import importlib
import importlib.util
import io
import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from core.config import PlannerConfig, write_resolved
from core.errors import UserError
from core.files import atomic_write_text

log = logging.getLogger(__name__)

DEFAULT_RUNNER = "trainers.coit:train_one"
DEFAULT_DB_NAME = "sweep.db"
RUNS_CSV = "runs.csv"
JOURNAL_SUFFIXES = (".log", ".journal")
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
MAX_LOST_PER_SESSION = 2
# SQLite waits this long for the write lock before giving up; workers only hold it for milliseconds.
SQLITE_LOCK_TIMEOUT_S = 120
# Metric columns that lead runs.csv when present (others follow alphabetically).
PREFERRED_METRICS = ("chrf", "bleu", "comet", "loss")

# Trial user attributes (the trial's record; shown as-is by optuna-dashboard).
A_POINT, A_LANGUAGE, A_PAIRS, A_SEED = "point", "language", "n_pairs", "seed"
A_SESSION, A_WORKER, A_HEARTBEAT = "session", "worker", "heartbeat"
A_METRICS, A_TOKENS, A_TRAIN_S, A_EVAL_S, A_STEPS, A_RUN_DIR = (
    "metrics", "n_tokens", "train_seconds", "eval_seconds", "steps", "run_dir",
)
A_ERROR, A_TRACEBACK, A_INTERRUPTED, A_SUPERSEDED = "error", "traceback", "interrupted", "superseded"
# Study user attribute: the hash of every setting that changes a run's result.
S_RUN_HASH = "run_config_hash"


# ---------------------------------------------------------------------------------------------- grid


@dataclass(frozen=True, order=True)
class GridPoint:
    language: str
    n_pairs: int
    seed: int

    @property
    def key(self) -> str:
        """Also the run directory's name: `<lang>-<pairs>-s<seed>`."""
        return f"{self.language}-{self.n_pairs}-s{self.seed}"

    def user_attrs(self) -> dict[str, Any]:
        return {A_POINT: self.key, A_LANGUAGE: self.language, A_PAIRS: self.n_pairs, A_SEED: self.seed}


def grid_points(cfg: PlannerConfig) -> list[GridPoint]:
    """languages × sizes × seeds, largest size first: the longest runs start first, so parallel workers
    do not end the sweep waiting on one big run (longest-processing-time-first scheduling)."""
    points = [GridPoint(lang, n, s) for lang in cfg.languages for n in cfg.sweep.sizes for s in cfg.sweep.seeds]
    return sorted(points, key=lambda p: (-p.n_pairs, cfg.languages.index(p.language), p.seed))


def run_dir_for(cfg: PlannerConfig, point: GridPoint) -> Path:
    from trainers.coit import default_run_dir  # light: trainers.coit imports torch only inside train_one

    return default_run_dir(cfg, point.language, point.n_pairs, point.seed)


def run_config_hash(cfg: PlannerConfig) -> str:
    """Hash of everything a proxy run's result depends on (not the orchestration: sweep, fit, budget,
    final; not model.threads, which workers set). A study keeps it so that results trained under other
    settings are never silently mixed with new ones."""
    import hashlib

    dumped = cfg.model_dump(mode="json")
    # Not the top-level seed: proxy runs use sweep.seeds; the top-level one seeds the bootstrap and solver.
    body = {k: dumped[k] for k in ("data", "model", "train", "align")}
    body["model"] = {k: v for k, v in body["model"].items() if k != "threads"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- storage


@dataclass(frozen=True)
class StorageSpec:
    """Where the study lives. `kind` is 'rdb' (an SQLAlchemy URL) or 'journal' (a file path)."""

    kind: str
    target: str

    @property
    def display(self) -> str:
        """The location with any password masked, for messages."""
        if self.kind == "journal":
            return self.target
        from sqlalchemy.engine import make_url

        return make_url(self.target).render_as_string(hide_password=True)

    @property
    def local_file(self) -> Path | None:
        """The file holding the study when it is an SQLite database or a journal, else None."""
        if self.kind == "journal":
            return Path(self.target)
        if self.target.startswith("sqlite:///"):
            return Path(self.target[len("sqlite:///"):])
        return None


def resolve_storage(cfg: PlannerConfig, override: str | None = None) -> StorageSpec:
    """`--storage` beats `sweep.storage` beats an SQLite file in the output directory.

    Accepted: any SQLAlchemy URL (`sqlite:///…`, `postgresql://…`, `mysql+pymysql://…`), a path ending in
    .log/.journal (an optuna journal file, which machines can share over a network file system), or a
    path ending in .db/.sqlite/.sqlite3 (an SQLite file)."""
    source = "--storage" if override else "sweep.storage"
    value = override or cfg.sweep.storage
    if not value:
        return StorageSpec("rdb", f"sqlite:///{(cfg.out / DEFAULT_DB_NAME).resolve()}")
    if "://" in value:
        if value.startswith("sqlite://") and ":memory:" in value or value.rstrip("/") == "sqlite:":
            raise UserError(
                f"{source} is an in-memory SQLite database ({value}), which worker processes cannot share.",
                "Use an SQLite file (sqlite:///path/sweep.db) or leave it unset for one in the output directory.",
            )
        return StorageSpec("rdb", value)
    if value.endswith(JOURNAL_SUFFIXES):
        return StorageSpec("journal", str(Path(value).resolve()))
    if value.endswith(SQLITE_SUFFIXES):
        return StorageSpec("rdb", f"sqlite:///{Path(value).resolve()}")
    raise UserError(
        f"{source} '{value}' is neither a database URL nor a journal or SQLite file.",
        "Use an SQLAlchemy URL (postgresql://user@host/db, sqlite:///sweep.db), a journal file ending in "
        ".log or .journal, or an SQLite file ending in .db.",
    )


def _serialize_sqlite(engine) -> None:
    """Make every SQLite transaction `BEGIN IMMEDIATE` (the write lock before the first read).

    SQLAlchemy's documented recipe: stop the sqlite3 driver from issuing its own (late) BEGIN and issue
    ours when SQLAlchemy starts a transaction. Connections opened before the hooks existed are dropped."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _driver_must_not_begin(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()


def open_storage(spec: StorageSpec, create: bool) -> BaseStorage:
    """Open the storage; with `create=False` a missing SQLite/journal file is a user error, not a new file."""
    local = spec.local_file
    if local is not None:
        if not create and not local.is_file():
            raise UserError(
                f"No sweep storage at {local}.",
                "Run `planner sweep` first (with the same --config/--storage), or pass the storage it used.",
            )
        local.parent.mkdir(parents=True, exist_ok=True)
    if spec.kind == "journal":
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(spec.target))

    from sqlalchemy.exc import SQLAlchemyError

    is_sqlite = spec.target.startswith("sqlite")
    engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_S}} if is_sqlite else {}
    try:
        storage = optuna.storages.RDBStorage(spec.target, engine_kwargs=engine_kwargs)
    except ModuleNotFoundError as err:
        raise UserError(
            f"The storage {spec.display} needs the Python package '{err.name}', which is not installed.",
            "Install the database driver (e.g. `pip install psycopg2-binary` for PostgreSQL, "
            "`pip install pymysql` with a mysql+pymysql:// URL for MySQL).",
        ) from None
    except (SQLAlchemyError, ValueError) as err:
        raise UserError(
            f"Cannot open the sweep storage {spec.display}: {str(err).splitlines()[0]}",
            "Check the URL, that the database server is reachable and that the user may create tables.",
        ) from None
    if is_sqlite:
        _serialize_sqlite(storage.engine)
    return storage


# -------------------------------------------------------------------------------------------- ledger


def _trial_id(trial: FrozenTrial) -> int:
    # Storage calls take the storage-wide id; FrozenTrial exposes it only under this name.
    return trial._trial_id


@dataclass
class Ledger:
    """One study in one storage, read and written through the public `BaseStorage` API."""

    storage: BaseStorage
    study_id: int
    study_name: str

    def trials(self, states: Sequence[TrialState] | None = None) -> list[FrozenTrial]:
        return self.storage.get_all_trials(self.study_id, deepcopy=False, states=states)

    def enqueue(self, points: Iterable[GridPoint]) -> int:
        n = 0
        for point in points:
            template = optuna.trial.create_trial(state=TrialState.WAITING, user_attrs=point.user_attrs())
            self.storage.create_new_trial(self.study_id, template_trial=template)
            n += 1
        return n

    def pop(self, keys: set[str]) -> FrozenTrial | None:
        """Claim the oldest WAITING trial of one of these points (compare-and-set WAITING → RUNNING)."""
        for trial in self.trials(states=(TrialState.WAITING,)):
            if trial.user_attrs.get(A_POINT) not in keys:
                continue
            try:
                if self.storage.set_trial_state_values(_trial_id(trial), state=TrialState.RUNNING):
                    return trial
            except UpdateFinishedTrialError:
                continue
        return None

    def set_attrs(self, trial: FrozenTrial, attrs: dict[str, Any]) -> None:
        for key, value in attrs.items():
            self.storage.set_trial_user_attr(_trial_id(trial), key, value)

    def claim(self, trial: FrozenTrial, session: str, worker: str) -> bool:
        """Own a popped trial, unless its point is already running or done elsewhere (see module doc, 1b)."""
        self.set_attrs(trial, {A_SESSION: session, A_WORKER: worker, A_HEARTBEAT: time.time()})
        key = trial.user_attrs[A_POINT]
        for other in self.trials():
            if other.number == trial.number or other.user_attrs.get(A_POINT) != key or _is_superseded(other):
                continue
            if other.state in (TrialState.RUNNING, TrialState.COMPLETE):
                reason = f"trial {other.number} is {other.state.name.lower()} for the same point"
                self.set_attrs(trial, {A_SUPERSEDED: reason})
                self.finish(trial, TrialState.PRUNED)
                return False
        return True

    def finish(self, trial: FrozenTrial, state: TrialState, value: float | None = None) -> bool:
        """Finish a trial; False when someone else finished it first (it was declared lost)."""
        try:
            values = None if value is None else [value]
            self.storage.set_trial_state_values(_trial_id(trial), state=state, values=values)
            return True
        except UpdateFinishedTrialError:
            return False

    def fail_stale(self, grace_seconds: float, now: float | None = None) -> list[int]:
        """Fail RUNNING trials whose heartbeat is older than the grace period; return their numbers."""
        now = time.time() if now is None else now
        lost = []
        for trial in self.trials(states=(TrialState.RUNNING,)):
            if is_stale(trial, now, grace_seconds) and self.finish(trial, TrialState.FAIL):
                lost.append(trial.number)
        return lost


def open_ledger(cfg: PlannerConfig, spec: StorageSpec, create: bool) -> Ledger:
    """The study named after `experiment`, created when asked; refuses a study trained under other settings."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI reports the study itself; no INFO chatter
    storage = open_storage(spec, create=create)
    name = cfg.experiment
    try:
        study_id = storage.get_study_id_from_name(name)
    except KeyError:
        if not create:
            raise UserError(
                f"The storage {spec.display} holds no sweep for experiment '{name}'.",
                "Run `planner sweep` first, or check `experiment` and --storage.",
            ) from None
        try:
            # The value is a run's wall seconds: a grid has nothing to optimise, but a COMPLETE trial
            # needs a finite value, and a run whose metric came out NaN is still a result for `fit`.
            study_id = storage.create_new_study([StudyDirection.MINIMIZE], study_name=name)
        except DuplicatedStudyError:  # another sweep created it a moment ago
            study_id = storage.get_study_id_from_name(name)
    ledger = Ledger(storage, study_id, name)
    if create:
        _check_run_hash(ledger, cfg, spec)
    return ledger


def _check_run_hash(ledger: Ledger, cfg: PlannerConfig, spec: StorageSpec) -> None:
    want = run_config_hash(cfg)
    have = ledger.storage.get_study_user_attrs(ledger.study_id).get(S_RUN_HASH)
    if have is None:
        ledger.storage.set_study_user_attr(ledger.study_id, S_RUN_HASH, want)
    elif have != want:
        raise UserError(
            f"The sweep '{ledger.study_name}' in {spec.display} was run with different data/model/train "
            f"settings (settings hash {have}, this config {want}); mixing their results would be wrong.",
            "Give this config a new `experiment` name (or output_dir for the default storage), or restore "
            "the settings it was run with.",
        )


# ------------------------------------------------------------------------- ledger logic (pure functions)


class PointState(str, Enum):
    DONE = "done"
    RUNNING = "running"
    FAILED = "failed"
    PENDING = "pending"


@dataclass(frozen=True)
class PointStatus:
    point: GridPoint
    state: PointState
    trials: tuple[FrozenTrial, ...]  # this point's trials, oldest first, duplicates left out
    error: str | None = None  # the latest failure's message when FAILED

    @property
    def result(self) -> FrozenTrial | None:
        """The latest COMPLETE trial: the point's result."""
        done = [t for t in self.trials if t.state == TrialState.COMPLETE]
        return done[-1] if done else None


def _is_superseded(trial: FrozenTrial) -> bool:
    return A_SUPERSEDED in trial.user_attrs


def _is_error(trial: FrozenTrial) -> bool:
    """The run raised (as opposed to being lost or interrupted, which are retried)."""
    return trial.state == TrialState.FAIL and A_ERROR in trial.user_attrs


def _is_lost(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and A_ERROR not in trial.user_attrs and A_INTERRUPTED not in trial.user_attrs


def is_stale(trial: FrozenTrial, now: float, grace_seconds: float) -> bool:
    """A RUNNING trial whose last sign of life (heartbeat, else its start) is older than the grace period."""
    last = trial.user_attrs.get(A_HEARTBEAT)
    if last is None and trial.datetime_start is not None:
        last = trial.datetime_start.timestamp()
    return last is not None and now - float(last) > grace_seconds


def _by_point(trials: Iterable[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    groups: dict[str, list[FrozenTrial]] = defaultdict(list)
    for t in sorted(trials, key=lambda t: t.number):
        if A_POINT in t.user_attrs and not _is_superseded(t):
            groups[t.user_attrs[A_POINT]].append(t)
    return groups


def _failed_this_session(trials: Sequence[FrozenTrial], session: str | None) -> bool:
    mine = [t for t in trials if session is not None and t.user_attrs.get(A_SESSION) == session]
    return any(map(_is_error, mine)) or sum(map(_is_lost, mine)) >= MAX_LOST_PER_SESSION


def _failure_message(trial: FrozenTrial) -> str:
    if A_ERROR in trial.user_attrs:
        return str(trial.user_attrs[A_ERROR])
    return f"worker {trial.user_attrs.get(A_WORKER, '?')} stopped (killed or lost) during the run"


def point_statuses(
    points: Sequence[GridPoint], trials: Iterable[FrozenTrial], session: str | None = None
) -> list[PointStatus]:
    """Each grid point's state. FAILED means the latest attempt raised (or, within `session`, the point
    was lost too often); a point whose worker was lost is PENDING, since it will be retried."""
    groups = _by_point(trials)
    statuses = []
    for point in points:
        ts = tuple(groups.get(point.key, ()))
        states = {t.state for t in ts}
        error = None
        if TrialState.COMPLETE in states:
            state = PointState.DONE
        elif TrialState.RUNNING in states:
            state = PointState.RUNNING
        elif TrialState.WAITING in states or not ts:
            state = PointState.PENDING
        elif _is_error(ts[-1]) or _failed_this_session(ts, session):
            state, error = PointState.FAILED, _failure_message(ts[-1])
        else:
            state = PointState.PENDING
        statuses.append(PointStatus(point, state, ts, error))
    return statuses


def points_to_enqueue(
    points: Sequence[GridPoint], trials: Iterable[FrozenTrial], session: str
) -> list[GridPoint]:
    """Points with no COMPLETE, RUNNING or WAITING trial, except those that failed in this session.
    A point that failed in an earlier session is retried; one that raised in this session is not."""
    groups = _by_point(trials)
    todo = []
    for point in points:
        ts = groups.get(point.key, [])
        active = any(t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING) for t in ts)
        if not active and not _failed_this_session(ts, session):
            todo.append(point)
    return todo


def session_failures(trials: Iterable[FrozenTrial], session: str) -> list[FrozenTrial]:
    """Runs that raised in this sweep invocation (what `max_failures` counts)."""
    return [t for t in trials if _is_error(t) and t.user_attrs.get(A_SESSION) == session]


# ------------------------------------------------------------------------------------------ runs.csv


def _ordered_metrics(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [m for m in PREFERRED_METRICS if m in names] + sorted(names - set(PREFERRED_METRICS))


def runs_table(statuses: Sequence[PointStatus]) -> tuple[list[str], list[dict[str, Any]]]:
    """runs.csv's columns and rows: one row per completed grid point (its latest COMPLETE trial),
    ordered by language (as configured), size and seed. Contract columns first (language, n_pairs, n_tokens,
    seed, metrics…, status, train_seconds)."""
    language_order = {lang: i for i, lang in enumerate(dict.fromkeys(s.point.language for s in statuses))}
    results = sorted(((s.point, s.result) for s in statuses if s.result is not None),
                     key=lambda pr: (language_order[pr[0].language], pr[0].n_pairs, pr[0].seed))
    metrics = _ordered_metrics(m for _, t in results for m in t.user_attrs.get(A_METRICS, {}))
    columns = ["language", "n_pairs", "n_tokens", "seed", *metrics, "status", "train_seconds",
               "eval_seconds", "steps", "run_dir", "trial"]
    rows = []
    for point, t in results:
        attrs = t.user_attrs
        values = attrs.get(A_METRICS, {})
        rows.append({
            "language": point.language, "n_pairs": point.n_pairs, "n_tokens": attrs.get(A_TOKENS),
            "seed": point.seed, **{m: values.get(m) for m in metrics}, "status": "complete",
            "train_seconds": attrs.get(A_TRAIN_S), "eval_seconds": attrs.get(A_EVAL_S),
            "steps": attrs.get(A_STEPS), "run_dir": attrs.get(A_RUN_DIR), "trial": t.number,
        })
    return columns, rows


def write_csv_atomic(path: Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Render the table in memory, then write it atomically: readers see the old or the new file, never
    half of one, and a row that does not fit the columns leaves the old file untouched."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    atomic_write_text(path, buf.getvalue())


def export_runs(ledger: Ledger, points: Sequence[GridPoint], path: Path) -> int:
    """Regenerate runs.csv from the storage; returns the number of rows. Reading the storage and writing
    happen under one file lock, so whichever worker writes last has also read last."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        columns, rows = runs_table(point_statuses(points, ledger.trials()))
        write_csv_atomic(path, columns, rows)
    return len(rows)


# ----------------------------------------------------------------------------------------------- ETA


def run_seconds(trial: FrozenTrial) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def predict_seconds(done: Sequence[tuple[int, float]], n_pairs: int) -> float | None:
    """Predict a run's wall time from finished runs' (n_pairs, seconds): least squares of
    seconds = a + b·pairs (a = evaluation and start-up, b = training per pair at fixed epochs) when the
    finished runs span two sizes, else their mean scaled by size; None before any run finished."""
    if not done:
        return None
    xs, ys = [float(x) for x, _ in done], [float(y) for _, y in done]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx > 0:
        b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
        a = my - b * mx
        if b >= 0:
            return max(0.0, a + b * n_pairs)
    return my * n_pairs / mx


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    running: int
    failed: int
    pending: int
    run_seconds: float  # summed wall time of finished runs
    elapsed_seconds: float | None  # first run start → last activity (now while runs are running)
    remaining_seconds: float | None  # estimated wall time left at the current parallelism


def summarize(statuses: Sequence[PointStatus], now: float, workers: int | None = None) -> Progress:
    """Counts and times over the grid. Remaining time = predicted run times of the points not yet done
    (minus what running ones already spent) divided by the parallelism (`workers`, else runs running)."""
    counts = {s: 0 for s in PointState}
    for s in statuses:
        counts[s.state] += 1
    finished = [(s.point.n_pairs, sec) for s in statuses
                for t in s.trials if t.state == TrialState.COMPLETE and (sec := run_seconds(t)) is not None]
    starts = [t.datetime_start.timestamp() for s in statuses for t in s.trials if t.datetime_start]
    ends = [t.datetime_complete.timestamp() for s in statuses for t in s.trials if t.datetime_complete]
    elapsed = None
    if starts:
        last = now if counts[PointState.RUNNING] or not ends else max(ends)
        elapsed = max(0.0, last - min(starts))
    remaining = None
    if finished or counts[PointState.DONE] == len(statuses):
        left = 0.0
        for s in statuses:
            if s.state in (PointState.PENDING, PointState.RUNNING):
                left += predict_seconds(finished, s.point.n_pairs) or 0.0
            if s.state == PointState.RUNNING:
                running = [t for t in s.trials if t.state == TrialState.RUNNING and t.datetime_start]
                if running:
                    left -= min(left, max(0.0, now - running[-1].datetime_start.timestamp()))
        parallel = workers or max(1, counts[PointState.RUNNING])
        remaining = left / parallel
    return Progress(
        total=len(statuses), done=counts[PointState.DONE], running=counts[PointState.RUNNING],
        failed=counts[PointState.FAILED], pending=counts[PointState.PENDING],
        run_seconds=sum(sec for _, sec in finished), elapsed_seconds=elapsed, remaining_seconds=remaining,
    )


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    if seconds < 10:
        return f"{seconds:.1f}s"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


# ------------------------------------------------------------------------------------------- runners


Runner = Callable[..., Any]


def resolve_runner(spec: str) -> Runner:
    """`module:function` or `path/to/file.py:function` → the callable.

    This is how another trainer plugs into the sweep: any function with `train_one`'s signature
    `(cfg, language, n_pairs, seed, run_dir=None, progress=True)` returning an object with `metrics` (a
    dict of floats), `n_tokens`, `train_seconds`, `eval_seconds`, `steps` and `run_dir`."""
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr.isidentifier():
        raise UserError(f"--runner '{spec}' is not of the form module:function or file.py:function.")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise UserError(f"--runner file {path} does not exist.")
            unique = f"planner_runner_{abs(hash(str(path.resolve())))}"
            module_spec = importlib.util.spec_from_file_location(unique, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[unique] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise UserError(f"--runner '{spec}': module {err.name} cannot be imported.") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"--runner '{spec}': {module_name} has no function '{attr}'.")
    return fn


# -------------------------------------------------------------------------------------------- worker


@dataclass(frozen=True)
class WorkerSettings:
    session: str
    runner: str = DEFAULT_RUNNER
    max_failures: int | None = None
    heartbeat_seconds: float = 30.0
    grace_seconds: float = 120.0

    @property
    def poll_seconds(self) -> float:
        return min(self.heartbeat_seconds, 5.0)


class _Heartbeat:
    """Records `heartbeat = time.time()` on a trial every interval until stopped or the trial is finished
    by someone else (declared lost), which `lost` then reports."""

    def __init__(self, ledger: Ledger, trial: FrozenTrial, interval: float):
        self._ledger, self._trial, self._interval = ledger, trial, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{trial.number}", daemon=True)
        self.lost = False

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._ledger.set_attrs(self._trial, {A_HEARTBEAT: time.time()})
            except UpdateFinishedTrialError:
                self.lost = True
                return
            except Exception as err:  # a storage hiccup: the next beat may succeed, the grace covers it
                log.warning("heartbeat of trial %d failed: %s", self._trial.number, err)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _result_attrs(result: Any) -> dict[str, Any]:
    """The trial attrs of a runner's result; a malformed result is the runner's bug and fails the run."""
    metrics = getattr(result, "metrics", None)
    if not isinstance(metrics, dict) or not metrics:
        raise TypeError(f"the runner returned {type(result).__name__} without a non-empty `metrics` dict")
    return {
        A_METRICS: {str(k): float(v) for k, v in metrics.items()},
        A_TOKENS: int(getattr(result, "n_tokens", 0) or 0),
        A_TRAIN_S: float(getattr(result, "train_seconds", 0.0) or 0.0),
        A_EVAL_S: float(getattr(result, "eval_seconds", 0.0) or 0.0),
        A_STEPS: int(getattr(result, "steps", 0) or 0),
        A_RUN_DIR: str(getattr(result, "run_dir", "") or ""),
    }


def _error_text(err: BaseException) -> str:
    text = str(err).strip() or "(no message)"
    return f"{type(err).__name__}: {text}"


def run_claimed(
    ledger: Ledger, trial: FrozenTrial, cfg: PlannerConfig, runner: Runner, heartbeat_seconds: float
) -> PointState:
    """Run one claimed trial's grid point and record the outcome on the trial."""
    attrs = trial.user_attrs
    point = GridPoint(attrs[A_LANGUAGE], int(attrs[A_PAIRS]), int(attrs[A_SEED]))
    run_dir = run_dir_for(cfg, point)
    started = time.monotonic()
    with _Heartbeat(ledger, trial, heartbeat_seconds) as beat:
        try:
            result = runner(cfg, point.language, point.n_pairs, point.seed, run_dir=run_dir, progress=False)
            record = _result_attrs(result)
        except Exception as err:
            log.error("run %s failed:\n%s", point.key, traceback.format_exc())
            record = {A_ERROR: _error_text(err), A_TRACEBACK: traceback.format_exc()[-4000:]}
        except BaseException:  # Ctrl-C / termination: not the run's fault, so retry it
            ledger.set_attrs(trial, {A_INTERRUPTED: True})
            ledger.finish(trial, TrialState.FAIL)
            raise
    try:
        ledger.set_attrs(trial, record)
    except UpdateFinishedTrialError:
        beat.lost = True
    if not beat.lost:
        if A_ERROR in record:
            if ledger.finish(trial, TrialState.FAIL):
                return PointState.FAILED
        elif ledger.finish(trial, TrialState.COMPLETE, time.monotonic() - started):
            return PointState.DONE
    log.warning("run %s ended after it was declared lost (no heartbeat for the grace period); its outcome "
                "is discarded and the point retried", point.key)
    return PointState.PENDING


def worker_loop(
    ledger: Ledger, cfg: PlannerConfig, runner: Runner, settings: WorkerSettings,
    points: Sequence[GridPoint] | None = None, on_finished: Callable[[], None] | None = None,
) -> None:
    """Claim and run grid points until the grid is complete (or only this session's failures are left),
    or this session's failures reach `max_failures`.

    When the queue is empty the worker re-enqueues missing points itself (lost runs) and, while other
    workers' runs are RUNNING, waits: one of them may die, and its point must still be run."""
    points = grid_points(cfg) if points is None else points
    keys = {p.key for p in points}
    worker = f"{socket.gethostname()}:{os.getpid()}"
    while True:
        if settings.max_failures and len(session_failures(ledger.trials(), settings.session)) >= settings.max_failures:
            return
        ledger.fail_stale(settings.grace_seconds)
        trial = ledger.pop(keys)
        if trial is None:
            trials = ledger.trials()
            if ledger.enqueue(points_to_enqueue(points, trials, settings.session)):
                continue
            if any(t.state == TrialState.RUNNING and t.user_attrs.get(A_POINT) in keys for t in trials):
                time.sleep(settings.poll_seconds)
                continue
            return
        if not ledger.claim(trial, settings.session, worker):
            continue
        run_claimed(ledger, trial, cfg, runner, settings.heartbeat_seconds)
        if on_finished is not None:
            on_finished()


def _worker_process(cfg: PlannerConfig, spec: StorageSpec, settings: WorkerSettings, threads: int,
                    log_path: str) -> None:
    """Entry point of a local worker process (spawned: a fresh interpreter, torch not yet imported)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    # The main process draws the progress bar; a worker's output goes to its log file.
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def _interrupt(signum, frame):
        # Ctrl-C reaches the whole process group and the main process then terminates its workers: the
        # second signal must not cut short the recording of the first ("interrupted", retried next time).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    cfg = cfg.model_copy(deep=True)
    cfg.model.threads = threads
    log.info("worker %d started: session %s, %d torch thread(s), runner %s",
             os.getpid(), settings.session, threads, settings.runner)
    try:
        runner = resolve_runner(settings.runner)
        ledger = open_ledger(cfg, spec, create=False)
        worker_loop(ledger, cfg, runner, settings,
                    on_finished=lambda: export_runs(ledger, grid_points(cfg), cfg.out / RUNS_CSV))
    except KeyboardInterrupt:
        log.info("worker %d interrupted", os.getpid())
        sys.exit(130)
    log.info("worker %d finished", os.getpid())


# ------------------------------------------------------------------------------------- orchestration


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(cfg: PlannerConfig, workers: int) -> int:
    """`model.threads` when set, else the cores split evenly so N workers do not oversubscribe the CPU."""
    return cfg.model.threads or max(1, available_cores() // workers)


@dataclass
class SweepReport:
    statuses: list[PointStatus]
    progress: Progress
    session: str
    failures: list[FrozenTrial]  # runs that raised in this invocation
    stopped: bool  # max_failures reached
    dead_workers: list[str]  # "worker 2 (exit -9, log …)"
    runs_csv: Path
    wall_seconds: float
    workers: int
    threads: int

    @property
    def complete(self) -> bool:
        return self.progress.done == self.progress.total


def preflight_data(cfg: PlannerConfig) -> None:
    """Fail before the first run (exit 2) if a language has fewer training pairs than the largest size."""
    from trainers.data import check_capacity, load_languages

    check_capacity(load_languages(cfg.data, cfg.languages), max(cfg.sweep.sizes))


def run_sweep(
    cfg: PlannerConfig,
    storage: str | None = None,
    workers: int | None = None,
    max_failures: int | None = None,
    runner: str = DEFAULT_RUNNER,
    progress: bool = True,
) -> SweepReport:
    """Complete the grid with `workers` local worker processes against the study in `storage`."""
    workers = workers or cfg.sweep.workers
    max_failures = max_failures or cfg.sweep.max_failures
    if workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers}).")
    spec = resolve_storage(cfg, storage)
    resolve_runner(runner)  # a bad --runner is an error now, not in every worker
    if runner == DEFAULT_RUNNER:
        preflight_data(cfg)
    write_resolved(cfg, cfg.out)
    ledger = open_ledger(cfg, spec, create=True)
    points = grid_points(cfg)
    heartbeat = float(cfg.sweep.heartbeat_seconds)
    settings = WorkerSettings(
        session=uuid.uuid4().hex[:12], runner=runner, max_failures=max_failures,
        heartbeat_seconds=heartbeat, grace_seconds=float(cfg.sweep.grace_seconds or 4 * heartbeat),
    )
    ledger.fail_stale(settings.grace_seconds)
    ledger.enqueue(points_to_enqueue(points, ledger.trials(), settings.session))
    threads = threads_per_worker(cfg, workers)
    started = time.monotonic()
    dead = _run_workers(cfg, spec, ledger, points, settings, workers, threads, progress)
    runs_csv = cfg.out / RUNS_CSV
    export_runs(ledger, points, runs_csv)
    trials = ledger.trials()
    statuses = point_statuses(points, trials, settings.session)
    failures = session_failures(trials, settings.session)
    return SweepReport(
        statuses=statuses, progress=summarize(statuses, time.time()), session=settings.session,
        failures=failures, stopped=bool(max_failures and len(failures) >= max_failures), dead_workers=dead,
        runs_csv=runs_csv, wall_seconds=time.monotonic() - started, workers=workers, threads=threads,
    )


def _run_workers(cfg, spec, ledger, points, settings, workers, threads, progress) -> list[str]:
    """Spawn the worker processes, draw one progress bar from the storage until they exit; on Ctrl-C
    stop them (their runs are marked interrupted and retried by the next sweep) and re-raise."""
    import multiprocessing

    from tqdm import tqdm

    ctx = multiprocessing.get_context("spawn")
    log_dir = cfg.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(workers):
        log_path = log_dir / f"sweep-worker-{i}.log"
        p = ctx.Process(target=_worker_process, args=(cfg, spec, settings, threads, str(log_path)),
                        name=f"sweep-worker-{i}")
        p.start()
        procs.append((p, log_path))

    done0 = summarize(point_statuses(points, ledger.trials()), time.time()).done
    bar = tqdm(total=len(points), initial=done0, unit="run", desc="sweep", disable=not progress or None,
               dynamic_ncols=True)
    try:
        while any(p.is_alive() for p, _ in procs):
            _update_bar(bar, ledger, points, settings.session, workers)
            for p, _ in procs:
                p.join(timeout=1.0 / len(procs))
        _update_bar(bar, ledger, points, settings.session, workers)
    except BaseException:  # Ctrl-C, or a bug here: never leave workers running behind our back
        # The interrupt may have landed inside one of our storage transactions; SQLite transactions take
        # the write lock up front, so drop our connection first or the workers could not record
        # "interrupted" before the join times out.
        _release_connections(ledger.storage)
        for p, _ in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM → KeyboardInterrupt in the worker, which records "interrupted"
        for p, _ in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        raise
    finally:
        bar.close()
    return [f"{p.name} (exit code {p.exitcode}; log: {log})" for p, log in procs if p.exitcode != 0]


def _release_connections(storage: BaseStorage) -> None:
    engine = getattr(storage, "engine", None)  # RDBStorage; journal files hold no lock between writes
    if engine is not None:
        storage.remove_session()
        engine.dispose()


def _update_bar(bar, ledger: Ledger, points, session: str, workers: int) -> None:
    statuses = point_statuses(points, ledger.trials(), session)
    prog = summarize(statuses, time.time(), workers)
    bar.n = prog.done
    bar.set_postfix_str(f"running {prog.running}, failed {prog.failed}, est. left "
                        f"{format_duration(prog.remaining_seconds)}", refresh=False)
    bar.refresh()


def sweep_status(cfg: PlannerConfig, storage: str | None = None) -> tuple[StorageSpec, list[PointStatus]]:
    """Read-only: every grid point's status in the study (nothing is created)."""
    spec = resolve_storage(cfg, storage)
    ledger = open_ledger(cfg, spec, create=False)
    return spec, point_statuses(grid_points(cfg), ledger.trials())
