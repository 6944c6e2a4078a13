"""How good was the whole-run ETA of a finished `planner run`? Reconstructed from its files.

During the sweep, the progress bar shows "est. left X (whole run ~Y)": Y is the sweep's time left (each
pending run priced by `planner.estimate.predict_seconds` from the runs finished so far, divided by the
workers) plus the launch stage priced by `planner.estimate.launch_parts` from the same finished runs. During
the launch, after every final run and target check, `planner run` prints the launch's time left
(`planner.pipeline.LaunchClock`: the launch priced at the sweep's end, rescaled by the final runs it has
trained). All of it is a function of the ledger and of when each final run and check finished (their
metrics.json), so it can be recomputed after the fact at any point of the run. This script does that at
10%, 25%, 50% and 75% of the run's wall time — the last estimate shown by then, less the time since it was
shown — and compares it with the time that was actually left (the report's write time is the end).

    python benchmarks/eta_check.py outputs/demo --start "2026-12-06 08:17:55"   # the command's start time (UTC)
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_config  # noqa: E402
from planner.estimate import predict_seconds  # noqa: E402
from planner.pipeline import launch_pricer  # noqa: E402
from planner.sweep.identity import GridPoint  # noqa: E402
from planner.sweep.state import run_cost  # noqa: E402


def trials(out: Path) -> list[optuna.trial.FrozenTrial]:
    storage = f"sqlite:///{out / 'sweep.db'}"
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    return [t for name in names for t in optuna.load_study(study_name=name, storage=storage).trials
            if t.state == optuna.trial.TrialState.COMPLETE]


def pairs_of(t) -> int:
    """What the run trained on, all languages together (a mixture run: every language's pairs)."""
    return GridPoint.from_attrs(t.user_attrs).total_pairs


def launch_events(out: Path) -> tuple[float, list[float], list[float]]:
    """When the launch started (the allocation's last write) and when each final run and target check
    finished (their metrics.json), in order."""
    started = max(p.stat().st_mtime for p in out.glob("allocation*"))
    final = out / "final"
    runs = sorted(p.stat().st_mtime for p in final.glob("*/s*/metrics.json"))
    checks = sorted(p.stat().st_mtime for p in final.glob("targets/*/metrics.json"))
    return started, runs, checks


def eta_at(now: float, done: list, workers: int, pricer, launch: tuple[float, list[float], list[float]]) -> float | None:
    """The whole-run estimate last shown by `now` (seconds since the epoch), less the time since."""
    finished = [t for t in done if t.datetime_complete.timestamp() <= now]
    if not finished:
        return None
    costs = [c for t in finished if (c := run_cost(t)) is not None]
    sweep_end = max(t.datetime_complete.timestamp() for t in done)
    parts = pricer(costs)
    if now <= sweep_end:
        walls = [(c.pairs, c.wall) for c in costs]
        left = 0.0
        for t in done:
            if t.datetime_complete.timestamp() <= now:
                continue
            left += predict_seconds(walls, pairs_of(t)) or 0.0
            if t.datetime_start.timestamp() < now:  # running at `now`
                left -= min(left, now - t.datetime_start.timestamp())
        return left / workers + (parts.total if parts else 0.0)
    started, runs, checks = launch
    runs_done = [end for end in runs if end <= now]
    checks_done = [end for end in checks if end <= now]
    if not runs_done:  # nothing told since the sweep's bar: its launch estimate, running down
        return max(0.0, (parts.total if parts else 0.0) - (now - sweep_end))
    measured = [end - before for before, end in zip([started] + runs_done, runs_done)]
    told = max(runs_done + checks_done)
    return max(0.0, parts.left(measured, len(runs_done), len(checks_done)) - (now - told))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path, help="the finished run's output directory")
    ap.add_argument("--start", required=True, help="when `planner run` was started, UTC, 'YYYY-MM-DD HH:MM:SS'")
    ap.add_argument("--config", default=None, help="the run's config (default: the demo preset)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    start = datetime.strptime(args.start, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    end = (args.out / "report.html").stat().st_mtime
    done = trials(args.out)
    pricer = launch_pricer(cfg)
    launch = launch_events(args.out)
    total = end - start
    workers = cfg.sweep.workers or 1  # unset: 1 on the CPU (on GPUs one per slice of sweep.devices)
    print(f"run: {total:.0f} s; sweep runs: {len(done)}; workers: {workers}")
    print("| share of the run | elapsed | ETA shown (whole run) | actually left | ETA / actual |")
    print("|---:|---:|---:|---:|---:|")
    for share in (0.10, 0.25, 0.50, 0.75):
        now = start + share * total
        eta = eta_at(now, done, workers, pricer, launch)
        actual = end - now
        shown = "no run finished yet" if eta is None else f"{eta:.0f} s"
        ratio = "" if eta is None else f"{eta / actual:.2f}"
        print(f"| {share:.0%} | {now - start:.0f} s | {shown} | {actual:.0f} s | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
