"""`planner sweep --submit slurm|local`: the sweep as scheduler jobs, through submitit (docs/cluster.md).

Nothing here is a distributed layer of its own. Each job runs the ordinary sweep (`run_sweep`) against the
config's storage, with the workers its GPUs hold, so the sweep's guarantees carry over unchanged: jobs
share the points through the ledger, no point runs twice, a finished point never reruns, and the runs of
a job that dies (killed, preempted, out of time) are retried by a job still running or by the next
invocation. The submitting process checks the config, data and storage, queues the missing points once
(so the jobs only work), submits, and returns or waits.

Slurm because most academic and many industry GPU clusters run it; submitit because it is the standard
Python path to it (pickled callables, job arrays, requeue on time-out) and has a local mode that runs the
same jobs as local processes, which is how this is tested.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from core.config import PlannerConfig, write_resolved
from core.errors import UserError
from planner.estimate import format_duration
from planner.resources import available_cores, device_slices, take
from planner.runners import DEFAULT_MIXTURE_RUNNER, DEFAULT_RUNNER
from planner.sweep.identity import GridPoint, grid_points, mixture_points, sweep_points
from planner.sweep.ledger import prepare
from planner.sweep.orchestrate import checked_inputs, run_sweep, sweep_status
from planner.sweep.state import PointState, PointStatus, summarize
from planner.sweep.storage import StorageSpec, resolve_storage, storage_failures

MODES = ("slurm", "local")
JOBS_DIR = "jobs"  # default log folder, under output_dir
POLL_SECONDS = 5.0  # --wait: how often the ledger is read for progress
LISTED_POINTS = 12  # a dry run names this many waiting points, then counts the rest
MAX_REQUEUES = 3  # a job that reaches its time limit is requeued this often (its runs are retried)


@dataclass(frozen=True)
class JobSpec:
    """What one job runs: the sweep of `cfg` on `storage`. `devices`: the CUDA_VISIBLE_DEVICES a local job
    sets for itself ("" on the CPU); None under Slurm, which sets it to the job's allocation."""

    cfg: PlannerConfig
    storage: str
    runner: str
    mixture_runner: str
    max_failures: int | None
    devices: str | None


class SweepJob(submitit.helpers.Checkpointable):
    """The callable a job runs. Checkpointable: at its time limit the job is requeued as is (the ledger is
    the checkpoint); its interrupted runs are marked so and retried by whichever job comes first."""

    def __call__(self, job: JobSpec) -> dict[str, Any]:
        take(job.devices)  # before anything initialises CUDA
        report = run_sweep(job.cfg, storage=job.storage, runner=job.runner, mixture_runner=job.mixture_runner,
                           max_failures=job.max_failures, progress=False, notify=lambda line: print(line, flush=True))
        prog = report.progress
        return {"done": prog.done, "total": prog.total, "failed": prog.failed, "workers": report.workers,
                "devices": report.devices, "dead_workers": report.dead_workers}


@dataclass(frozen=True)
class SubmitPlan:
    """What `--submit` would send: the jobs, what each asks for, where they log, and the points to run."""

    mode: str
    jobs: int
    gpus_per_job: int
    workers_per_job: int
    job_devices: list[str | None]  # per job: local CUDA_VISIBLE_DEVICES, or None (Slurm allocates)
    folder: Path
    storage: StorageSpec
    total: int
    done: int
    running: list[str]
    to_run: list[str]
    failed: int
    new_ledger: bool

    def describe(self, cfg: PlannerConfig) -> list[str]:
        """The lines a dry run prints (and a real submission before it submits)."""
        c = cfg.sweep.cluster
        gpus = f"{self.gpus_per_job} GPU(s)" if self.gpus_per_job else "no GPU"
        asks = [gpus, f"{self.workers_per_job} worker(s)", f"{c.cpus_per_job} CPU(s)" if c.cpus_per_job else None,
                f"{c.mem_gb:g} GB" if c.mem_gb else None, f"{c.time_minutes} min"]
        if self.mode == "slurm":
            asks += [f"partition {c.partition}" if c.partition else None, f"account {c.account}" if c.account else None]
            asks += [f"--{k}={v}" for k, v in c.slurm_params.items()]
        lines = [f"{self.jobs} {self.mode} job(s), each: {', '.join(a for a in asks if a)}"]
        if self.mode == "local" and any(self.job_devices):
            lines.append("  GPUs per job: " + " | ".join(d or "-" for d in self.job_devices))
        lines.append(f"storage: {self.storage.display}" + (" (new: nothing run yet)" if self.new_ledger else ""))
        lines.append(f"job logs: {self.folder}")
        shown = ", ".join(self.to_run[:LISTED_POINTS])
        more = f" and {len(self.to_run) - LISTED_POINTS} more" if len(self.to_run) > LISTED_POINTS else ""
        lines.append(f"points: {self.total}, done {self.done}, running {len(self.running)}, to run "
                     f"{len(self.to_run)}" + (f" ({shown}{more})" if self.to_run else "")
                     + (f"; {self.failed} failed before, retried" if self.failed else ""))
        return lines


