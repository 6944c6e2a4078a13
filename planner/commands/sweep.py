"""`planner sweep`: run the grid of proxy runs (languages × sizes × seeds) on an optuna study."""

from __future__ import annotations

import argparse
import sys

from planner.commands import add_config_option, config_from_args
from core.errors import UserError

DESCRIPTION = """\
Run one CoIT proxy run per grid point (languages × sweep.sizes × sweep.seeds) and write runs.csv.

The grid is an optuna study (the run ledger): by default an SQLite file in the output directory. Point
several machines at one study (--storage postgresql://…, mysql+pymysql://…, or a shared journal file
ending in .log) and each `planner sweep` takes points the others have not: no point runs twice at once
and a finished point never reruns. They may all start at the same moment, on a new storage too. A worker
that dies stops sending heartbeats; after sweep.grace_seconds optuna fails its run and queues it again
(a journal has no heartbeat: a run lost on a machine is retried by the next `planner sweep` there). A run that raises is
recorded as failed with its error (see `planner status`) and the sweep goes on; it is not retried by the
same invocation, but running `planner sweep` again retries failed points and completes exactly the
missing ones. Ctrl-C stops the workers; their interrupted runs are retried by the next `planner sweep`.
On a GPU machine each local worker owns its own GPUs: sweep.devices (default every GPU torch sees) cut
into slices of sweep.gpus_per_run, one worker per slice, each run with CUDA_VISIBLE_DEVICES set to its
worker's slice (recorded per run: runs.csv's devices column, `planner status`).
Each run records a fingerprint of its language's data (training pool and test split): when a language's
data has changed since its runs, `planner sweep` says so and re-runs that language's points (`planner
status` shows them as stale meanwhile, and runs.csv leaves them out).

With sweep.mixtures the study also holds mixture proxy runs (one model on the uniform mixture of N pairs
per language, and with sweep.leave_one_out one run without each language), and with sweep.probes one
mixture run at each probe's pairs per language (e.g. the transfer-aware plan's): runs.csv gets a row per
language scored inside each, from which `planner fit` measures cross-lingual transfer (docs/transfer.md).

With --submit slurm (or local) the sweep runs as scheduler jobs through submitit (docs/cluster.md): this
command queues the missing points once, submits sweep.cluster.jobs jobs that each run the sweep's workers
on the GPUs the job was given (against the same storage: a journal on a shared file system or a database
server, not SQLite, for Slurm), prints the job ids and the log folder, and returns, or with --wait follows
them from the ledger. A run lost with its job is retried by another job or the next submission.
--dry-run prints what would be submitted and submits and writes nothing.

Exit codes: 0 sweep complete, 1 points failed or --max-failures reached, 2 a mistake in the input.
"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="run the proxy runs (the grid) on an optuna study",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_option(p)
    p.add_argument("--storage", metavar="URL", default=None,
                   help="optuna storage: SQLAlchemy URL, journal file (.log/.journal) or SQLite file (.db); "
                   "default: sweep.storage, else <output_dir>/sweep.db")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="local worker processes (default sweep.workers, else one per GPU slice of "
                   "sweep.devices, else 1); each gets cores/N torch threads unless model.threads is set")
    p.add_argument("--max-failures", type=int, default=None, metavar="N",
                   help="stop after N runs fail in this invocation (exit 1); default sweep.max_failures")
    # Hidden: plug in another trainer, `module:function` or `file.py:function` with train_one's signature.
    p.add_argument("--runner", default=None, help=argparse.SUPPRESS)
    # Hidden: the same for mixture proxy runs (sweep.mixtures), with train_mixture_proxy's signature.
    p.add_argument("--mixture-runner", default=None, help=argparse.SUPPRESS)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--submit", choices=("slurm", "local"), default=None,
                   help="submit the sweep as jobs (sweep.cluster) to Slurm, or run them as local processes, "
                   "through submitit; prints the job ids and returns (docs/cluster.md)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="with --submit: how many jobs (default sweep.cluster.jobs)")
    p.add_argument("--wait", action="store_true",
                   help="with --submit: wait for the jobs, printing progress from the ledger; exit 0 when the "
                   "grid is complete")
    p.add_argument("--dry-run", action="store_true",
                   help="with --submit: print the jobs, their resources, the storage and the points to run; "
                   "submit and write nothing")
    p.set_defaults(func=run)


def run(args) -> int:
    import optuna
    from planner.runners import DEFAULT_MIXTURE_RUNNER, DEFAULT_RUNNER
    from planner.estimate import format_duration
    from planner.sweep import run_sweep

    if args.submit is None and (args.wait or args.dry_run or args.jobs is not None):
        raise UserError("--wait, --dry-run and --jobs go with --submit slurm|local.")
    if args.submit is not None and args.workers is not None:
        raise UserError("--workers sets local worker processes; with --submit each job runs one worker per GPU "
                        "slice it holds.", "Use --jobs N (or sweep.cluster.jobs) and sweep.cluster.gpus_per_job.")
    for name in ("workers", "max_failures", "jobs"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1 (got {value}).")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own summary says what happened
    cfg = config_from_args(args)
    if args.submit is not None:
        from planner.cluster import submit_sweep

        return submit_sweep(cfg, args.submit, storage=args.storage, jobs=args.jobs, runner=args.runner,
                            mixture_runner=args.mixture_runner, max_failures=args.max_failures, wait=args.wait,
                            dry_run=args.dry_run, say=lambda line: print(line, flush=True))
    report = run_sweep(
        cfg, storage=args.storage, workers=args.workers, max_failures=args.max_failures,
        runner=args.runner or DEFAULT_RUNNER, mixture_runner=args.mixture_runner or DEFAULT_MIXTURE_RUNNER,
        progress=not args.no_progress,
        notify=lambda line: print(line, flush=True),  # before the progress bar starts
    )
    prog = report.progress
    stale = f", {prog.stale} stale" if prog.stale else ""
    gpus = f" on GPUs {' | '.join(report.devices)}" if report.devices else ""  # worker by worker
    print(f"sweep: {prog.done}/{prog.total} points done, {prog.failed} failed, {prog.pending} pending{stale} "
          f"({report.workers} worker(s) × {report.threads} thread(s){gpus}, "
          f"{format_duration(report.wall_seconds)}); {report.runs_csv}")
    for trial in report.failures:
        attrs = trial.user_attrs
        print(f"  failed: {attrs.get('point')} (trial {trial.number}): {attrs.get('error')}", file=sys.stderr)
    for dead in report.dead_workers:
        print(f"  worker stopped abnormally: {dead}", file=sys.stderr)
    if report.complete:
        return 0
    if report.stopped:
        print(f"stopped: {len(report.failures)} runs failed in this sweep (max failures "
              f"{args.max_failures or cfg.sweep.max_failures}). Fix the cause and run `planner sweep` again: "
              "finished points are kept and failed ones are retried.", file=sys.stderr)
    else:
        print("the grid is not complete; `planner status` lists what is missing, and running `planner sweep` "
              "again retries failed points and runs only the missing ones.", file=sys.stderr)
    return 1
