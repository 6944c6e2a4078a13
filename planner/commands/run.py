"""`planner run`: the whole pipeline, resumably."""

from __future__ import annotations

from planner.commands import add_config_option, config_from_args


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="run the whole pipeline, resumably",
        description="data check → sweep → fit → allocate → launch → report, with every setting from one config "
        "file. A stage is skipped when its outputs exist and are up to date for the config and its inputs, so "
        "running it again after Ctrl-C or a crash only does what is missing. With no --config it runs the "
        "shipped demo (SmolLM2-135M-Instruct on the embedded corpus, CPU) into outputs/demo/.",
    )
    add_config_option(p)
    p.add_argument("--dry-run", action="store_true",
                   help="print the stages that would run, the proxy and final runs, the data they train and, once "
                   "runs in the output directory have timed this machine, how long they would take; write nothing")
    p.set_defaults(func=run)


def run(args) -> int:
    cfg = config_from_args(args)
    if args.dry_run:
        import os

        from planner.dry_run import format_dry_run, plan_run, stage_states
        from planner.resources import device_slices, local_workers

        threads = cfg.model.threads or os.cpu_count() or 1
        workers = local_workers(None, cfg.sweep, device_slices(cfg.sweep))
        print(format_dry_run(cfg, plan_run(cfg, threads, workers), stage_states(cfg)))
        return 0
    from planner.pipeline import main_run

    return main_run(cfg)
