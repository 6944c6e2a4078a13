"""One `planner sweep` invocation: check the data, open (or create) the study, reconcile the grid with it,
run local worker processes, draw the progress bar, export runs.csv; and `planner status`'s read-only view."""

from __future__ import annotations

import multiprocessing
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from multiprocessing import resource_tracker
from pathlib import Path

from optuna.trial import FrozenTrial
from tqdm import tqdm

from core.config import PlannerConfig, write_resolved
from core.errors import Failure
from core.files import check_output_dir
from core.signals import blocked_stop_signals, interrupt_flag
from planner.budget import DataFingerprints, data_fingerprints, sweep_data
from planner.estimate import RunCost, format_duration
from planner.resources import device_slices, local_workers, threads_per_worker
from planner.runners import DEFAULT_MIXTURE_RUNNER, DEFAULT_RUNNER, check_runners
from planner.sweep.export import RUNS_CSV, export_runs
from planner.sweep.identity import GridPoint, sweep_points
from planner.sweep.ledger import Ledger, open_ledger, prepare
from planner.sweep.state import (
    PointStatus, Progress, finished_costs, point_statuses, session_failures, stale_by_language, summarize,
)
from planner.sweep.storage import StorageSpec, release_connections, resolve_storage, storage_failures
from planner.sweep.worker import STORAGE_FAILED, WorkerSettings, storage_failure, worker_process


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
    devices: list[str] = field(default_factory=list)  # each worker's CUDA_VISIBLE_DEVICES; [] on the CPU
    rerun_stale: dict[str, list[GridPoint]] = field(default_factory=dict)  # language → points re-run: data changed

    @property
    def complete(self) -> bool:
        return self.progress.done == self.progress.total


def checked_inputs(cfg: PlannerConfig, runner: str, mixture_runner: str) -> DataFingerprints:
    """The data and the runners checked before any run (exit 2 now, not in every worker or job); the data's
    fingerprints."""
    data = sweep_data(cfg, own_trainer=runner == DEFAULT_RUNNER)
    check_runners(runner, mixture_runner if cfg.sweep.has_mixture_runs else None)
    return data


def stale_notices(stale: dict[str, list[GridPoint]]) -> list[str]:
    """One line per language whose results are re-run because its data changed: what and why."""
    return [f"{language}: data changed since its runs; re-running {len(points)} run{'' if len(points) == 1 else 's'} "
            f"({', '.join(p.key for p in points)})" for language, points in stale.items()]


def run_sweep(
    cfg: PlannerConfig,
    storage: str | None = None,
    workers: int | None = None,
    max_failures: int | None = None,
    runner: str = DEFAULT_RUNNER,
    progress: bool = True,
    notify: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    mixture_runner: str = DEFAULT_MIXTURE_RUNNER,
    after: Callable[[list[RunCost]], float | None] | None = None,
    *,
    points: Callable[[Sequence[FrozenTrial]], list[GridPoint]] | None = None,
) -> SweepReport:
    """Complete the grid with `workers` local worker processes against the study in `storage`.
    `notify` receives the lines a user should read before the runs start (re-runs of changed data).
    `after` prices the work that follows the sweep from its finished runs (`planner run`: the launch), so
    the progress bar can show the time left for the whole run. A storage that fails on the way is a
    `Failure` (`storage_failures`).

    The seam for research designs (docs/sweep.md), as `runner` is for trainers: `points` maps the study's
    trials to the sweep's points, in order (default: the grid and the mixture runs; picklable, the worker
    processes take it too). A design that grows with its results calls `run_sweep` once per round."""
    spec = resolve_storage(cfg, storage)
    points_of = points or sweep_points(cfg)
    slices = device_slices(cfg.sweep)
    workers = local_workers(workers, cfg.sweep, slices)
    slices = slices[:workers]  # fewer workers than slices leave the rest idle
    max_failures = max_failures or cfg.sweep.max_failures
    with storage_failures(spec):
        check_output_dir(cfg.out, "output_dir")
        data = checked_inputs(cfg, runner, mixture_runner)
        if note := data.note():
            notify(note)
        ledger, _ = prepare(cfg, spec, points_of, data.by_language)
        write_resolved(cfg, cfg.out)  # only now: a storage that cannot be opened leaves no output behind
        settings = WorkerSettings(
            session=uuid.uuid4().hex[:12], runner=runner, mixture_runner=mixture_runner, max_failures=max_failures,
            poll_seconds=min(float(cfg.sweep.heartbeat_seconds), 1.0), fingerprints=data.by_language,
        )
        trials = ledger.trials()
        stale = stale_by_language(point_statuses(points_of(trials), trials, settings.session, data.by_language))
        for line in stale_notices(stale):
            notify(line)
        runs_csv = cfg.out / RUNS_CSV
        if stale:  # outdated rows leave runs.csv now, not after the first run
            export_runs(ledger, points_of(trials), runs_csv)
        threads = threads_per_worker(cfg, workers)
        started = time.monotonic()
        dead = _run_workers(cfg, spec, ledger, points_of, settings, workers, threads, progress, after, slices)
        trials = ledger.trials()
        points = points_of(trials)
        export_runs(ledger, points, runs_csv)
        statuses = point_statuses(points, trials, settings.session, data.by_language)
        failures = session_failures(trials, settings.session)
    return SweepReport(
        statuses=statuses, progress=summarize(statuses, time.time()), session=settings.session,
        failures=failures, stopped=bool(max_failures and len(failures) >= max_failures), dead_workers=dead,
        runs_csv=runs_csv, wall_seconds=time.monotonic() - started, workers=workers, threads=threads,
        devices=slices, rerun_stale=stale,
    )


