"""Workers: `Study.optimize(n_trials=1)` pops a queued (WAITING) trial atomically, runs it under optuna's
heartbeat (RDB storages) and records COMPLETE or FAIL (`worker_loop`). `worker_process` is what a local
worker process runs: its own log file and torch threads, Ctrl-C recorded as "interrupted"."""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import TrialState

from core.config import PlannerConfig
from core.errors import Failure
from core.signals import blocked_stop_signals, interrupt_once, unblock_stop_signals
from planner.resources import take
from planner.runners import DEFAULT_MIXTURE_RUNNER, DEFAULT_RUNNER, Runner, resolve_runner, result_record
from planner.sweep.export import RUNS_CSV, export_runs
from planner.sweep.identity import (
    A_DEVICES, A_ERROR, A_INTERRUPTED, A_POINT, A_SESSION, A_TRACEBACK, A_WORKER, GridPoint, run_dir_for,
)
from planner.sweep.ledger import Ledger, open_ledger, this_worker
from planner.sweep.state import PointState, session_failures
from planner.sweep.storage import StorageSpec, storage_failures

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class WorkerSettings:
    session: str
    runner: str = DEFAULT_RUNNER
    mixture_runner: str = DEFAULT_MIXTURE_RUNNER
    max_failures: int | None = None
    poll_seconds: float = 1.0  # how often an idle worker looks at the study while others' runs go on
    # language → fingerprint of the data the orchestrator saw; recorded on every trial this worker claims.
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    # The GPUs this worker owns, as its CUDA_VISIBLE_DEVICES ("2,3"); "" on the CPU (planner.resources).
    devices: str = ""


class RunFailed(Exception):
    """The runner raised: its trial is FAIL with the error recorded (optuna's `catch`)."""


def run_next(ledger: Ledger, cfg: PlannerConfig, runner: Runner, settings: WorkerSettings,
             mixture_runner: Runner | None = None) -> PointState | None:
    """Take the next queued trial and run it (optuna's pop, heartbeat and tell): DONE, FAILED, PENDING
    when the run was declared lost meanwhile (its outcome is discarded: finishing is first-writer-wins),
    or None when nothing was queued."""
    outcome: dict = {}

    def objective(trial: optuna.Trial) -> float:
        outcome["trial"] = trial._trial_id
        if A_POINT not in trial.user_attrs:  # another worker took the last queued trial; optuna made a new one
            raise optuna.TrialPruned("nothing was queued")
        point = GridPoint.from_attrs(trial.user_attrs)
        if ledger.heartbeat:  # now: optuna's heartbeat thread may not beat before a run killed at once, and a
            ledger.storage.record_heartbeat(trial._trial_id)  # trial that never beat is never failed as lost
        ledger.set_attrs(trial._trial_id, {A_SESSION: settings.session, A_WORKER: this_worker(),
                                           **({A_DEVICES: settings.devices} if settings.devices else {}),
                                           **ledger.data_attrs(point)})
        started = time.monotonic()
        unblock_stop_signals()  # the main thread only (core.signals)
        try:
            run_dir = run_dir_for(cfg, point)
            if point.mixture and mixture_runner is None:
                raise RuntimeError("a mixture point was queued, and this sweep has no mixture runs configured")
            if point.mixture:
                result = mixture_runner(cfg, point.pairs, point.seed, run_dir=run_dir, progress=False)
            else:
                result = runner(cfg, point.language, point.n_pairs, point.seed, run_dir=run_dir, progress=False)
            record = result_record(result, point.mixture)
        except (Exception, SystemExit) as err:  # `sys.exit()` in a plug-in's code ends the run, not the worker
            log.error("run %s failed:\n%s", point.key, traceback.format_exc())
            error = f"{type(err).__name__}: {str(err).strip() or '(no message)'}"
            ledger.set_attrs(trial._trial_id, {A_ERROR: error, A_TRACEBACK: traceback.format_exc()[-4000:]})
            outcome["state"] = PointState.FAILED
            raise RunFailed(point.key) from None
        except BaseException:  # Ctrl-C / termination: not the run's fault, so the next sweep retries it
            ledger.set_attrs(trial._trial_id, {A_INTERRUPTED: True})
            raise
        ledger.set_attrs(trial._trial_id, record)
        outcome["state"] = PointState.DONE
        # The value is a run's wall seconds: a grid has nothing to optimise, but a COMPLETE trial needs a
        # finite value, and a run whose metric came out NaN is still a result for `fit`.
        return time.monotonic() - started

    with blocked_stop_signals():  # optuna's heartbeat thread is born blocked; the objective unblocks
        try:
            ledger.study.optimize(objective, n_trials=1, catch=(RunFailed,), gc_after_trial=False)
        except (UpdateFinishedTrialError, ValueError):
            if "trial" not in outcome or ledger.storage.get_trial(outcome["trial"]).state == TrialState.RUNNING:
                raise
            log.warning("a run ended after it was declared lost (no heartbeat for the grace period); its "
                        "outcome is discarded and the point retried")
            return PointState.PENDING
    return outcome.get("state")


