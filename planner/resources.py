"""What each local worker of `planner sweep` gets: its torch threads, and the GPUs it owns
(`sweep.devices`, `sweep.gpus_per_run`).

The orchestrator resolves the devices once. `auto` is every GPU torch sees in this process; on a machine
without one that is none, and the sweep runs on the CPU exactly as it did before devices existed. Ids
count the GPUs this process sees: under an inherited CUDA_VISIBLE_DEVICES (a batch scheduler's
allocation, say) id 0 is its first entry, so a worker is never handed a GPU outside the allocation.

Worker k owns slice k, devices[k·g:(k+1)·g], and runs with CUDA_VISIBLE_DEVICES set to it (the value
recorded on each of its trials as `devices`); inside its runs "cuda" is the slice's first GPU. Devices
left over when g does not divide their number stay idle. A run that spans its g GPUs (accelerate,
torchrun) is not implemented: a run with gpus_per_run > 1 merely sees g devices.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from core.config import PlannerConfig
from core.errors import UserError
from core.sweep_config import SweepConfig

VISIBLE = "CUDA_VISIBLE_DEVICES"


def take(devices: str | None, threads: int | None = None) -> None:
    """Give this process its GPUs (a CUDA_VISIBLE_DEVICES value; None: leave it) and its CPU threads. First
    of all in a worker or job: CUDA and the BLAS pools read these once, when they start, and a runner's own
    subprocesses inherit them."""
    if devices is not None:
        os.environ[VISIBLE] = devices
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS") if threads else ():
        os.environ[var] = str(threads)


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(cfg: PlannerConfig, workers: int) -> int:
    """`model.threads` when set, else the cores split evenly so N workers do not oversubscribe the CPU."""
    return cfg.model.threads or max(1, available_cores() // workers)


def visible_gpus() -> int:
    """GPUs torch sees in this process; 0 where torch or CUDA is missing. Imports torch, so only asked
    under `devices: auto`."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count()


def _as_visible(ids: Sequence[int], env: Mapping[str, str]) -> list[str]:
    """The CUDA_VISIBLE_DEVICES entries that name `ids` for a child process: the ids themselves, or
    under an inherited CUDA_VISIBLE_DEVICES its entries at those positions (a child given "0" would
    otherwise see the machine's GPU 0, which may be another job's)."""
    inherited = env.get(VISIBLE)
    if inherited is None:
        return [str(i) for i in ids]
    entries = [e.strip() for e in inherited.split(",") if e.strip()]
    beyond = [i for i in ids if i >= len(entries)]
    if beyond:
        raise UserError(
            f"sweep.devices lists GPU {beyond[0]}, but CUDA_VISIBLE_DEVICES={inherited!r} makes "
            f"{len(entries)} GPU(s) visible here (ids 0 to {len(entries) - 1}).",
            "sweep.devices counts the GPUs this process sees; list ids below that, or use devices: auto.",
        )
    return [entries[i] for i in ids]


def device_slices(sweep: SweepConfig, env: Mapping[str, str] | None = None,
                  count: Callable[[], int] = visible_gpus) -> list[str]:
    """One CUDA_VISIBLE_DEVICES value per slice ("2,3"), in order; [] where no GPU is used (devices
    auto on a machine without one). `count` says how many GPUs torch sees (asked only under auto)."""
    env = os.environ if env is None else env
    g = sweep.gpus_per_run
    if sweep.devices == "auto":
        ids = list(range(count()))
        if ids and len(ids) < g:
            raise UserError(f"sweep.gpus_per_run is {g}, but sweep.devices: auto finds {len(ids)} GPU(s) here.",
                            "Lower sweep.gpus_per_run, or run on a machine with more GPUs.")
    else:
        ids = list(sweep.devices)  # the config already refuses fewer than g
    names = _as_visible(ids, env)
    return [",".join(names[k * g:(k + 1) * g]) for k in range(len(names) // g)]


def local_workers(requested: int | None, sweep: SweepConfig, slices: Sequence[str]) -> int:
    """How many local worker processes: --workers, else sweep.workers, else one per slice (1 on the CPU).
    A worker owns its slice alone, so more workers than slices is a user error."""
    workers = requested or sweep.workers or max(1, len(slices))
    if workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers}).")
    if slices and workers > len(slices):
        source = "--workers" if requested else "sweep.workers"
        raise UserError(f"{source} asks for {workers} workers, but sweep.devices and sweep.gpus_per_run "
                        f"({sweep.gpus_per_run}) give {len(slices)} GPU slice(s) ({'; '.join(slices)}), one "
                        f"per worker; use at most {len(slices)} workers or list more devices.")
    return workers
