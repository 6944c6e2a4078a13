"""Wall time of one sweep with 1 worker × T threads versus W workers × (T/W) threads (same grid, same runs).

The same cores can serve one worker whose torch ops use them all (intra-op threads) or several workers
that each run a different grid point on fewer threads. Small models parallelise poorly inside an op, so
the second should win; this script measures by how much on a given machine.

    python benchmarks/sweep_workers.py                       # demo config, el+hi × 250+500 pairs
    python benchmarks/sweep_workers.py --languages all --sizes all   # the full demo grid (long)
    python benchmarks/sweep_workers.py --cores 4              # 1×4 versus 2×2 (and --workers 4 for 4×1)

Each sweep runs in a fresh output directory (its own SQLite study), so no run is reused. The trainer's
tokenizer cache is warmed first, so no setting pays for training the tokenizer. With --repeats R the two
settings alternate (A B, B A, …) so a drift in machine load does not favour one; the ratio uses medians.
Prints one line per sweep and the ratio; exits 1 if a sweep did not complete.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import optuna

from core.config import load_config
from planner.resources import available_cores
from planner.sweep import run_sweep


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="experiment YAML (default: the shipped demo config)")
    p.add_argument("--languages", default="el,hi", help="comma-separated subset of the config's, or 'all'")
    p.add_argument("--sizes", default="250,500", help="comma-separated subset of sweep.sizes, or 'all'")
    p.add_argument("--cores", type=int, default=2, help="cores to use in every setting (default 2)")
    p.add_argument("--workers", type=int, default=2, help="workers of the parallel setting (default 2)")
    p.add_argument("--repeats", type=int, default=1, help="sweeps per setting, alternating order (default 1)")
    p.add_argument("--out", default=None, help="directory for the sweeps' outputs (default: a temporary one)")
    return p.parse_args(argv)


def subset(values: list, spec: str, cast=str) -> list:
    if spec == "all":
        return list(values)
    chosen = [cast(v) for v in spec.split(",")]
    unknown = [v for v in chosen if v not in values]
    if unknown:
        raise SystemExit(f"{unknown} not in the config's {values}")
    return chosen


def time_sweep(cfg, out: Path, workers: int, threads: int) -> tuple[float, bool]:
    cfg = cfg.model_copy(deep=True)
    cfg.output_dir = str(out)
    cfg.sweep.storage = None
    cfg.model.threads = threads
    started = time.perf_counter()
    report = run_sweep(cfg, workers=workers, progress=False)
    return time.perf_counter() - started, report.complete


def warm_caches(cfg) -> None:
    """Train (or load) the tiny model's cached tokenizer once, outside the timed sweeps."""
    from trainers.model import load_tokenizer

    load_tokenizer(cfg)


def main(argv=None) -> int:
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = load_config(args.config)
    cfg.languages = subset(cfg.languages, args.languages)
    cfg.sweep.sizes = subset(cfg.sweep.sizes, args.sizes, int)
    if args.cores % args.workers:
        raise SystemExit("--cores must be a multiple of --workers")
    root = Path(args.out or tempfile.mkdtemp(prefix="sweep-bench-"))
    n_points = len(cfg.languages) * len(cfg.sweep.sizes) * len(cfg.sweep.seeds)
    print(f"grid: {cfg.languages} × sizes {cfg.sweep.sizes} × seeds {cfg.sweep.seeds} = {n_points} runs; "
          f"{args.cores} of {available_cores()} cores; load average {os.getloadavg()[0]:.1f}; outputs in {root}")
    warm_caches(cfg)
    settings = [(1, args.cores), (args.workers, args.cores // args.workers)]
    times: dict[tuple[int, int], list[float]] = {s: [] for s in settings}
    ok = True
    for rep in range(args.repeats):
        for workers, threads in settings if rep % 2 == 0 else settings[::-1]:
            seconds, complete = time_sweep(cfg, root / f"r{rep}-w{workers}xt{threads}", workers, threads)
            times[(workers, threads)].append(seconds)
            ok &= complete
            print(f"{workers} worker(s) × {threads} thread(s): {seconds:8.1f} s  ({seconds / n_points:.1f} s per "
                  f"run; load average now {os.getloadavg()[0]:.1f}){'' if complete else '  INCOMPLETE'}",
                  flush=True)
    serial, parallel = (statistics.median(times[s]) for s in settings)
    (w1, t1), (w2, t2) = settings
    print(f"speed-up of {w2}×{t2} over {w1}×{t1} (median of {args.repeats}): {serial / parallel:.2f}×")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