def worker_loop(
    ledger: Ledger, cfg: PlannerConfig, runner: Runner, settings: WorkerSettings,
    on_finished: Callable[[], None] | None = None, mixture_runner: Runner | None = None,
) -> None:
    """Run queued points until none is queued and none is running that could come back (a run whose
    worker dies is failed and re-queued: `Ledger.fail_lost`), or this session's failures reach
    `max_failures`."""
    while True:
        trials = ledger.trials()
        if settings.max_failures and len(session_failures(trials, settings.session)) >= settings.max_failures:
            return
        if not any(t.state == TrialState.WAITING for t in trials):
            ledger.fail_lost()
            trials = ledger.trials()
        if not any(t.state == TrialState.WAITING for t in trials):
            if any(t.state == TrialState.RUNNING and ledger.may_come_back(t) for t in trials):
                time.sleep(settings.poll_seconds)
                continue
            return
        if run_next(ledger, cfg, runner, settings, mixture_runner) is not None and on_finished is not None:
            on_finished()


# A worker whose storage failed under it (a full disk, a server gone) exits with this code (EX_TEMPFAIL) after
# logging a line that starts with STORAGE_FAILURE; the orchestrator turns it into one paragraph.
STORAGE_FAILED = 75
STORAGE_FAILURE = "storage failure: "


def storage_failure(log_path: str) -> str | None:
    """The storage failure a worker logged last, or None."""
    try:
        lines = Path(log_path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return next((line.split(STORAGE_FAILURE, 1)[1] for line in reversed(lines) if STORAGE_FAILURE in line), None)


def worker_process(cfg: PlannerConfig, spec: StorageSpec, settings: WorkerSettings, threads: int,
                   log_path: str, points_of) -> None:
    """Entry point of a local worker process (spawned: a fresh interpreter, torch not yet imported).
    `points_of`: `run_sweep`'s points."""
    take(settings.devices or None, threads)  # nothing here has touched CUDA or torch yet
    # The main process draws the progress bar; a worker's output goes to its log file.
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    interrupt_once()  # recorded as "interrupted": the next sweep retries the run
    cfg = cfg.model_copy(deep=True)
    cfg.model.threads = threads
    log.info("worker %d started: session %s, %d torch thread(s), runner %s%s", os.getpid(), settings.session,
             threads, settings.runner, f", CUDA_VISIBLE_DEVICES={settings.devices}" if settings.devices else "")
    try:
        unblock_stop_signals()  # this thread alone (core.signals)
        runner = resolve_runner(settings.runner)
        mixture_runner = resolve_runner(settings.mixture_runner) if cfg.sweep.has_mixture_runs else None
        ledger = open_ledger(cfg, spec, create=False, fingerprints=settings.fingerprints)
        with storage_failures(spec):
            worker_loop(ledger, cfg, runner, settings, mixture_runner=mixture_runner,
                        on_finished=lambda: export_runs(ledger, points_of(ledger.trials()), cfg.out / RUNS_CSV))
    except KeyboardInterrupt:
        log.info("worker %d interrupted", os.getpid())
        sys.exit(130)
    except Failure as err:  # the storage failed under this worker (a full disk): the orchestrator says so
        log.error("%s%s", STORAGE_FAILURE, err.problem)
        sys.exit(STORAGE_FAILED)
    log.info("worker %d finished", os.getpid())