def check_storage(mode: str, spec: StorageSpec) -> None:
    """A Slurm job runs on another node: an SQLite file cannot be shared there safely (its locks do not
    hold over network file systems). A journal file on a shared file system or a database server can."""
    if mode == "slurm" and spec.kind == "rdb" and spec.target.startswith("sqlite"):
        raise UserError(
            f"--submit slurm needs a storage every node can share, but the sweep's storage is the SQLite file "
            f"{spec.local_file}.",
            "Set sweep.storage (or --storage) to a journal file on a shared file system (e.g. "
            "/shared/sweep.log) or a PostgreSQL URL; SQLite is fine with --submit local.",
        )


def local_job_devices(slices: Sequence[str], jobs: int, workers_per_job: int) -> list[str]:
    """Each local job's CUDA_VISIBLE_DEVICES: `workers_per_job` consecutive slices of sweep.devices, so no
    two jobs share a GPU; "" for every job on a machine without GPUs."""
    if not slices:
        return [""] * jobs
    if jobs * workers_per_job > len(slices):
        raise UserError(
            f"--submit local asks for {jobs} job(s) × {workers_per_job} GPU slice(s), but sweep.devices and "
            f"sweep.gpus_per_run give {len(slices)} slice(s) here ({'; '.join(slices)}).",
            "Lower sweep.cluster.jobs (or --jobs) or sweep.cluster.gpus_per_job, or list more devices.",
        )
    return [",".join(slices[k * workers_per_job:(k + 1) * workers_per_job]) for k in range(jobs)]


