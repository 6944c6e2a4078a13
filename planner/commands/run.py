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
    p.set_defaults(func=run)


def run(args) -> int:
    from planner.pipeline import main_run

    return main_run(config_from_args(args))
