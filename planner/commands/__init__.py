"""CLI verbs: each module registers one subcommand with `add_parser(subparsers)`.

One grammar for every verb: `--config FILE` (or `--preset NAME`; default: the shipped demo preset) says
what the experiment is, `--output-dir DIR` (default: the config's `output_dir`) where its files live, and
every other option defaults to the config's value, its input to the file the stage before wrote into the
output directory, its output to the file the stage after reads there."""

from __future__ import annotations

import argparse

from core.config import PlannerConfig, load_config, preset_path, presets


class _PresetAction(argparse.Action):
    """`--preset NAME` is `--config` pointed at a shipped preset file, so every verb that reads
    `args.config` takes presets without knowing about them."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.config = str(preset_path(values))


def add_config_option(parser: argparse.ArgumentParser) -> None:
    names = sorted(presets())
    group = parser.add_mutually_exclusive_group()  # both at once: argparse exits 2 naming the two options
    group.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="experiment YAML (default: the shipped demo preset)",
    )
    group.add_argument(
        "--preset",
        choices=names,  # an unknown name exits 2 listing these
        default=None,
        action=_PresetAction,
        help=f"a shipped config by name instead of a file: {', '.join(names)} (demo is the default; quick is the "
        "tiny from-scratch model, a few minutes end to end)",
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        default=None,
        help="where the experiment's files are read and written (default: the config's output_dir)",
    )


def config_from_args(args: argparse.Namespace) -> PlannerConfig:
    """The config of `--config`/`--preset` (the demo preset without either), with `--output-dir` applied."""
    cfg = load_config(args.config)
    if getattr(args, "output_dir", None):
        cfg = cfg.model_copy(update={"output_dir": args.output_dir})
    return cfg