def plan_submission(cfg: PlannerConfig, mode: str, storage: str | None, jobs: int | None) -> SubmitPlan:
    """Resolve everything a submission needs and read the ledger; writes nothing."""
    if mode not in MODES:
        raise UserError(f"--submit '{mode}' is not one of {', '.join(MODES)}.")
    if getattr(cfg.sweep, "strategy", "grid") != "grid":  # the adaptive sweep is leaving the planner
        raise UserError("--submit runs the grid only; sweep.strategy 'adaptive' is experimental and decides in "
                        "one orchestrating process.", "Run `planner sweep` on each machine instead.")
    spec = resolve_storage(cfg, storage)
    check_storage(mode, spec)
    c = cfg.sweep.cluster
    n_jobs = jobs or c.jobs
    gpus = cfg.sweep.gpus_per_run if c.gpus_per_job is None else c.gpus_per_job
    workers = max(1, gpus // cfg.sweep.gpus_per_run)
    # Slurm sets a job's CUDA_VISIBLE_DEVICES to its allocation; a CPU-only job hides the node's GPUs itself
    # (not every cluster fences them off), or `devices: auto` would take GPUs it was not given.
    devices: list[str | None] = [None if gpus else ""] * n_jobs
    if mode == "local":
        slices = device_slices(cfg.sweep) if gpus else []
        if not slices:  # CPU-only jobs, or a machine without GPUs: each job one worker on the CPU
            gpus, workers = 0, 1
        devices = list(local_job_devices(slices, n_jobs, workers))
    folder = Path(c.folder or cfg.out / JOBS_DIR).resolve()
    statuses, new = _read_ledger(cfg, spec)
    by_state = {}
    for s in statuses:
        by_state.setdefault(s.state.value, []).append(s.point.key)
    return SubmitPlan(
        mode=mode, jobs=n_jobs, gpus_per_job=gpus, workers_per_job=workers, job_devices=devices, folder=folder,
        storage=spec, total=len(statuses), done=len(by_state.get("done", [])), running=by_state.get("running", []),
        to_run=[s.point.key for s in statuses if s.state.value in ("pending", "failed", "stale")],
        failed=len(by_state.get("failed", [])), new_ledger=new,
    )


def _read_ledger(cfg: PlannerConfig, spec: StorageSpec):
    """The points' statuses, read-only; on a storage without this sweep yet, every point pending."""
    local = spec.local_file
    if local is None or local.is_file():
        try:
            return sweep_status(cfg, spec.target).statuses, False
        except UserError as err:
            if "holds no sweep" not in str(err):  # only a missing study means "new"; a bad URL stays an error
                raise
    points: list[GridPoint] = grid_points(cfg) + mixture_points(cfg)
    return [PointStatus(p, PointState.PENDING, ()) for p in points], True


def queue_points(cfg: PlannerConfig, spec: StorageSpec, runner: str, mixture_runner: str) -> int:
    """Check the data and runners, then prepare the study as `run_sweep` does before its workers start, under
    the storage's lock (create it or check its settings, fail lost runs, queue every point without a
    result, once); the number queued. Each job's own `run_sweep` then finds nothing left to queue."""
    data = checked_inputs(cfg, runner, mixture_runner)  # a mistake is an error here, not in every job
    with storage_failures(spec):
        _, queued = prepare(cfg, spec, sweep_points(cfg), data.by_language)
    write_resolved(cfg, cfg.out)
    return queued


def job_config(cfg: PlannerConfig, plan: SubmitPlan) -> PlannerConfig:
    """The config a job sweeps with: its devices are the GPUs it was given (`auto` under the job's
    CUDA_VISIBLE_DEVICES) and its workers one per slice of them. Local jobs share this machine's cores, so
    unless model.threads is set each worker gets its share of all the jobs' workers, not of every core.
    None of these is part of a run's identity."""
    sweep = cfg.sweep.model_copy(update={"devices": "auto", "workers": None})
    model = cfg.model
    if plan.mode == "local" and model.threads is None:
        threads = max(1, available_cores() // (plan.jobs * plan.workers_per_job))
        model = model.model_copy(update={"threads": threads})
    return cfg.model_copy(update={"sweep": sweep, "model": model})


def make_executor(cfg: PlannerConfig, plan: SubmitPlan):
    c = cfg.sweep.cluster
    common: dict[str, Any] = {"timeout_min": c.time_minutes, "tasks_per_node": 1, "nodes": 1}
    if plan.mode == "local":
        # GPUs 0..g-1 for every job is LocalExecutor's own choice; each job sets its own slice instead.
        executor = submitit.LocalExecutor(folder=plan.folder, max_num_timeout=MAX_REQUEUES)
        executor.update_parameters(**common, gpus_per_node=0)
        return executor
    try:
        executor = submitit.AutoExecutor(folder=plan.folder, cluster="slurm", slurm_max_num_timeout=MAX_REQUEUES)
    except RuntimeError as err:  # submitit looks for srun first
        raise UserError(f"--submit slurm: {err} This machine is not a Slurm submit host.",
                        "Run it on the cluster's login node, or use --submit local.") from None
    params = {**common, "gpus_per_node": plan.gpus_per_job, "name": f"planner-sweep-{cfg.experiment}",
              "slurm_partition": c.partition, "slurm_account": c.account, "cpus_per_task": c.cpus_per_job,
              "mem_gb": c.mem_gb, "slurm_additional_parameters": dict(c.slurm_params) or None,
              "slurm_setup": list(c.setup) or None}
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    return executor


def submit(cfg: PlannerConfig, plan: SubmitPlan, runner: str, mixture_runner: str, max_failures: int | None,
           executor=None) -> list:
    """Queue the points, then submit one job per planned job (a job array on Slurm); the submitit jobs."""
    queue_points(cfg, plan.storage, runner, mixture_runner)
    executor = executor or make_executor(cfg, plan)
    specs = [JobSpec(job_config(cfg, plan), plan.storage.target, runner, mixture_runner, max_failures, devices)
             for devices in plan.job_devices]
    try:
        return executor.map_array(SweepJob(), specs)
    except FileNotFoundError as err:  # no sbatch on this machine
        raise UserError(f"--submit slurm could not run {err.filename or 'sbatch'}: this machine is not a Slurm "
                        "submit host.", "Run it on the cluster's login node, or use --submit local.") from None


def wait_for(jobs: Sequence, cfg: PlannerConfig, storage: str, say: Callable[[str], None],
             poll_seconds: float | None = None) -> list[str]:
    """Until every job has ended: a progress line from the ledger whenever it changes. Returns one line
    per job that failed (its error and log), empty when all ended normally."""
    poll = POLL_SECONDS if poll_seconds is None else poll_seconds
    last = None
    started = time.monotonic()
    while True:
        running_jobs = sum(not j.done() for j in jobs)
        prog = summarize(sweep_status(cfg, storage).statuses, time.time())
        line = (f"{prog.done}/{prog.total} points done, {prog.running} running, {prog.failed} failed, "
                f"{running_jobs}/{len(jobs)} job(s) running")
        if line != last:
            say(f"[{format_duration(time.monotonic() - started)}] {line}")
            last = line
        if not running_jobs:
            break
        time.sleep(poll)
    failed = []
    for j in jobs:
        try:
            j.result()
        except Exception as err:  # submitit re-raises the job's exception (or says it was killed) here
            text = str(err).strip().splitlines()
            failed.append(f"job {j.job_id}: {text[-1] if text else type(err).__name__} (log: {j.paths.stderr})")
    return failed


def submit_sweep(cfg: PlannerConfig, mode: str, storage: str | None = None, jobs: int | None = None,
                 runner: str | None = None, mixture_runner: str | None = None, max_failures: int | None = None,
                 wait: bool = False, dry_run: bool = False, say: Callable[[str], None] = print) -> int:
    """`planner sweep --submit`: plan, then (unless a dry run) queue and submit, then (with `wait`) follow the
    jobs to their end. The exit code: 0 submitted (or, waited for, the grid complete), 1 not complete."""
    runner, mixture_runner = runner or DEFAULT_RUNNER, mixture_runner or DEFAULT_MIXTURE_RUNNER
    plan = plan_submission(cfg, mode, storage, jobs)
    for line in plan.describe(cfg):
        say(line)
    if dry_run:
        say("dry run: nothing submitted, nothing written")
        return 0
    submitted = submit(cfg, plan, runner, mixture_runner, max_failures)
    say(f"submitted: {', '.join(f'job {j.job_id}' for j in submitted)}; logs in {plan.folder}")
    if not wait:
        say("follow with `planner status` (same --config/--storage); a failed or lost run is retried by a job "
            "still running or by the next `planner sweep --submit`.")
        return 0
    try:
        failed_jobs = wait_for(submitted, cfg, plan.storage.target, say)
    except KeyboardInterrupt:
        # Slurm jobs are the scheduler's and go on; local ones share this terminal's Ctrl-C and stop with
        # it, their runs recorded as interrupted. Either way the ledger keeps what finished.
        say("stopped waiting: Slurm jobs go on (`planner status` follows them); local jobs stopped with "
            "Ctrl-C, and their interrupted runs are retried by the next submission.")
        raise
    for line in failed_jobs:
        say(f"  job failed: {line}")
    prog = summarize(sweep_status(cfg, plan.storage.target).statuses, time.time())
    if prog.done == prog.total:
        say(f"sweep: {prog.done}/{prog.total} points done; {cfg.out / 'runs.csv'}")
        return 0
    say(f"the grid is not complete ({prog.done}/{prog.total} done, {prog.failed} failed); `planner status` lists "
        "what is missing, and `planner sweep --submit` again retries failed points and runs only the missing ones.")
    return 1