def _run_workers(cfg, spec, ledger, points_of, settings, workers, threads, progress, after,
                 slices: Sequence[str]) -> list[str]:
    """Spawn the worker processes (worker i owns the GPUs of `slices[i]`, none on the CPU), draw one
    progress bar from the storage until they exit; on Ctrl-C stop them (their runs are marked interrupted
    and retried by the next sweep) and re-raise."""
    ctx = multiprocessing.get_context("spawn")
    log_dir = cfg.out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []  # (process, log path)
    # Workers are born with the stop signals blocked (see core.signals). Starting a process
    # launches multiprocessing's resource tracker the first time, and that launch unblocks the signals
    # behind our back; launched beforehand, it leaves the mask alone.
    resource_tracker.ensure_running()
    with blocked_stop_signals():
        for i in range(workers):
            log_path = log_dir / f"sweep-worker-{i}.log"
            own = replace(settings, devices=slices[i]) if slices else settings
            args = (cfg, spec, own, threads, str(log_path), points_of)
            p = ctx.Process(target=worker_process, args=args, name=f"sweep-worker-{i}")
            p.start()
            procs.append((p, log_path))

    trials = ledger.trials()
    points = points_of(trials)
    done0 = summarize(point_statuses(points, trials, settings.session, ledger.fingerprints), time.time()).done
    bar = tqdm(total=len(points), initial=done0, unit="run", desc="sweep", disable=not progress or None,
               dynamic_ncols=True)
    try:
        with interrupt_flag() as check_interrupt:
            while any(p.is_alive() for p, _ in procs):
                check_interrupt()
                _update_bar(bar, ledger, points_of, settings.session, workers, after)
                for p, _ in procs:
                    p.join(timeout=1.0 / len(procs))
            check_interrupt()  # a Ctrl-C lost inside a finalizer while the workers were stopping
            _update_bar(bar, ledger, points_of, settings.session, workers, after)
    except BaseException:  # Ctrl-C, or a bug here: never leave workers running behind our back
        # The interrupt may have landed inside one of our storage transactions; SQLite transactions take
        # the write lock up front, so drop our connection first or the workers could not record
        # "interrupted" before the join times out.
        release_connections(ledger.storage)
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
    for p, log in procs:
        if p.exitcode == STORAGE_FAILED and (problem := storage_failure(log)):
            raise Failure(problem, "If the disk is full or the database server was unreachable, fix that and run the "
                          "command again: finished runs are kept.")
    return [f"{p.name} (exit code {p.exitcode}; log: {log})" for p, log in procs if p.exitcode != 0]


def _update_bar(bar, ledger: Ledger, points_of, session: str, workers: int, after) -> None:
    trials = ledger.trials()
    points = points_of(trials)
    statuses = point_statuses(points, trials, session, ledger.fingerprints)
    prog = summarize(statuses, time.time(), workers)
    bar.n = prog.done
    whole = ""
    if after is not None and prog.remaining_seconds is not None:
        rest = after(finished_costs(statuses))
        if rest is not None:
            whole = f" (whole run ~{format_duration(prog.remaining_seconds + rest)})"
    bar.set_postfix_str(f"running {prog.running}, failed {prog.failed}, est. left "
                        f"{format_duration(prog.remaining_seconds)}{whole}", refresh=False)
    bar.refresh()


@dataclass(frozen=True)
class StatusView:
    spec: StorageSpec
    statuses: list[PointStatus]
    data: DataFingerprints


def sweep_status(cfg: PlannerConfig, storage: str | None = None,
                 points: Callable[[Sequence[FrozenTrial]], list[GridPoint]] | None = None) -> StatusView:
    """Read-only: every grid point's status in the study (nothing is created), judged against the data
    as it is now (a language whose data cannot be read is not judged)."""
    spec = resolve_storage(cfg, storage)
    with storage_failures(spec):
        ledger = open_ledger(cfg, spec, create=False)
        data = data_fingerprints(cfg, strict=False)
        trials = ledger.trials()
        points = (points or sweep_points(cfg))(trials)
    return StatusView(spec, point_statuses(points, trials, fingerprints=data.by_language), data)
