"""`python -m research.adaptive sweep|status`: the adaptive sweep, run on the planner's sweep one round at a
time (`planner.sweep.run_sweep` with its `points` seam; research.adaptive.rounds). Research code:
docs/adaptive-sweep.md.

    python -m research.adaptive sweep --config planner.yaml [--adaptive adaptive.yaml] [--workers N]
    python -m research.adaptive status --config planner.yaml [--adaptive adaptive.yaml]

Exit codes as `planner sweep`: 0 complete, 1 runs failed or cut short, 2 a mistake in the input.
"""

from __future__ import annotations

import argparse
import sys

from core.errors import Reported


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m research.adaptive", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="verb", required=True)
    for verb in ("sweep", "status"):
        p = sub.add_parser(verb)
        p.add_argument("--config", required=True)
        p.add_argument("--adaptive", default=None, help="YAML of research.adaptive.settings.AdaptiveSettings")
        p.add_argument("--storage", default=None)
        if verb == "sweep":
            p.add_argument("--workers", type=int, default=None)
            p.add_argument("--max-failures", type=int, default=None)
            p.add_argument("--runner", default=None)
            p.add_argument("--mixture-runner", default=None)
            p.add_argument("--no-progress", action="store_true")
    return ap


def sweep(cfg, a, args) -> int:
    from planner.estimate import format_duration
    from planner.runners import DEFAULT_MIXTURE_RUNNER, DEFAULT_RUNNER
    from research.adaptive.adaptive import EXPERIMENTAL_NOTE
    from research.adaptive.design import check_adaptive
    from research.adaptive.rounds import format_adaptive, sweep_rounds

    check_adaptive(cfg, a)  # before any run: a config the decisions cannot use is a user error now
    print(EXPERIMENTAL_NOTE, flush=True)
    done = sweep_rounds(cfg, a, storage=args.storage, workers=args.workers, max_failures=args.max_failures,
                        runner=args.runner or DEFAULT_RUNNER,
                        mixture_runner=args.mixture_runner or DEFAULT_MIXTURE_RUNNER, progress=not args.no_progress,
                        notify=lambda line: print(line, flush=True))
    report, prog = done.report, done.report.progress
    print(f"sweep: {prog.done}/{prog.total} points done, {prog.failed} failed, {prog.pending} pending "
          f"({report.workers} worker(s), {done.runs} round(s), {format_duration(done.wall_seconds)}); "
          f"{report.runs_csv}")
    print(format_adaptive(done.summary, cfg.fit.metric))
    for trial in report.failures:
        print(f"  failed: {trial.user_attrs.get('point')}: {trial.user_attrs.get('error')}", file=sys.stderr)
    for dead in report.dead_workers:
        print(f"  worker stopped abnormally: {dead}", file=sys.stderr)
    return 0 if done.complete else 1


def status(cfg, a, args) -> int:
    import time

    from planner.commands.status import format_status
    from planner.sweep.ledger import open_ledger
    from planner.sweep.storage import resolve_storage
    from planner.sweep import sweep_status
    from research.adaptive.chosen import AdaptivePoints, adaptive_summary
    from research.adaptive.rounds import format_adaptive

    view = sweep_status(cfg, args.storage, points=AdaptivePoints(cfg, a))
    print(format_status(view.statuses, time.time()))
    trials = open_ledger(cfg, resolve_storage(cfg, args.storage), create=False).trials()
    print(format_adaptive(adaptive_summary(trials), cfg.fit.metric))
    return 0


def main(argv: list[str] | None = None) -> int:
    import optuna

    from core.config import load_config
    from research.adaptive.settings import adaptive_settings

    args = _parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        cfg, a = load_config(args.config), adaptive_settings(args.adaptive)
        return (sweep if args.verb == "sweep" else status)(cfg, a, args)
    except Reported as err:
        print("error: " + " ".join(str(err).split()), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted: finished work is saved; run the same command again to resume.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
